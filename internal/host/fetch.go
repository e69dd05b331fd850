package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/damperdev/damper/internal/codings"
	"github.com/damperdev/damper/internal/scrub"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/internal/wirejson"
	"github.com/damperdev/damper/policy"
)

// interimMessage is the error for a 1xx response that came back as final;
// worker/effects.js words it the same.
const interimMessage = "refusing an interim response (status %d) as the answer: the host never reads what follows one"

// badEffectError marks an error caused by the effect's arguments.
type badEffectError struct{ msg string }

func (e *badEffectError) Error() string { return e.msg }

// NewRequest builds the HTTP request a fetch effect sends.
func NewRequest(ctx context.Context, a wire.FetchArgs) (*http.Request, error) {
	u, err := url.Parse(a.URL)
	if err != nil {
		return nil, &badEffectError{fmt.Sprintf("fetch: bad url: %v", err)}
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, &badEffectError{fmt.Sprintf("fetch: url %q is not an absolute http(s) URL", a.URL)}
	}
	method := a.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if len(a.Body) > 0 {
		body = bytes.NewReader(a.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL, body)
	if err != nil {
		return nil, &badEffectError{fmt.Sprintf("fetch: %v", err)}
	}
	for _, h := range a.Headers {
		// performFetch has refused host-owned headers, Host among them, so
		// none of these sets req.Host: the request goes to the URL's host.
		req.Header.Add(h[0], h[1])
	}
	return req, nil
}

// responseHeaders lists a response's header fields as workerd's Headers
// iterate them: lowercase names in sorted order, so both hosts hand the
// guest the same list.
func responseHeaders(h http.Header) []wire.Header {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []wire.Header
	for _, k := range names {
		for _, v := range h[k] {
			out = append(out, wire.Header{strings.ToLower(k), v})
		}
	}
	return out
}

// performFetch sends the request; with Stream the body stays open under a
// handle of the task, otherwise it is read whole, up to the limit.
//
// Around the transport it holds the request to the contract of
// docs/abi.md: it sends only a canonical URL (the one the guest's policy
// decided on), fills in secret placeholders only for an origin of a
// service that owns the secret in the task's agent's policy, and scrubs
// the agent's secrets, raw and encoded, from the response's headers and
// body and from errors.
func performFetch(ctx context.Context, c *Core, t *Task, args []byte) (any, *wire.Error) {
	var a wire.FetchArgs
	if err := decodeArgsWith(wire.EffectFetch, args, &a, wirejson.DecodeFetchArgs); err != nil {
		return nil, err
	}
	return fetch(ctx, t, a)
}

// performBinding performs a binding call the only way a host without
// Workers bindings can: the AI binding's REST fallback, its request sent
// as a fetch.
func performBinding(ctx context.Context, c *Core, t *Task, args []byte) (any, *wire.Error) {
	var a wire.BindingArgs
	if err := json.Unmarshal(args, &a); err != nil {
		return nil, &wire.Error{Type: wire.ErrBadEffect, Message: "binding: " + err.Error()}
	}
	if a.Binding != wire.BindingAI {
		return nil, &wire.Error{Type: wire.ErrBinding, Message: fmt.Sprintf("binding %q: this host offers the binding AI only", a.Binding)}
	}
	return fetch(ctx, t, a.FetchArgs)
}

// fetch sends a decided request (docs/abi.md, "fetch").
func fetch(ctx context.Context, t *Task, a wire.FetchArgs) (any, *wire.Error) {
	resp, headers, werr := t.send(ctx, a)
	if werr != nil {
		return nil, werr
	}
	s := t.secrets
	v := wire.FetchValue{Status: resp.StatusCode, Headers: headers}
	if a.Stream {
		v.Handle = t.addStream(scrub.NewReader(resp.Body, s.scrub))
		return v, nil
	}
	defer resp.Body.Close()
	body, werr := readWhole(ctx, t, resp, t.core.limits.WholeBody)
	if werr != nil {
		return nil, werr
	}
	if s.any() {
		body = s.scrub.Bytes(body)
	}
	v.Body = body
	return v, nil
}

// Send sends a request the task's agent's policy decided (an egress
// task's wire.EgressDecision.Request) on the path of every fetch effect:
// a canonical URL only, no host-owned header, secrets substituted only
// for an origin that owns them, identity coding. It returns the status,
// the headers and the body, both scrubbed of the agent's secrets; the
// caller closes the body.
func (t *Task) Send(ctx context.Context, a wire.FetchArgs) (status int, headers []wire.Header, body io.ReadCloser, werr *wire.Error) {
	resp, headers, werr := t.send(ctx, a)
	if werr != nil {
		werr.Message = t.Scrub(werr.Message)
		return 0, nil, nil, werr
	}
	return resp.StatusCode, headers, scrubbedBody{scrub.NewReader(resp.Body, t.secrets.scrub), resp.Body}, nil
}

type scrubbedBody struct {
	io.Reader
	c io.Closer
}

func (b scrubbedBody) Close() error { return b.c.Close() }

// send holds a fetch to the contract of docs/abi.md around the
// transport: it sends only a canonical URL (the one the guest's policy
// decided on), fills in secret placeholders only for an origin of a
// service that owns the secret in the task's agent's policy, refuses
// every content coding, and returns the response with its headers
// scrubbed of the agent's secrets (the body is the caller's to scrub).
func (t *Task) send(ctx context.Context, a wire.FetchArgs) (*http.Response, []wire.Header, *wire.Error) {
	if !policy.IsCanonical(a.URL) {
		return nil, nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("fetch: %q is not a canonical URL: the host sends only URLs the policy engine decided on", a.URL)}
	}
	for _, h := range a.Headers {
		// The engine never lets these through; a module that bypassed it
		// must not address the request to another host than the URL's (a
		// Host header sets req.Host), frame it, or switch off the
		// transport's decoding of the response.
		if policy.HostOwnedHeader(h[0]) {
			return nil, nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("fetch %s %s: the %q header is set by the host, never by a request", a.Method, a.URL, h[0])}
		}
	}
	s := t.secrets
	if t.core.collector != "" && s.any() && len(a.Body) > 0 && policy.Origin(a.URL) == t.core.collector {
		// The span export (runtime/internal/otel) carries what the model
		// said when content capture is on, which may hold a secret the
		// guest put together from pieces no scrubber saw whole (a provider
		// echoing its own key over several deltas); the collector owns none.
		a.Body = s.scrub.Bytes(a.Body)
	}
	if err := s.substitute(&a); err != nil {
		return nil, nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("fetch %s %s: %v", a.Method, a.URL, s.scrubError(err))}
	}
	// Only the identity coding: Go's transport then neither asks for gzip
	// nor decodes it, and every coding a server sends anyway is refused
	// unread (internal/codings).
	a.Headers = append(a.Headers[:len(a.Headers):len(a.Headers)], wire.Header{"Accept-Encoding", codings.AcceptEncoding})
	req, err := NewRequest(ctx, a)
	if err != nil {
		return nil, nil, fetchError(ctx, s.scrubError(err))
	}
	resp, err := t.core.transport.RoundTrip(req)
	if err != nil {
		return nil, nil, fetchError(ctx, s.scrubError(err))
	}
	if resp.StatusCode < 200 {
		// An interim response is never an answer. workerd hands over a 103
		// as if it were final, with the real response's head, framing and
		// body as its body, unscrubbable and undecoded; Go's transport
		// skips 1xx but for 101, whose body is the raw connection.
		resp.Body.Close()
		return nil, nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf(interimMessage, resp.StatusCode)}
	}
	for name := range resp.Header {
		if !fieldName(name) {
			// Go's transport keeps a name with a space before its colon
			// ("Content-Encoding : gzip"), where other parsers trim it to
			// the name it spells: the coding check would not see it.
			resp.Body.Close()
			return nil, nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("refusing a response with the header field name %q, which is not a token: parsers read it differently", s.scrub.Headers([]wire.Header{{name, ""}})[0][0])}
		}
	}
	if err := codings.Check(resp.Header); err != nil {
		// The guest's error names the method and URL already.
		resp.Body.Close()
		return nil, nil, &wire.Error{Type: wire.ErrFetch, Message: err.Error()}
	}
	headers := responseHeaders(resp.Header)
	if s.any() {
		headers = s.scrub.Headers(headers)
	}
	return resp, headers, nil
}

