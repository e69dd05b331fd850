package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/damperdev/damper/internal/codings"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
)

// Fetcher performs the HTTP request of a fetch effect and returns the
// response with its body unread; the host reads or streams the body and
// closes it. A Fetcher must send exactly req.URL and must not follow
// redirects: a 3xx goes back to the guest, which decides the next hop.
//
// The host calls it with secrets already filled in (req holds their
// values: a Fetcher must not log it), and scrubs them from the response
// and from the error it returns.
type Fetcher interface {
	Fetch(ctx context.Context, req wire.FetchArgs) (*http.Response, error)
}

// FetcherFunc adapts a function to Fetcher.
type FetcherFunc func(ctx context.Context, req wire.FetchArgs) (*http.Response, error)

// Fetch calls f.
func (f FetcherFunc) Fetch(ctx context.Context, req wire.FetchArgs) (*http.Response, error) {
	return f(ctx, req)
}

// maxBody caps a fetch body that is returned whole (docs/abi.md); a guest
// that needs more streams it.
const maxBody = 32 << 20

// NewFetcher returns the default Fetcher, sending requests with a copy of
// client (nil: a client with no proxy) that never follows redirects.
func NewFetcher(client *http.Client) Fetcher {
	var c http.Client
	if client != nil {
		c = *client
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// The URL the guest decided on is the one contacted: no proxy from
		// the environment in between.
		t.Proxy = nil
		c.Transport = t
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.Jar = nil
	return &httpFetcher{client: &c}
}

type httpFetcher struct{ client *http.Client }

func (f *httpFetcher) Fetch(ctx context.Context, a wire.FetchArgs) (*http.Response, error) {
	req, err := newRequest(ctx, a)
	if err != nil {
		return nil, err
	}
	return f.client.Do(req)
}

// badEffectError marks an error caused by the effect's arguments.
type badEffectError struct{ msg string }

func (e *badEffectError) Error() string { return e.msg }

func newRequest(ctx context.Context, a wire.FetchArgs) (*http.Request, error) {
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
// handle of the task, otherwise it is read whole, up to maxBody.
//
// Around the Fetcher it holds the request to the contract of docs/abi.md:
// it sends only a canonical URL (the one the guest's policy decided on),
// fills in secret placeholders only for an origin of a service that owns
// the secret in the task's agent's policy, and scrubs the agent's secrets,
// raw and encoded, from the response's headers and body and from errors.
func (p *performer) performFetch(ctx context.Context, t *task, a wire.FetchArgs) (any, *wire.Error) {
	if !policy.IsCanonical(a.URL) {
		return nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("fetch: %q is not a canonical URL: the host sends only URLs the policy engine decided on", a.URL)}
	}
	for _, h := range a.Headers {
		// The engine never lets these through; a module that bypassed it
		// must not address the request to another host than the URL's (a
		// Host header sets req.Host), frame it, or switch off the
		// transport's decoding of the response.
		if policy.HostOwnedHeader(h[0]) {
			return nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("fetch %s %s: the %q header is set by the host, never by a request", a.Method, a.URL, h[0])}
		}
	}
	s := t.agentSecrets()
	if err := s.substitute(&a); err != nil {
		return nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("fetch %s %s: %v", a.Method, a.URL, s.scrubError(err))}
	}
	// Only the identity coding: Go's transport then neither asks for gzip
	// nor decodes it, and every coding a server sends anyway is refused
	// unread (internal/codings).
	a.Headers = append(a.Headers[:len(a.Headers):len(a.Headers)], wire.Header{"Accept-Encoding", codings.AcceptEncoding})
	resp, err := p.fetcher.Fetch(ctx, a)
	if err != nil {
		return nil, fetchError(ctx, s.scrubError(err))
	}
	if err := codings.Check(resp.Header); err != nil {
		// The guest's error names the method and URL already.
		resp.Body.Close()
		return nil, &wire.Error{Type: wire.ErrFetch, Message: s.scrub.String(err.Error())}
	}
	headers := responseHeaders(resp.Header)
	if s.scrub.MaxLen() > 0 {
		for i, h := range headers {
			headers[i] = wire.Header{s.scrub.String(h[0]), s.scrub.String(h[1])}
		}
	}
	v := wire.FetchValue{Status: resp.StatusCode, Headers: headers}
	if a.Stream {
		v.Handle = t.addStream(newScrubReader(resp.Body, s.scrub))
		return v, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fetchError(ctx, s.scrubError(fmt.Errorf("read body: %w", err)))
	}
	if len(body) > maxBody {
		return nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("response body exceeds %d bytes; fetch it with stream", maxBody)}
	}
	if s.scrub.MaxLen() > 0 {
		body = s.scrub.Bytes(body)
	}
	v.Body = body
	return v, nil
}

func fetchError(ctx context.Context, err error) *wire.Error {
	var bad *badEffectError
	switch {
	case errors.As(err, &bad):
		return &wire.Error{Type: wire.ErrBadEffect, Message: bad.msg}
	case ctx.Err() != nil:
		return canceledError(ctx)
	}
	return &wire.Error{Type: wire.ErrFetch, Message: err.Error()}
}

// defaultRead is the chunk size of a read effect that names no max, and
// maxRead the largest chunk a read returns.
const (
	defaultRead = 64 << 10
	maxRead     = 16 << 20
)

// performRead returns the next chunk of a streamed body: at least one byte,
// or eof. The handle is released at EOF or on error.
func (p *performer) performRead(ctx context.Context, t *task, a wire.ReadArgs) (any, *wire.Error) {
	s := t.stream(a.Handle)
	if s == nil {
		return nil, &wire.Error{Type: wire.ErrBadEffect, Message: fmt.Sprintf("read: unknown or released handle %d", a.Handle)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := a.Max
	if n <= 0 {
		n = defaultRead
	}
	n = min(n, maxRead)
	buf := make([]byte, n)
	for {
		k, err := s.body.Read(buf)
		if err == io.EOF {
			// The last bytes and the end may come together: the guest takes
			// both, and the handle is released one round trip sooner.
			t.releaseStream(a.Handle)
			return wire.ReadValue{Body: buf[:k], EOF: true}, nil
		}
		if err != nil {
			t.releaseStream(a.Handle)
			return nil, fetchError(ctx, t.agentSecrets().scrubError(fmt.Errorf("read body: %w", err)))
		}
		if k > 0 {
			return wire.ReadValue{Body: buf[:k]}, nil
		}
	}
}

func (p *performer) performClose(t *task, a wire.CloseArgs) (any, *wire.Error) {
	t.releaseStream(a.Handle)
	return struct{}{}, nil
}
