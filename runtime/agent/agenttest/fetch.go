//go:build !wasip1

package agenttest

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// handlerTransport answers requests with an http.Handler in the test's
// process, as a server on the network would: a handler that returns
// without flushing sends its whole body (with a known length, so the last
// read of it also says EOF), and one that flushes streams it from the
// first flush on, as an SSE endpoint does. handlers counts the handlers
// still running, so that a run returns only once the handlers it called
// have (a test then sees everything they recorded).
type handlerTransport struct {
	h        http.Handler
	handlers *sync.WaitGroup
}

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.h == nil {
		return nil, errors.New("agenttest: Host.HTTP is nil")
	}
	req = req.Clone(req.Context())
	req.RemoteAddr = "192.0.2.1:1234"
	req.RequestURI = req.URL.RequestURI()
	req.Host = req.URL.Host
	if req.Body == nil {
		req.Body = http.NoBody // as a server hands a handler
	}
	pr, pw := io.Pipe()
	w := &responseWriter{header: http.Header{}, pipe: pw, ready: make(chan struct{})}
	t.handlers.Add(1)
	go func() {
		defer t.handlers.Done()
		defer func() {
			if r := recover(); r != nil && r != http.ErrAbortHandler {
				pw.CloseWithError(errors.New("agenttest: the handler panicked"))
			}
			w.finish()
		}()
		t.h.ServeHTTP(w, req)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	resp := &http.Response{
		Status:     http.StatusText(w.status),
		StatusCode: w.status,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     w.sent,
		Request:    req,
	}
	if w.streaming {
		resp.Body, resp.ContentLength = pr, -1
	} else {
		pr.Close()
		resp.Body, resp.ContentLength = &wholeBody{b: w.buf}, int64(len(w.buf))
	}
	return resp, nil
}

// responseWriter is the handler's ResponseWriter. It holds the body until
// the handler flushes or returns, as a server's buffer does.
type responseWriter struct {
	header http.Header
	pipe   *io.PipeWriter

	mu        sync.Mutex
	ready     chan struct{} // closed when the response starts: at the first flush or the handler's end
	started   bool
	streaming bool
	status    int
	sent      http.Header
	buf       []byte
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(status int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderLocked(status)
}

func (w *responseWriter) writeHeaderLocked(status int) {
	if w.sent == nil {
		w.status, w.sent = status, w.header.Clone()
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.sent == nil {
		if _, ok := w.header["Content-Type"]; !ok && len(p) > 0 {
			// As net/http's server does for a handler that sets none.
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
		w.writeHeaderLocked(http.StatusOK)
	}
	if !w.streaming {
		w.buf = append(w.buf, p...)
		w.mu.Unlock()
		return len(p), nil
	}
	w.mu.Unlock()
	return w.pipe.Write(p)
}

// Flush starts the response, and streams the body from then on.
func (w *responseWriter) Flush() {
	w.mu.Lock()
	w.writeHeaderLocked(http.StatusOK)
	if w.started {
		w.mu.Unlock()
		return
	}
	w.started, w.streaming = true, true
	held := w.buf
	w.buf = nil
	close(w.ready)
	w.mu.Unlock()
	if len(held) > 0 {
		w.pipe.Write(held)
	}
}

// finish ends the response when the handler returns.
func (w *responseWriter) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderLocked(http.StatusOK)
	if !w.started {
		w.started = true
		close(w.ready)
	}
	w.pipe.Close()
}

// wholeBody is a body of known length: its last read says EOF too, as a
// client's read of a Content-Length body does.
type wholeBody struct{ b []byte }

func (r *wholeBody) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	if len(r.b) == 0 {
		return n, io.EOF
	}
	return n, nil
}

func (r *wholeBody) Close() error { return nil }
