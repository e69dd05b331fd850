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
)

// maxBody is the hosts' cap on a whole (not streamed) response body.
const maxBody = 32 << 20

// stream is a response body handed out by handle, read by read effects.
type stream struct {
	task string
	body []byte
}

// fetch serves a fetch effect with h.HTTP. Response header names are
// lowercase, as the Fetch API gives them to the Workers host.
func (h *Host) fetch(ctx context.Context, task string, args *wire.FetchArgs) (*wire.FetchValue, error) {
	if h.HTTP == nil {
		return nil, &wire.Error{Type: wire.ErrFetch, Message: "agenttest: Host.HTTP is nil"}
	}
	req, err := http.NewRequestWithContext(ctx, args.Method, args.URL, bytes.NewReader(args.Body))
	if err != nil {
		return nil, err
	}
	for _, kv := range args.Headers {
		req.Header.Add(kv[0], kv[1])
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
			v.Headers = append(v.Headers, wire.Header{strings.ToLower(name), value})
		}
	}
	body := rec.Body.Bytes()
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
