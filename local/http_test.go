package local

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

const testToken = "s3cret-token"

type apiResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func (r apiResponse) errorType() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

type apiRequest struct {
	method, path string
	body         io.Reader
	token        *string // nil: the right token
	header       map[string]string
}

func do(t *testing.T, srv *httptest.Server, req apiRequest) apiResponse {
	t.Helper()
	r, err := http.NewRequest(req.method, srv.URL+req.path, req.body)
	require.NoError(t, err)
	token := testToken
	if req.token != nil {
		token = *req.token
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := apiResponse{status: resp.StatusCode, header: resp.Header}
	require.NoError(t, json.Unmarshal(raw, &out.body), "body %q", raw)

	// Every response: a request id and JSON; every error: the error shape.
	assert.Regexp(t, `^[0-9a-f]{32}$`, resp.Header.Get("X-Request-Id"))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	if resp.StatusCode >= 400 {
		e, ok := out.body["error"].(map[string]any)
		require.True(t, ok, "error body %s", raw)
		assert.NotEmpty(t, e["type"])
		assert.NotEmpty(t, e["message"])
		assert.Len(t, out.body, 1)
	}
	return out
}

func strp(s string) *string { return &s }

func newServer(t *testing.T, cfg Config) (*Host, *httptest.Server) {
	h := newHost(t, cfg)
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return h, srv
}

func TestHTTPRunAndHealth(t *testing.T) {
	_, srv := newServer(t, testConfig(t).WithToken(testToken))

	r := do(t, srv, apiRequest{method: "GET", path: "/health", token: strp("")})
	assert.Equal(t, 200, r.status)
	assert.Equal(t, map[string]any{"status": "ok", "abi": float64(wire.Version)}, r.body)

	r = do(t, srv, apiRequest{method: "POST", path: "/agents/hello/alice", body: strings.NewReader(`{"name":"world"}`)})
	require.Equal(t, 200, r.status, "%v", r.body)
	assert.Regexp(t, `^r_[0-9a-f]+$`, r.body["run"])
	assert.Equal(t, map[string]any{"greeting": "Hello, world!", "visits": float64(1)}, r.body["result"])

	r = do(t, srv, apiRequest{method: "POST", path: "/agents/hello/alice", body: strings.NewReader(`{"name":"again"}`)})
	assert.Equal(t, float64(2), r.body["result"].(map[string]any)["visits"])
	// The bearer scheme is case-insensitive.
	r = do(t, srv, apiRequest{method: "POST", path: "/agents/hello/bob", body: strings.NewReader(`{"name":"x"}`),
		token: strp(""), header: map[string]string{"Authorization": "bearer " + testToken}})
	assert.Equal(t, 200, r.status)
}

// Every row of docs/http.md's error table that the local host can answer.
func TestHTTPErrors(t *testing.T) {
	_, srv := newServer(t, testConfig(t).WithToken(testToken))
	oversized := bytes.Repeat([]byte(" "), wire.MaxPayload+1)
	for _, tc := range []struct {
		name   string
		req    apiRequest
		status int
		typ    string
		check  func(t *testing.T, r apiResponse)
	}{
		{"invalid_name: space", apiRequest{method: "POST", path: "/agents/hello/a%20b"}, 400, errInvalidName, nil},
		{"invalid_name: dot dot", apiRequest{method: "POST", path: "/agents/hello/.."}, 400, errInvalidName, nil},
		{"invalid_name: dot", apiRequest{method: "POST", path: "/agents/./x"}, 400, errInvalidName, nil},
		{"invalid_name: encoded slash", apiRequest{method: "POST", path: "/agents/hello/a%2F..%2F..%2Fx"}, 400, errInvalidName, nil},
		{"invalid_name: too long", apiRequest{method: "POST", path: "/agents/hello/" + strings.Repeat("a", 129)}, 400, errInvalidName, nil},
		{"invalid_name before unknown agent", apiRequest{method: "POST", path: "/agents/no%20pe/x"}, 400, errInvalidName, nil},
		{"invalid_json", apiRequest{method: "POST", path: "/agents/hello/x", body: strings.NewReader(`{"name":`)}, 400, errInvalidJSON, nil},
		{"invalid_json: two values", apiRequest{method: "POST", path: "/agents/hello/x", body: strings.NewReader(`{} {}`)}, 400, errInvalidJSON, nil},
		{"invalid_payload: unknown field", apiRequest{method: "POST", path: "/agents/hello/x", body: strings.NewReader(`{"nom":"x"}`)}, 400, wire.ErrInvalidPayload,
			func(t *testing.T, r apiResponse) {
				assert.Contains(t, r.body["error"].(map[string]any)["message"], "nom")
			}},
		{"invalid_payload: wrong type", apiRequest{method: "POST", path: "/agents/hello/x", body: strings.NewReader(`{"name":1}`)}, 400, wire.ErrInvalidPayload, nil},
		{"unauthorized: no token", apiRequest{method: "POST", path: "/agents/hello/x", token: strp("")}, 401, errUnauthorized,
			func(t *testing.T, r apiResponse) { assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate")) }},
		{"unauthorized: wrong token", apiRequest{method: "POST", path: "/agents/hello/x", token: strp("s3cret-tokeN")}, 401, errUnauthorized, nil},
		{"unauthorized: prefix of token", apiRequest{method: "POST", path: "/agents/hello/x", token: strp("s3cret")}, 401, errUnauthorized, nil},
		{"unauthorized before route", apiRequest{method: "GET", path: "/nowhere", token: strp("")}, 401, errUnauthorized, nil},
		{"unauthorized before everything else", apiRequest{method: "GET", path: "/agents/no%20pe/x", token: strp(""), body: bytes.NewReader(oversized)}, 401, errUnauthorized, nil},
		{"not_found: route", apiRequest{method: "GET", path: "/nowhere"}, 404, errNotFound, nil},
		{"not_found: agents root", apiRequest{method: "POST", path: "/agents/hello"}, 404, errNotFound, nil},
		{"not_found: deeper path", apiRequest{method: "POST", path: "/agents/hello/x/y"}, 404, errNotFound, nil},
		{"not_found: agent", apiRequest{method: "POST", path: "/agents/nope/x", body: strings.NewReader(`{}`)}, 404, errNotFound, nil},
		{"not_found before size", apiRequest{method: "POST", path: "/agents/nope/x", body: bytes.NewReader(oversized)}, 404, errNotFound, nil},
		{"method_not_allowed", apiRequest{method: "GET", path: "/agents/hello/x"}, 405, errMethod,
			func(t *testing.T, r apiResponse) { assert.Equal(t, "POST, DELETE", r.header.Get("Allow")) }},
		{"method_not_allowed: runs", apiRequest{method: "POST", path: "/agents/hello/x/runs"}, 405, errMethod,
			func(t *testing.T, r apiResponse) { assert.Equal(t, "GET", r.header.Get("Allow")) }},
		{"method_not_allowed: a run", apiRequest{method: "POST", path: "/agents/hello/x/runs/r_1"}, 405, errMethod,
			func(t *testing.T, r apiResponse) { assert.Equal(t, "GET, DELETE", r.header.Get("Allow")) }},
		{"not_found: a run", apiRequest{method: "GET", path: "/agents/hello/x/runs/r_1"}, 404, errNotFound, nil},
		{"not_found: a run's events", apiRequest{method: "GET", path: "/agents/hello/x/runs/r_1/events"}, 404, errNotFound, nil},
		{"not_found: cancel a run", apiRequest{method: "DELETE", path: "/agents/hello/x/runs/r_1"}, 404, errNotFound, nil},
		{"not_found: under a run", apiRequest{method: "GET", path: "/agents/hello/x/runs/r_1/y"}, 404, errNotFound, nil},
		{"invalid_name: run", apiRequest{method: "GET", path: "/agents/hello/x/runs/a%20b"}, 400, errInvalidName, nil},
		{"not_found: agent's runs", apiRequest{method: "GET", path: "/agents/nope/x/runs"}, 404, errNotFound, nil},
		{"invalid_request: Last-Event-ID", apiRequest{method: "GET", path: "/agents/hello/x/events", header: map[string]string{"Last-Event-ID": "x1"}}, 400, errInvalidRequest, nil},
		{"invalid_request: after", apiRequest{method: "GET", path: "/agents/hello/x/events?after=-1"}, 400, errInvalidRequest, nil},
		{"invalid_request: background", apiRequest{method: "POST", path: "/agents/hello/x?background=maybe", body: strings.NewReader(`{}`)}, 400, errInvalidRequest, nil},
		{"invalid_request: limit", apiRequest{method: "GET", path: "/agents/hello/x/runs?limit=0"}, 400, errInvalidRequest, nil},
		{"method_not_allowed before name", apiRequest{method: "PUT", path: "/agents/hello/.."}, 405, errMethod, nil},
		{"method_not_allowed: health", apiRequest{method: "POST", path: "/health", token: strp("")}, 405, errMethod,
			func(t *testing.T, r apiResponse) { assert.Equal(t, "GET, HEAD", r.header.Get("Allow")) }},
		{"payload_too_large", apiRequest{method: "POST", path: "/agents/hello/x", body: bytes.NewReader(oversized)}, 413, errTooLarge, nil},
		{"payload_too_large: chunked", apiRequest{method: "POST", path: "/agents/hello/x", body: io.MultiReader(bytes.NewReader(oversized))}, 413, errTooLarge, nil},
		{"agent_error", apiRequest{method: "POST", path: "/agents/probe.fail/x"}, 500, wire.ErrAgent, nil},
		{"module_trap", apiRequest{method: "POST", path: "/agents/probe.crash/x", body: strings.NewReader(`{"mode":"panic"}`)}, 500, errModuleTrap, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, srv, tc.req)
			assert.Equal(t, tc.status, r.status, "%v", r.body)
			assert.Equal(t, tc.typ, r.errorType(), "%v", r.body)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}

	t.Run("a body of exactly 1 MiB is read", func(t *testing.T) {
		body := append([]byte(`{"name":"x"}`), bytes.Repeat([]byte(" "), wire.MaxPayload-len(`{"name":"x"}`))...)
		r := do(t, srv, apiRequest{method: "POST", path: "/agents/hello/x", body: bytes.NewReader(body)})
		assert.Equal(t, 200, r.status, "%v", r.body)
	})

	t.Run("busy", func(t *testing.T) {
		// One run sleeps; 256 wait behind it; the next is refused.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		started := make(chan struct{})
		var once sync.Once
		cfg := testConfig(t).WithToken(testToken)
		cfg.onBatch = func(string, string, []wire.Effect) { once.Do(func() { close(started) }) }
		h, srv := newServer(t, cfg)
		wg.Go(func() { h.Run(ctx, "probe.sleep", "busy", mustJSON(t, map[string]any{"ms": 3_600_000})) })
		<-started
		for range wire.MaxWaiting {
			wg.Go(func() { h.Run(ctx, "probe.sleep", "busy", mustJSON(t, map[string]any{"ms": 1})) })
		}
		require.Eventually(t, func() bool { return h.waiting("probe.sleep", "busy") == wire.MaxWaiting },
			time.Minute, time.Millisecond, "all runs queued")
		r := do(t, srv, apiRequest{method: "POST", path: "/agents/probe.sleep/busy", body: strings.NewReader(`{"ms":1}`)})
		assert.Equal(t, 429, r.status)
		assert.Equal(t, errBusy, r.errorType())
		// Another agent instance is not affected.
		r = do(t, srv, apiRequest{method: "POST", path: "/agents/probe.sleep/other", body: strings.NewReader(`{"ms":1}`)})
		assert.Equal(t, 200, r.status)
	})

	t.Run("internal: host closed", func(t *testing.T) {
		closed := newHost(t, testConfig(t))
		require.NoError(t, closed.Close(context.Background()))
		srv := httptest.NewServer(closed.Handler())
		defer srv.Close()
		r := do(t, srv, apiRequest{method: "POST", path: "/agents/hello/x", body: strings.NewReader(`{"name":"x"}`)})
		assert.Equal(t, 503, r.status)
		assert.Equal(t, errInterrupted, r.errorType())
	})
}

func (h *Host) waiting(agent, id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ai := h.instances[instanceKey{agent, id}]; ai != nil {
		return ai.waiting
	}
	return 0
}

// Bad input changes no stored state: no database is created for it, and an
// existing one keeps its contents.
func TestHTTPBadInputLeavesStateUnchanged(t *testing.T) {
	cfg := testConfig(t).WithToken(testToken)
	h, srv := newServer(t, cfg)
	r := do(t, srv, apiRequest{method: "POST", path: "/agents/probe.state/s", body: strings.NewReader(`{"op":"set","key":"k","value":"v1"}`)})
	require.Equal(t, 200, r.status, "%v", r.body)
	before := snapshot(t, h.cfg.dataDir)

	oversized := bytes.Repeat([]byte("x"), wire.MaxPayload+1)
	for _, req := range []apiRequest{
		{method: "POST", path: "/agents/probe.state/s", body: strings.NewReader(`{"op":"set","key":"k","value":"v2"}`), token: strp("wrong")},
		{method: "GET", path: "/agents/probe.state/s"},
		{method: "POST", path: "/agents/probe.state/s", body: bytes.NewReader(oversized)},
		{method: "POST", path: "/agents/probe.state/s", body: strings.NewReader(`{"op":"set","key":"k","value":`)},
		{method: "POST", path: "/agents/probe.state/s", body: strings.NewReader(`{"op":"set","key":"k","value":"v2","extra":1}`)},
		{method: "POST", path: "/agents/probe.state/s", body: strings.NewReader(`{"op":"set","key":7,"value":"v2"}`)},
		{method: "POST", path: "/agents/probe.state/fresh", body: strings.NewReader(`{"op":"set","key":7,"value":"v2"}`)},
		{method: "POST", path: "/agents/hello/fresh", body: strings.NewReader(`{"name":false}`)},
		{method: "POST", path: "/agents/nope/fresh", body: strings.NewReader(`{}`)},
		{method: "POST", path: "/agents/probe.state/..%2Fhello", body: strings.NewReader(`{}`)},
	} {
		r := do(t, srv, req)
		require.GreaterOrEqual(t, r.status, 400, "%s %s: %v", req.method, req.path, r.body)
	}
	r = do(t, srv, apiRequest{method: "POST", path: "/agents/probe.state/s", body: strings.NewReader(`{"op":"get","key":"k"}`)})
	assert.Equal(t, map[string]any{"found": true, "value": "v1"}, r.body["result"])
	assert.Equal(t, before, snapshot(t, h.cfg.dataDir), "no database file was added")
}

// snapshot lists the database files under dir (the WAL's side files come
// and go with checkpoints, so they are left out).
func snapshot(t *testing.T, dir string) []string {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".sqlite") {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, rel)
		}
		return nil
	})
	require.NoError(t, err)
	return files
}

func TestHTTPWithoutToken(t *testing.T) {
	_, srv := newServer(t, testConfig(t))
	r := do(t, srv, apiRequest{method: "POST", path: "/agents/hello/x", body: strings.NewReader(`{"name":"x"}`), token: strp("")})
	assert.Equal(t, 200, r.status)
}
