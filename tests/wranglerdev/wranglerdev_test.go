package wranglerdev_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/internal/wrangler"
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

	// It is the wrangler that package-lock.json pins, on the Node.js it pins.
	root, err := testmodule.RepoRoot()
	require.NoError(t, err)
	log, err := os.ReadFile(s.LogPath())
	require.NoError(t, err)
	assert.Contains(t, string(log), " wrangler "+pinned(t, root, "wrangler")+"\n")
	if pkg := wrangler.NodePackage(); pkg != "" {
		node := filepath.Join(root, "node_modules", ".bin", "node")
		assert.Contains(t, string(log), "=== wranglerdev: "+node+" "+filepath.Join(root, "node_modules", "wrangler", "bin", "wrangler.js")+" dev ")
		out, err := exec.Command(node, "--version").Output()
		require.NoError(t, err)
		assert.Equal(t, "v"+pinned(t, root, pkg)+"\n", string(out))
	}
}

// pinned is the version of the package that root's package-lock.json pins.
func pinned(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "package-lock.json"))
	require.NoError(t, err)
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	require.NoError(t, json.Unmarshal(b, &lock))
	v := lock.Packages["node_modules/"+name].Version
	require.NotEmpty(t, v, "package-lock.json pins no %s", name)
	return v
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
		assert.Contains(t, body, "wrangler secret put DAMPER_TOKEN", "what to do on a deployed Worker")
		assert.Contains(t, body, ".dev.vars", "and locally")
		assert.NotEmpty(t, hdr.Get("X-Request-Id"))
	}
}

// TestDevNeedsNoTokenOnLoopback: with DAMPER_DEV=1, as `damper dev` passes
// it, and no DAMPER_TOKEN, a request for a loopback host runs like on
// `damper serve`, and a request for any other host (a Worker on Cloudflare
// sees its own) still answers 503, saying where the token goes. With a
// token set, the token is required even on loopback.
func TestDevNeedsNoTokenOnLoopback(t *testing.T) {
	module, manifest := testModule(t)
	s := wranglerdev.Start(t, wranglerdev.Options{Module: module, Manifest: manifest, Vars: map[string]string{"DAMPER_DEV": "1"}})
	for _, tc := range []struct {
		host string
		open bool
	}{
		{"", true}, // 127.0.0.1:port, as dialed
		{"localhost", true},
		{"localhost:8787", true},
		{"127.0.0.1", true},
		{"127.9.8.7", true},
		{"[::1]", true},
		{"example.com", false},
		{"damper.example.workers.dev", false},
		{"localhost.example.com", false},
		{"127.0.0.1.nip.io", false},
		{"example.com:8787", false},
		{"0.0.0.0", false},
		{"192.0.2.1", false},
		{"[::ffff:127.0.0.1]", false}, // WHATWG writes it [::ffff:7f00:1]: fail closed
		{"[fe80::1]", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, s.URL()+"/agents/hello/dev", strings.NewReader(`{"name":"dev"}`))
			require.NoError(t, err)
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			if tc.open {
				assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
				assert.Contains(t, string(b), `"greeting":"Hello, dev!"`)
				return
			}
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", b)
			assert.Contains(t, string(b), `"not_configured"`)
			assert.Contains(t, string(b), "DAMPER_TOKEN=<token> in .dev.vars")
		})
	}

	withToken := wranglerdev.Start(t, wranglerdev.Options{Module: module, Manifest: manifest, Token: token, Vars: map[string]string{"DAMPER_DEV": "1"}})
	status, body, _ := call(t, http.MethodPost, withToken.URL()+"/agents/hello/dev", "", `{}`)
	assert.Equal(t, http.StatusUnauthorized, status, "a set token is required on loopback too: %s", body)
	status, body, _ = call(t, http.MethodPost, withToken.URL()+"/agents/hello/dev", token, `{}`)
	assert.Equal(t, http.StatusOK, status, "%s", body)
}

