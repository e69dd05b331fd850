package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/internal/sched"
	"github.com/damperdev/damper/runtime/internal/send"
)

func init() {
	send.Stream = func(run any, req *http.Request) (*http.Response, error) {
		c, ok := run.(*Context)
		if !ok {
			return nil, fmt.Errorf("send %s %s: %T is not a run's *agent.Context", req.Method, req.URL, run)
		}
		return transport{c: c}.RoundTrip(req)
	}
	send.Binding = func(run any, binding string, req *http.Request) (*http.Response, error) {
		c, ok := run.(*Context)
		if !ok {
			return nil, fmt.Errorf("send %s %s: %T is not a run's *agent.Context", req.Method, req.URL, run)
		}
		return transport{c: c, binding: binding}.RoundTrip(req)
	}
}

// Fetch sends req through the host and returns the whole response, its
// body read into memory (the host caps it at 32 MiB; use Transport for
// more).
//
// The agent's policy (WithPolicy) decides the request first: a denied
// request is never sent, and Fetch returns an error wrapping the
// *policy.DenyError, which says why (errors.As finds it). An allowed
// request is sent as the policy decided it: its canonical URL, the request
// headers the service accepts, and the service's credentials, which the
// host fills in; the module never sees them.
//
// Fetch follows redirects as http.Client does: at most 10; after a 301,
// 302 or 303 with GET (HEAD stays HEAD) and no body, after a 307 or 308
// with the same method and body. Each hop is a new request, resolved
// against the URL just sent (policy.ResolveReference) and decided by the
// policy again, so a redirect reaches only what the policy allows: a
// denied hop ends Fetch with its denial's error, and the 3xx is not
// returned. A hop carries req's headers, never the previous service's
// credentials (each service adds its own); it drops Authorization, Cookie
// and the like when it leaves req's origin for anything but a subdomain
// on the same scheme and port (stricter than http.Client, which ignores
// the port), and the body's headers with the body. No Referer is added.
// The response's Request is the last hop's.
//
// The request's context is only checked before sending: once sent, a
// request runs to its end unless the run is canceled.
func (c *Context) Fetch(req *http.Request) (*http.Response, error) {
	first, err := outbound(c, req)
	if err != nil {
		return nil, err
	}
	o, strip := first, false
	for redirects := 0; ; redirects++ {
		v, sent, err := c.send(o, false)
		if err != nil {
			return nil, err
		}
		loc := redirectLocation(&v)
		if loc == "" {
			return bufferedResponse(o.req, &v), nil
		}
		if redirects == maxRedirects {
			return nil, fmt.Errorf("fetch %s %s: stopped after %d redirects", first.method, first.url, maxRedirects)
		}
		if o, err = c.nextHop(first, &sent, v.Status, loc, &strip); err != nil {
			return nil, err
		}
	}
}

// maxRedirects is how many redirects Fetch follows, as http.Client.
const maxRedirects = 10

// redirectLocation returns the Location of a redirect Fetch follows, or "".
// A 3xx without a Location is an answer, as http.Client treats it.
func redirectLocation(v *wire.FetchValue) string {
	switch v.Status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return ""
	}
	for _, h := range v.Headers {
		if strings.EqualFold(h[0], "Location") {
			return h[1]
		}
	}
	return ""
}

