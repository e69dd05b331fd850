// Package send lets the runtime's own packages (the model providers)
// send a request through a run's policy-checked transport, its body
// streamed, without naming http.RoundTripper.
//
// Why not Context.Transport: once any reachable interface names a method
// whose type is that of one of *agent.Context's (Transport() RoundTripper,
// Fetch's func(*http.Request) (*http.Response, error)), the linker must
// assume reflection can reach *http.Response, and through its TLS field
// crypto/x509 and encoding/asn1: about 70 KB gzip more module, measured
// (docs/architecture.md, "Departures").
package send

import "net/http"

// Stream sends req through the transport of run, a run's *agent.Context,
// with the response body streamed. Package agent sets it in its init.
var Stream func(run any, req *http.Request) (*http.Response, error)

// Binding is Stream for a call on the Workers binding named binding (a
// binding effect): the agent's policy decides req as it would a fetch, and
// the host calls the binding with it, or sends it where it has none.
var Binding func(run any, binding string, req *http.Request) (*http.Response, error)
