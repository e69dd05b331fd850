package wranglerdev_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/local"
	"github.com/damperdev/damper/tests/wranglerdev"
)

const token = "wranglerdev-test-token"

// TestServesTheModuleAndKeepsState runs the test module under real wrangler
// dev: health, two runs of hello counting visits, and the count surviving a
// restart on the same state directory.
func TestServesTheModuleAndKeepsState(t *testing.T) {
	module, manifest := testModule(t)
	s := wranglerdev.Start(t, wranglerdev.Options{Module: module, Manifest: manifest, Token: token})

	status, body, hdr := call(t, http.MethodGet, s.URL()+"/health", "", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.JSONEq(t, `{"status":"ok","abi":1}`, body)
	assert.NotEmpty(t, hdr.Get("X-Request-Id"))

	assert.Equal(t, 1, visits(t, s))
	assert.Equal(t, 2, visits(t, s))

	s.Restart()
	assert.Equal(t, 3, visits(t, s), "the Durable Object's SQLite did not survive a restart")
}

// TestWithoutTokenIsNotConfigured: with DAMPER_TOKEN unset, health answers
// and every other route is 503 not_configured.
func TestWithoutTokenIsNotConfigured(t *testing.T) {
	module, manifest := testModule(t)
	s := wranglerdev.Start(t, wranglerdev.Options{Module: module, Manifest: manifest})

	status, body, _ := call(t, http.MethodGet, s.URL()+"/health", "", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	for _, path := range []string{"/agents/hello/x", "/nowhere"} {
		status, body, hdr := call(t, http.MethodPost, s.URL()+path, token, `{"name":"x"}`)
		assert.Equal(t, http.StatusServiceUnavailable, status, "%s: %s", path, body)
		assert.Contains(t, body, `"not_configured"`)
		assert.NotEmpty(t, hdr.Get("X-Request-Id"))
	}
}

// testModule builds the test module and writes its manifest beside a copy,
// as `damper build` does.
func testModule(t *testing.T) (module, manifest string) {
	t.Helper()
	wasm, err := os.ReadFile(testmodule.Path(t))
	require.NoError(t, err)
	m, err := local.ReadManifest(context.Background(), wasm, local.NewConfig())
	require.NoError(t, err)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	dir := t.TempDir()
	module, manifest = filepath.Join(dir, "damper.wasm"), filepath.Join(dir, "manifest.json")
	require.NoError(t, os.WriteFile(module, wasm, 0o644))
	require.NoError(t, os.WriteFile(manifest, b, 0o644))
	return module, manifest
}

func visits(t *testing.T, s *wranglerdev.Server) int {
	t.Helper()
	status, body, _ := call(t, http.MethodPost, s.URL()+"/agents/hello/wranglerdev", token, `{"name":"Ada"}`)
	require.Equal(t, http.StatusOK, status, "%s", body)
	var v struct {
		Run    string `json:"run"`
		Result struct {
			Greeting string `json:"greeting"`
			Visits   int    `json:"visits"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	assert.True(t, strings.HasPrefix(v.Run, "r_"), "run id %q", v.Run)
	assert.Equal(t, "Hello, Ada!", v.Result.Greeting)
	return v.Result.Visits
}

func call(t *testing.T, method, url, bearer, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}