// nextHop makes the request a redirect asks for after sent, from the first
// request of the chain. *strip records that the chain left the first
// request's origin, after which sensitive headers stay dropped.
func (c *Context) nextHop(first *outReq, sent *policy.Decision, status int, loc string, strip *bool) (*outReq, error) {
	next, err := policy.ResolveReference(sent.URL, loc)
	if err != nil {
		d := policy.Decision{
			Reason:  policy.ReasonBadURL,
			Detail:  "unusable redirect Location: " + err.Error(),
			Service: sent.Service,
			Method:  sent.Method,
		}
		return nil, c.deny(&d, &outReq{url: loc}, "", false)
	}
	method, body := sent.Method, first.body
	if status == http.StatusMovedPermanently || status == http.StatusFound || status == http.StatusSeeOther {
		if method != http.MethodGet && method != http.MethodHead {
			method = http.MethodGet
		}
		body = nil
	}
	if !*strip && !sameOrSubdomain(first.url, next) {
		*strip = true
	}
	o := &outReq{method: method, url: next, body: body, headers: make([]policy.Header, 0, len(first.headers))}
	for _, h := range first.headers {
		switch http.CanonicalHeaderKey(h.Name) {
		case "Authorization", "Www-Authenticate", "Cookie", "Cookie2", "Proxy-Authorization", "Proxy-Authenticate":
			if *strip {
				continue
			}
		case "Content-Encoding", "Content-Language", "Content-Location", "Content-Type", "Content-Length":
			if body == nil {
				continue
			}
		}
		o.headers = append(o.headers, h)
	}
	// The hop's own *http.Request, for the response's Request field.
	o.req, err = http.NewRequestWithContext(first.req.Context(), method, next, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s %s: redirect to %s: %w", first.method, first.url, next, err)
	}
	for _, h := range o.headers {
		o.req.Header.Add(h.Name, h.Value)
	}
	return o, nil
}

// sameOrSubdomain reports whether next is on first's scheme and port, at
// first's host or a subdomain of it: where http.Client keeps sending
// credentials the agent set itself (it ignores scheme and port; we don't).
func sameOrSubdomain(first, next string) bool {
	a, err1 := url.Parse(first)
	b, err2 := url.Parse(next)
	if err1 != nil || err2 != nil || a.Scheme != b.Scheme || a.Port() != b.Port() {
		return false
	}
	ha, hb := strings.ToLower(a.Hostname()), strings.ToLower(b.Hostname())
	if ha == hb {
		return true
	}
	if strings.ContainsAny(hb, ":%") || net.ParseIP(ha) != nil { // IPs have no subdomains
		return false
	}
	return strings.HasSuffix(hb, "."+ha)
}

// bufferedBody is a whole response body: no allocation of its own (see
// bufferedResponse), where io.NopCloser(bytes.NewReader(b)) makes two
// (each costs in wasm).
type bufferedBody struct{ bytes.Reader }

func (*bufferedBody) Close() error { return nil }

// Transport returns a RoundTripper that sends requests through the host
// with their response bodies streamed: each Read of a body is a round trip
// that returns what the host has, at most the Read's buffer. Close a body
// not read to its end, so the host can release it sooner than at the run's
// end.
//
// The agent's policy decides each request as for Fetch. As a RoundTripper
// must, it does not follow redirects: a 3xx comes back as it is. An
// http.Client built on it follows them, and each hop it sends comes back
// through RoundTrip, to be decided by the policy again.
//
// It is a RoundTripper rather than an *http.Client on purpose: any use of
// http.Client links http.DefaultTransport (the HTTP/2 and TLS client),
// 1.26 MB gzip more module and ~2 ms more start-up, measured here. An SDK
// that wants a client can have one for that price:
// &http.Client{Transport: ctx.Transport()}.
//
// Use it only in this run, as it issues effects of this run.
func (c *Context) Transport() http.RoundTripper {
	return transport{c: c}
}

// bufferedResponse is the response to req with v's body read whole. The
// response and its body are one allocation.
func bufferedResponse(req *http.Request, v *wire.FetchValue) *http.Response {
	r := new(struct {
		http.Response
		body bufferedBody
	})
	r.body.Reset(v.Body)
	fillResponse(&r.Response, req, v, &r.body, int64(len(v.Body)))
	return &r.Response
}

