package auth

import (
	"net/http"
	"strings"
)

// CheckSecret reports whether password matches secret, a password hash in any of the forms
// BasicAuth accepts (MD5 crypt, {SHA}, bcrypt), chosen by the secret's prefix.
func CheckSecret(password, secret string) bool {
	compare := compareFuncs[0].compare
	for _, f := range compareFuncs[1:] {
		if strings.HasPrefix(secret, f.prefix) {
			compare = f.compare
			break
		}
	}
	return compare([]byte(secret), []byte(password)) == nil
}

// RequireAuthStale answers like RequireAuth (a fresh nonce in a 401 challenge) and marks the
// challenge stale=true, telling the client its credentials were right but its nonce was not, so
// it may retry with the new nonce without asking the user again (RFC 7616, section 3.3).
func (a *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) {
	a.RequireAuth(&staleChallenge{ResponseWriter: w, header: a.Headers.V().Authenticate}, r)
}

// staleChallenge appends stale=true to the challenge header just before the status is written.
type staleChallenge struct {
	http.ResponseWriter
	header string
}

func (s *staleChallenge) WriteHeader(code int) {
	if challenge := s.Header().Get(s.header); challenge != "" {
		s.Header().Set(s.header, challenge+`, stale=true`)
	}
	s.ResponseWriter.WriteHeader(code)
}