// readWhole reads a whole body, no further than limit, taking what it reads
// from the instance's budget of bodies in flight: all of a declared
// Content-Length up front, so that of several large bodies in one batch the
// first ones are read and the rest fail at once, rather than all of them
// failing halfway. A body that fails gives its bytes back at once.
func readWhole(ctx context.Context, t *Task, resp *http.Response, limit int64) (body []byte, werr *wire.Error) {
	tooLarge := func() *wire.Error {
		return &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("the response body exceeds %d bytes; fetch it with stream", limit)}
	}
	if resp.ContentLength > limit {
		return nil, tooLarge()
	}
	var held int64
	hold := func(n int64) *wire.Error {
		if !t.holdBody(n) {
			return &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("the agent instance's whole response bodies in flight would exceed %d bytes; fetch large bodies with stream", t.Inst.bodies.limit)}
		}
		held += n
		return nil
	}
	defer func() {
		if werr != nil {
			t.unholdBody(held)
		}
	}()
	size := 512
	if resp.ContentLength > 0 {
		if err := hold(resp.ContentLength); err != nil {
			return nil, err
		}
		size = int(resp.ContentLength) + 1 // +1: the read that says EOF
	}
	// Read into the buffer's own spare room, as io.ReadAll does: no
	// chunk of its own, which a small body would pay for at every fetch.
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			if int64(len(buf)+n) > limit {
				return nil, tooLarge()
			}
			if over := int64(len(buf)+n) - held; over > 0 {
				if err := hold(over); err != nil {
					return nil, err
				}
			}
			buf = buf[:len(buf)+n]
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fetchError(ctx, t.secrets.scrubError(fmt.Errorf("read body: %w", err)))
		}
	}
}