// TestVarsAndSecretsReachTheWorker: a token and a policy's secret with ':',
// '=', ',', spaces, quotes and a backslash (secrets, through .dev.vars)
// reach the Worker exactly; DAMPER_TARGETS (a var, with colons in its URLs)
// points probe.policy's service at a loopback fake and each override is
// logged; no secret value shows in wrangler's output.
func TestVarsAndSecretsReachTheWorker(t *testing.T) {
	module, manifest := testModule(t)
	oddToken := `fake:tok=en,1 "q" 'a' #x`
	fakeSecret := `fake:se=cr,et 'x' \n`
	var gotAuth atomic.Value
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		fmt.Fprintf(w, "you sent %s", r.Header.Get("Authorization"))
	}))
	t.Cleanup(api.Close)
	s := wranglerdev.Start(t, wranglerdev.Options{
		Module: module, Manifest: manifest, Token: oddToken,
		Vars:    map[string]string{"DAMPER_TARGETS": "api=" + api.URL + ", other=HTTP://LocalHost:2/"},
		Secrets: map[string]string{"PROBE_API_TOKEN": fakeSecret},
	})

	status, body, _ := call(t, http.MethodPost, s.URL()+"/agents/hello/vars", oddToken, `{"name":"Ada"}`)
	assert.Equal(t, http.StatusOK, status, "%s", body)
	status, body, _ = call(t, http.MethodPost, s.URL()+"/agents/hello/vars", "fake", `{"name":"Ada"}`)
	assert.Equal(t, http.StatusUnauthorized, status, "the token was cut at its first colon: %s", body)

	status, body, _ = call(t, http.MethodPost, s.URL()+"/agents/probe.policy/vars", oddToken,
		fmt.Sprintf(`{"method":"GET","url":%q}`, api.URL+"/allowed/x"))
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Equal(t, "Bearer "+fakeSecret, gotAuth.Load(), "the secret the fake received")
	assert.Contains(t, body, `"body":"you sent Bearer [REDACTED:PROBE_API_TOKEN]"`)
	assert.NotContains(t, body, "se=cr")

	logged := func() string {
		b, err := os.ReadFile(s.LogPath())
		require.NoError(t, err)
		return string(b)
	}
	// wrangler relays workerd's output on its own schedule.
	require.Eventually(t, func() bool {
		return strings.Contains(logged(), "target override service=other target=http://localhost:2")
	}, time.Minute, 100*time.Millisecond, "the override was not logged:\n%s", logged())
	assert.Contains(t, logged(), "target override service=api target="+api.URL)
	assert.NotContains(t, logged(), oddToken)
	assert.NotContains(t, logged(), fakeSecret)
}

// TestBadTargetsRefuseRuns: a DAMPER_TARGETS that does not parse refuses
// every run with 500 not_configured naming the var, rather than sending the
// agents' requests to the services' real targets.
func TestBadTargetsRefuseRuns(t *testing.T) {
	module, manifest := testModule(t)
	s := wranglerdev.Start(t, wranglerdev.Options{
		Module: module, Manifest: manifest, Token: token,
		Vars: map[string]string{"DAMPER_TARGETS": "api=ftp://127.0.0.1:1"},
	})

	status, body, _ := call(t, http.MethodGet, s.URL()+"/health", "", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	status, body, _ = call(t, http.MethodPost, s.URL()+"/agents/hello/x", token, `{"name":"x"}`)
	assert.Equal(t, http.StatusInternalServerError, status, "%s", body)
	assert.Contains(t, body, `"not_configured"`)
	assert.Contains(t, body, "DAMPER_TARGETS")
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

// TestDeployShipsTheModuleByteForByte is the promise behind `make deploy`:
// what wrangler uploads as the Worker's wasm is exactly the module the
// local host runs and the tests tested.
func TestDeployShipsTheModuleByteForByte(t *testing.T) {
	module, manifest := testModule(t)
	out := wranglerdev.DryRunDeploy(t, module, manifest)
	want, err := os.ReadFile(module)
	require.NoError(t, err)
	shipped, err := filepath.Glob(filepath.Join(out, "*.wasm"))
	require.NoError(t, err)
	require.Len(t, shipped, 1, "wrangler should upload the module as one wasm part")
	got, err := os.ReadFile(shipped[0])
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "the uploaded wasm differs from the module (%d vs %d bytes)", len(got), len(want))
}
