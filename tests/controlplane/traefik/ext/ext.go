// Package ext stands in for Traefik's dynamic configuration extension module, which its module
// zip does not contain. The open-source build adds nothing to the configuration.
package ext

// HTTP is embedded in Traefik's dynamic HTTP configuration.
type HTTP struct{}

// Router is embedded in Traefik's HTTP router configuration.
type Router struct{}