// fillResponse makes *r the response to req that v describes.
func fillResponse(r *http.Response, req *http.Request, v *wire.FetchValue, body io.ReadCloser, length int64) {
	h := make(http.Header, len(v.Headers))
	values := make([]string, len(v.Headers)) // one backing array for the common single values
	for i, kv := range v.Headers {
		name := textproto.CanonicalMIMEHeaderKey(kv[0])
		values[i] = kv[1]
		if vs, ok := h[name]; ok {
			h[name] = append(vs, kv[1])
		} else {
			h[name] = values[i : i+1 : i+1]
		}
	}
	*r = http.Response{
		Status:        statusLine(v.Status),
		StatusCode:    v.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          body,
		ContentLength: length,
		Request:       req,
	}
}

// statusLine is a Response's Status, constant for the common codes:
// strconv.Itoa and the concatenation are two allocations otherwise, on
// every response.
func statusLine(code int) string {
	switch code {
	case http.StatusOK:
		return "200 OK"
	case http.StatusCreated:
		return "201 Created"
	case http.StatusNoContent:
		return "204 No Content"
	case http.StatusPartialContent:
		return "206 Partial Content"
	case http.StatusNotModified:
		return "304 Not Modified"
	case http.StatusBadRequest:
		return "400 Bad Request"
	case http.StatusUnauthorized:
		return "401 Unauthorized"
	case http.StatusForbidden:
		return "403 Forbidden"
	case http.StatusNotFound:
		return "404 Not Found"
	case http.StatusTooManyRequests:
		return "429 Too Many Requests"
	case http.StatusInternalServerError:
		return "500 Internal Server Error"
	case http.StatusBadGateway:
		return "502 Bad Gateway"
	case http.StatusServiceUnavailable:
		return "503 Service Unavailable"
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// transport is Context.Transport's RoundTripper: fetch with stream, then read and
// close effects.
type transport struct {
	c *Context
	// binding, when set, sends each request as a call on that Workers
	// binding (a binding effect) instead of a fetch.
	binding string
}

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	o, err := outbound(t.c, req)
	if err != nil {
		return nil, err
	}
	o.binding = t.binding
	v, _, err := t.c.send(o, true)
	if err != nil {
		return nil, err
	}
	if v.Handle == 0 { // nothing to stream: the host answered with the body, if any
		return bufferedResponse(req, &v), nil
	}
	r := new(http.Response)
	fillResponse(r, req, &v, &streamBody{c: t.c, handle: v.Handle}, -1)
	return r, nil
}

// maxRead bounds one read effect, so that a large buffer does not make one
// huge message.
const maxRead = 1 << 20

// streamBody reads a response body through read effects: one per Read.
type streamBody struct {
	c      *Context
	handle uint64
	extra  []byte // what a host sent beyond the Read's buffer
	eof    bool   // the host released the handle
	closed bool
}

func (b *streamBody) Read(p []byte) (int, error) {
	if len(b.extra) > 0 {
		n := copy(p, b.extra)
		b.extra = b.extra[n:]
		if len(b.extra) == 0 && b.eof {
			return n, io.EOF
		}
		return n, nil
	}
	switch {
	case b.closed:
		return 0, errors.New("read on a closed response body")
	case b.eof:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	var v wire.ReadValue
	if err := sched.Perform(b.c.task, wire.EffectRead, wire.ReadArgs{Handle: b.handle, Max: min(len(p), maxRead)}, &v); err != nil {
		return 0, fmt.Errorf("read response body: %w", err)
	}
	n := copy(p, v.Body)
	b.extra, b.eof = v.Body[n:], v.EOF
	switch {
	case b.eof && len(b.extra) == 0:
		return n, io.EOF
	case n == 0 && !b.eof:
		return 0, errors.New("read response body: the host returned no bytes before the end")
	}
	return n, nil
}

func (b *streamBody) Close() error {
	if b.closed || b.eof {
		b.closed = true
		return nil
	}
	b.closed = true
	if err := sched.Perform(b.c.task, wire.EffectClose, wire.CloseArgs{Handle: b.handle}, nil); err != nil {
		return fmt.Errorf("close response body: %w", err)
	}
	return nil
}