// fieldName reports whether name is a token (RFC 9110, 5.1).
func fieldName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return name != ""
}

func fetchError(ctx context.Context, err error) *wire.Error {
	var bad *badEffectError
	switch {
	case errors.As(err, &bad):
		return &wire.Error{Type: wire.ErrBadEffect, Message: bad.msg}
	case ctx.Err() != nil:
		return CanceledError(ctx)
	}
	return &wire.Error{Type: wire.ErrFetch, Message: err.Error()}
}

// performRead returns the next chunk of a streamed body: at least one byte,
// or eof. The handle is released at EOF or on error.
func performRead(ctx context.Context, _ *Core, t *Task, args []byte) (any, *wire.Error) {
	var a wire.ReadArgs
	if err := DecodeArgs(wire.EffectRead, args, &a); err != nil {
		return nil, err
	}
	s := t.stream(a.Handle)
	if s == nil {
		return nil, &wire.Error{Type: wire.ErrBadEffect, Message: fmt.Sprintf("read: unknown or released handle %d", a.Handle)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := a.Max
	if n <= 0 {
		n = wire.DefaultRead
	}
	// A chunk is held until the guest has the batch, as a whole body is:
	// it counts against the same budget, and a read gets no more than is
	// left of it, but always DefaultRead, so every stream moves on.
	n = min(n, wire.MaxRead, max(int(t.Inst.bodies.left()), wire.DefaultRead))
	buf := make([]byte, n)
	for {
		k, err := s.body.Read(buf)
		t.takeBody(int64(k))
		if err == io.EOF {
			// The last bytes and the end may come together: the guest takes
			// both, and the handle is released one round trip sooner.
			t.releaseStream(a.Handle)
			return wire.ReadValue{Body: buf[:k], EOF: true}, nil
		}
		if err != nil {
			t.releaseStream(a.Handle)
			return nil, fetchError(ctx, t.secrets.scrubError(fmt.Errorf("read body: %w", err)))
		}
		if k > 0 {
			return wire.ReadValue{Body: buf[:k]}, nil
		}
	}
}

func performClose(_ context.Context, _ *Core, t *Task, args []byte) (any, *wire.Error) {
	var a wire.CloseArgs
	if err := DecodeArgs(wire.EffectClose, args, &a); err != nil {
		return nil, err
	}
	t.releaseStream(a.Handle)
	return struct{}{}, nil
}

// collectorOrigin is the origin of the telemetry endpoint, in the
// canonical form the guest's requests have; "" without one.
func collectorOrigin(tel *wire.Telemetry) string {
	if tel == nil {
		return ""
	}
	u, err := policy.Canonicalize(tel.Endpoint)
	if err != nil {
		return ""
	}
	return policy.Origin(u)
}
