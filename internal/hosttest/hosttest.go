// Package hosttest has the fakes the hosts' tests share: made-up secrets,
// the encodings a response may carry them in, and loopback servers that
// record what they were sent or echo the credential back.
package hosttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// FakeSecret returns a made-up secret value, different at every call, with
// characters that percent-encoding and JSON escape.
func FakeSecret(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return "fake-" + hex.EncodeToString(b) + `/+&= "<`
}

// Encodings are the forms of secret a response may hold: raw, percent-
// encoded, JSON-escaped, base64, and Basic credentials of each user.
func Encodings(secret string, basicUsers ...string) []string {
	js, _ := json.Marshal(secret)
	out := []string{
		secret,
		url.QueryEscape(secret),
		url.PathEscape(secret),
		string(js[1 : len(js)-1]),
		base64.StdEncoding.EncodeToString([]byte(secret)),
	}
	for _, u := range basicUsers {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(u+":"+secret)))
	}
	return out
}

// Recorder is a loopback server that records the requests it gets and
// answers with its handler.
type Recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

// NewRecorder starts a Recorder answering with respond (nil: 200, empty),
// closed when the test ends.
func NewRecorder(tb testing.TB, respond http.HandlerFunc) *Recorder {
	r := &Recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Clone(context.Background()))
		r.mu.Unlock()
		if respond != nil {
			respond(w, req)
		}
	}))
	tb.Cleanup(r.Close)
	return r
}

// Requests returns the requests received so far.
func (r *Recorder) Requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.reqs...)
}

// EchoSecret answers with secret in every encoding (for basicUsers), in a
// header and in a body written in pieces of piece bytes (flushed), so that
// a value lands across reads; X-Echo repeats the Authorization header.
func EchoSecret(secret string, piece int, basicUsers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		w.Header().Set("X-Token-"+url.PathEscape(secret), "in a name")
		var body bytes.Buffer
		for i, e := range Encodings(secret, basicUsers...) {
			fmt.Fprintf(&body, "%d:%s;", i, e)
		}
		b := body.Bytes()
		for len(b) > 0 {
			n := min(piece, len(b))
			w.Write(b[:n])
			w.(http.Flusher).Flush()
			b = b[n:]
		}
	}
}
