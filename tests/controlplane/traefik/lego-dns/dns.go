// Package dns replaces lego's DNS-01 provider registry for the test build of Traefik: it links
// no provider, so ACME DNS challenges are unavailable.
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/challenge"
)

// NewDNSChallengeProviderByName always fails: no DNS provider is built in.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("DNS provider %q is not available: this Traefik is built without DNS-01 providers", name)
}
