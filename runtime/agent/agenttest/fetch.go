//go:build !wasip1

package agenttest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/internal/guest"
)

// maxBody is the hosts' cap on a whole (not streamed) response body.
const maxBody = 32 << 20

// stream is a response body handed out by handle, read by read effects.
type stream struct {
	task string
	body []byte
}

// fetch serves a fetch effect with h.HTTP, holding it to the hosts' rules
// (docs/abi.md): a canonical URL, placeholders substituted only for an
// origin that owns the secret, secrets scrubbed from the response.
// Response header names are lowercase, as the Fetch API gives them to the
// Workers host.
func (h *Host) fetch(ctx context.Context, start *wire.Start, args *wire.FetchArgs) (*wire.FetchValue, error) {
	task := start.Task
	if h.HTTP == nil {
		return nil, &wire.Error{Type: wire.ErrFetch, Message: "agenttest: Host.HTTP is nil"}
	}
	if !policy.IsCanonical(args.URL) {
		return nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("fetch: %q is not a canonical URL: the policy decides and sends canonical URLs only", args.URL)}
	}
	owners, scrub, err := h.secrets(start.Agent)
	if err != nil {
		return nil, &wire.Error{Type: wire.ErrFetch, Message: err.Error()}
	}
	headers := make([]policy.Header, len(args.Headers))
	for i, kv := range args.Headers {
		headers[i] = policy.Header{Name: kv[0], Value: kv[1]}
	}
	headers, err = policy.Substitute(headers, policy.Origin(args.URL), owners, h.lookupSecret)
	if err != nil {
		return nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("fetch %s %s: %v", args.Method, args.URL, err)}
	}
	req, err := http.NewRequestWithContext(ctx, args.Method, args.URL, bytes.NewReader(args.Body))
	if err != nil {
		return nil, err
	}
	for _, kv := range headers {
		req.Header.Add(kv.Name, kv.Value)
	}
	req.RemoteAddr = "192.0.2.1:1234"
	req.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	h.HTTP.ServeHTTP(rec, req)
	res := rec.Result()

	v := &wire.FetchValue{Status: res.StatusCode}
	names := make([]string, 0, len(res.Header))
	for name := range res.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, value := range res.Header[name] {
			v.Headers = append(v.Headers, wire.Header{strings.ToLower(scrub.String(name)), scrub.String(value)})
		}
	}
	// A streamed body is scrubbed whole too: the recorder holds all of it.
	body := scrub.Bytes(rec.Body.Bytes())
	if !args.Stream {
		if len(body) > maxBody {
			return nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("the body is over %d bytes: stream it", maxBody)}
		}
		v.Body = body
		return v, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastHandle++
	v.Handle = h.lastHandle
	h.streams[v.Handle] = &stream{task: task, body: body}
	return v, nil
}

func (h *Host) read(args wire.ReadArgs) (*wire.ReadValue, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.streams[args.Handle]
	if s == nil {
		return nil, &wire.Error{Type: wire.ErrFetch, Message: fmt.Sprintf("no open body with handle %d", args.Handle)}
	}
	if args.Max <= 0 {
		return nil, fmt.Errorf("read max %d: want at least 1", args.Max)
	}
	n := min(args.Max, len(s.body))
	v := &wire.ReadValue{Body: s.body[:n]}
	s.body = s.body[n:]
	if len(s.body) == 0 {
		v.EOF = true
		delete(h.streams, args.Handle)
	}
	return v, nil
}

// secrets returns what substitutes and scrubs the secrets of agent's
// policy: its engine with h.Targets applied (which origin owns which
// secret), and a Scrubber of the values in h.Secrets.
func (h *Host) secrets(agent string) (policy.Owners, *policy.Scrubber, error) {
	a := guest.Lookup(agent)
	if a == nil {
		return nil, nil, fmt.Errorf("agenttest: no agent %q", agent)
	}
	e, err := a.Engine(h.Targets)
	if err != nil {
		return nil, nil, err
	}
	if e == nil { // no policy: no origin owns a secret
		return noOwners{}, policy.NewScrubber(), nil
	}
	return e, e.Scrubber(h.lookupSecret), nil
}

func (h *Host) lookupSecret(name string) (string, bool) {
	v, ok := h.Secrets[name]
	return v, ok
}

type noOwners struct{}

func (noOwners) Owns(string, string) bool { return false }

// release drops what a task held, as hosts do when a task ends.
func (h *Host) release(task string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for handle, s := range h.streams {
		if s.task == task {
			delete(h.streams, handle)
		}
	}
}
