package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/internal/sched"
)

// Fetch sends req through the host and returns the whole response, its
// body read into memory (the host caps it at 32 MiB; use Transport for
// more). It never follows a redirect: a 3xx comes back as it is.
//
// The request's context is only checked before sending: once sent, a
// request runs to its end unless the run is canceled.
func (c *Context) Fetch(req *http.Request) (*http.Response, error) {
	args, err := outbound(c, req)
	if err != nil {
		return nil, err
	}
	var v wire.FetchValue
	if err := sched.Perform(c.task, wire.EffectFetch, args, &v); err != nil {
		return nil, fmt.Errorf("fetch %s %s: %w", args.Method, args.URL, err)
	}
	return response(req, &v, newBufferedBody(v.Body), int64(len(v.Body))), nil
}

// bufferedBody is a whole response body: one allocation, where
// io.NopCloser(bytes.NewReader(b)) makes two (each costs in wasm).
type bufferedBody struct{ bytes.Reader }

func newBufferedBody(b []byte) *bufferedBody {
	body := new(bufferedBody)
	body.Reset(b)
	return body
}

func (*bufferedBody) Close() error { return nil }

// Transport returns a RoundTripper that sends requests through the host
// with their response bodies streamed: each Read of a body is a round trip
// that returns what the host has, at most the Read's buffer. Close a body
// not read to its end, so the host can release it sooner than at the run's
// end. It never follows a redirect: a 3xx comes back as it is.
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

// outbound turns req into the fetch effect that sends it. Every outbound
// HTTP request of a run passes here, buffered (Fetch) or streamed
// (Transport), and so must every redirect hop once redirects are followed:
// this is the seam where the policy engine (policy/) decides each request
// (allow or deny by method, host, path, body and count; the canonical URL
// that is sent; the event that records the decision) before the host sees
// it. Until then it refuses only what cannot be sent.
//
// It reads and closes req.Body.
func outbound(ctx context.Context, req *http.Request) (wire.FetchArgs, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if req.URL == nil {
		return wire.FetchArgs{}, errors.New("fetch: request without a URL")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return wire.FetchArgs{}, fmt.Errorf("fetch %s %s: not an absolute http or https URL", method, req.URL)
	}
	if err := req.Context().Err(); err != nil {
		return wire.FetchArgs{}, fmt.Errorf("fetch %s %s: %w", method, req.URL, err)
	}
	if err := ctx.Err(); err != nil {
		return wire.FetchArgs{}, fmt.Errorf("fetch %s %s: the run is over: %w", method, req.URL, err)
	}
	args := wire.FetchArgs{Method: method, URL: req.URL.String()}
	if len(req.Header) > 0 {
		names := make([]string, 0, len(req.Header))
		for name := range req.Header {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			for _, v := range req.Header[name] {
				args.Headers = append(args.Headers, wire.Header{name, v})
			}
		}
	}
	if req.Body != nil && req.Body != http.NoBody {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return wire.FetchArgs{}, fmt.Errorf("fetch %s %s: read the request body: %w", method, args.URL, err)
		}
		args.Body = body
	}
	return args, nil
}

func response(req *http.Request, v *wire.FetchValue, body io.ReadCloser, length int64) *http.Response {
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
	return &http.Response{
		Status:        strconv.Itoa(v.Status) + " " + http.StatusText(v.Status),
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

// transport is Context.Transport's RoundTripper: fetch with stream, then read and
// close effects.
type transport struct {
	c *Context
}

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	args, err := outbound(t.c, req)
	if err != nil {
		return nil, err
	}
	args.Stream = true
	var v wire.FetchValue
	if err := sched.Perform(t.c.task, wire.EffectFetch, args, &v); err != nil {
		return nil, fmt.Errorf("fetch %s %s: %w", args.Method, args.URL, err)
	}
	if v.Handle == 0 { // nothing to stream: the host answered with the body, if any
		return response(req, &v, newBufferedBody(v.Body), int64(len(v.Body))), nil
	}
	return response(req, &v, &streamBody{c: t.c, handle: v.Handle}, -1), nil
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
