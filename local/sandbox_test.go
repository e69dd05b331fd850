package local

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/sandboxop"
	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/sandboxtest"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// testBinaries builds sandboxd and the gohttp client once per process.
func testBinaries(t testing.TB) (sandboxd, gohttp string) {
	t.Helper()
	binOnce.Do(func() {
		root, err := testmodule.RepoRoot()
		if err != nil {
			binErr = err
			return
		}
		if binDir, binErr = os.MkdirTemp("", "damper-bin-"); binErr != nil {
			return
		}
		for _, b := range [][2]string{{"sandboxd", "./cmd/sandboxd"}, {"gohttp", "./local/testdata/gohttp"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b[0]), b[1])
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("build %s: %w\n%s", b[1], err, out)
				return
			}
		}
	})
	require.NoError(t, binErr)
	return filepath.Join(binDir, "sandboxd"), filepath.Join(binDir, "gohttp")
}

func containerConfig(t testing.TB) Config {
	sbd, _ := testBinaries(t)
	return testConfig(t).WithSandboxd([]string{sbd}, 0, "")
}

// probeClient is a sandbox.Sandbox whose every operation is one run of
// agent (probe.sandbox.local or probe.sandbox.container) on (h, id): the
// kind through the real module and the host's effects.
func probeClient(t *testing.T, h *Host, agent, id string, kind sandbox.Kind) sandbox.Sandbox {
	op := func(ctx context.Context, req sandboxop.Request) (sandboxop.Response, error) {
		var r sandboxop.Response
		res, err := h.Run(ctx, agent, id, mustJSON(t, req))
		if err != nil {
			return r, err
		}
		return r, json.Unmarshal(res.Result, &r)
	}
	r, err := op(t.Context(), sandboxop.Request{Op: sandboxop.OpOpen})
	require.NoError(t, err)
	require.Nil(t, r.Error)
	return sandboxop.Client(kind, r.Dir, op)
}

var sandboxSeq atomic.Int64

func TestLocalKindConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Sandbox {
		h := newHost(t, testConfig(t).WithLocalSandbox(t.TempDir()))
		return probeClient(t, h, "probe.sandbox.local", "l", sandbox.KindLocal)
	}, sandboxtest.Features{Permissions: os.Geteuid() != 0})
}

// The local kind passes its commands the allowlisted environment only.
func TestLocalKindEnvironment(t *testing.T) {
	t.Setenv("DAMPER_TEST_SECRET", "fake-token-local-env")
	t.Setenv("DAMPER_TEST_SHARED", "shared-value")
	h := newHost(t, testConfig(t).WithLocalSandbox(t.TempDir(), "DAMPER_TEST_SHARED"))
	sb := probeClient(t, h, "probe.sandbox.local", "l", sandbox.KindLocal)
	res, err := sb.Exec(t.Context(), sandbox.Cmd{Script: "env"})
	require.NoError(t, err)
	assert.NotContains(t, res.Stdout, "fake-token-local-env")
	assert.Contains(t, res.Stdout, "DAMPER_TEST_SHARED=shared-value\n")
	assert.Contains(t, res.Stdout, "PATH=")
}

func TestContainerKindConformance(t *testing.T) {
	h := newHost(t, containerConfig(t))
	sandboxtest.Run(t, func(t *testing.T) sandbox.Sandbox {
		return probeClient(t, h, "probe.sandbox.container", fmt.Sprintf("c%d", sandboxSeq.Add(1)), sandbox.KindContainer)
	}, sandboxtest.Features{Permissions: true})
}

// A sandboxd killed in the middle of an exec fails that call with an
// error that says so, is started again for the next operation, and the
// files are intact; sleep and wake keep them too; destroy removes them.
func TestContainerLifecycle(t *testing.T) {
	h := newHost(t, containerConfig(t))
	sb := probeClient(t, h, "probe.sandbox.container", "life", sandbox.KindContainer)
	ctx := t.Context()
	require.NoError(t, sb.WriteFile(ctx, "kept.txt", []byte("stored")))
	pid := h.sandboxes.Pid("probe.sandbox.container", "life")
	require.NotZero(t, pid)

	errc := make(chan error, 1)
	go func() {
		_, err := sb.Exec(ctx, sandbox.Cmd{Script: "echo started > marker; sleep 60"})
		errc <- err
	}()
	require.Eventually(t, func() bool {
		ok, _ := os.Stat(filepath.Join(h.cfg.dataDir, "probe.sandbox.container", "life.container", "workspace", "marker"))
		return ok != nil
	}, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
	err := <-errc
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sandboxd went away during exec")

	b, err := sb.ReadFile(ctx, "kept.txt")
	require.NoError(t, err, "started again for the next operation")
	assert.Equal(t, "stored", string(b))
	assert.NotEqual(t, pid, h.sandboxes.Pid("probe.sandbox.container", "life"), "a new process")

	require.True(t, h.sandboxes.Sleep("probe.sandbox.container", "life"))
	assert.Zero(t, h.sandboxes.Pid("probe.sandbox.container", "life"), "asleep: no process")
	b, err = sb.ReadFile(ctx, "kept.txt")
	require.NoError(t, err, "woken by the next operation")
	assert.Equal(t, "stored", string(b))

	// DELETE /agents/{agent}/{id}: the instance's state and its container.
	_, err = h.Delete(ctx, "probe.sandbox.container", "life")
	require.NoError(t, err)
	assert.Zero(t, h.sandboxes.Pid("probe.sandbox.container", "life"))
	assert.NoDirExists(t, filepath.Join(h.cfg.dataDir, "probe.sandbox.container", "life.container"))
	ok, err := sb.Exists(ctx, "kept.txt")
	require.NoError(t, err)
	assert.False(t, ok, "destroyed: a new, empty sandbox")
}

// fakeEgressAPI is the service the container's requests reach: it records
// every request's credential headers.
type fakeEgressAPI struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newFakeEgressAPI(t *testing.T) *fakeEgressAPI {
	f := &fakeEgressAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.Header.Clone())
		f.mu.Unlock()
		// Echoing the credential back: the host must scrub it.
		fmt.Fprintf(w, "hello from %s %s auth=%s key=%s", r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeEgressAPI) last() http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		return nil
	}
	return f.seen[len(f.seen)-1]
}

const (
	egressToken = "fake-token-egress-5f2a9c1e"
	plainToken  = "fake-token-plain-7b3d0e4f"
)

// The container's own requests pass the agent's policy: allowed ones
// reach the (loopback) service with the credential the host injected,
// over HTTP and intercepted HTTPS, from curl and from a Go client, while
// nothing in the container holds the secret; denied ones get 403 with
// the decision; direct connections fail where the host isolates the
// container; and every decision is an event of the run.
func TestContainerEgress(t *testing.T) {
	_, gohttp := testBinaries(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the egress tests need curl on the PATH: %v", err)
	}
	api := newFakeEgressAPI(t)
	plain := httptest.NewServer(api.Config.Handler) // the same fake, another origin
	t.Cleanup(plain.Close)
	h := newHost(t, containerConfig(t).
		WithTargets(map[string]string{"api": api.URL, "plain": plain.URL}).
		WithSecrets(func(name string) (string, bool) {
			switch name {
			case "EGRESS_TOKEN":
				return egressToken, true
			case "PLAIN_TOKEN":
				return plainToken, true
			}
			return "", false
		}))
	const agentName, id = "probe.sandbox.container", "egress"
	var mu sync.Mutex
	var events []Event
	exec1 := func(t *testing.T, script string) *sandboxop.Result {
		t.Helper()
		cmd := sandboxop.Cmd{Script: script, TimeoutMs: 20_000}
		res, err := h.Run(t.Context(), agentName, id, mustJSON(t, sandboxop.Request{Op: sandboxop.OpExec, Cmd: &cmd}),
			OnEvent(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }))
		require.NoError(t, err)
		var r sandboxop.Response
		require.NoError(t, json.Unmarshal(res.Result, &r))
		require.Nil(t, r.Error, "%+v", r.Error)
		return r.Result
	}
	data, err := os.ReadFile(gohttp)
	require.NoError(t, err)
	sb := probeClient(t, h, agentName, id, sandbox.KindContainer)
	require.NoError(t, sb.WriteFile(t.Context(), "gohttp", data))
	exec1(t, "chmod +x gohttp")

	t.Run("allowed", func(t *testing.T) {
		for _, tt := range []struct{ name, script, want, header, secret string }{
			{"curl_https", "curl -sS https://api.damper.test/v1/hello", "hello from GET /v1/hello", "Authorization", "Bearer " + egressToken},
			{"curl_http", "curl -sS http://plain.damper.test/v1/hello", "hello from GET /v1/hello", "X-Api-Key", plainToken},
			{"curl_post_body", `curl -sS -X POST -H 'Content-Type: application/json' -d '{"kind":"note"}' https://api.damper.test/v1/items`, "hello from POST /v1/items", "Authorization", "Bearer " + egressToken},
			{"go_https", "./gohttp https://api.damper.test/v1/go", "200 hello from GET /v1/go", "Authorization", "Bearer " + egressToken},
			{"go_http", "./gohttp http://plain.damper.test/v1/go", "200 hello from GET /v1/go", "X-Api-Key", plainToken},
			// The container's own credentials never pass: the host's replace them.
			{"userinfo_replaced", "curl -sS https://user:pw@api.damper.test/v1/hello", "hello from GET /v1/hello", "Authorization", "Bearer " + egressToken},
			{"own_auth_replaced", "curl -sS -H 'Authorization: Basic dXNlcjpwdw==' https://api.damper.test/v1/hello", "hello from GET /v1/hello", "Authorization", "Bearer " + egressToken},
			{"host_header_ignored", "curl -sS -H 'Host: evil.damper.test' https://api.damper.test/v1/hello", "hello from GET /v1/hello", "Authorization", "Bearer " + egressToken},
		} {
			t.Run(tt.name, func(t *testing.T) {
				res := exec1(t, tt.script)
				require.Equal(t, 0, res.ExitCode, "stdout %s stderr %s", res.Stdout, res.Stderr)
				assert.Contains(t, string(res.Stdout), tt.want)
				assert.Equal(t, tt.secret, api.last().Get(tt.header), "the host injected the credential")
				assert.NotContains(t, string(res.Stdout), egressToken, "the echoed credential was scrubbed")
				assert.NotContains(t, string(res.Stdout), plainToken, "the echoed credential was scrubbed")
				assert.Contains(t, string(res.Stdout), "[REDACTED:")
			})
		}
	})

	t.Run("no_secret_inside", func(t *testing.T) {
		// What the host made for the child: its workspace and the instance's
		// directory around it, and the CA's directory. (Not all of /tmp: a
		// checkout of this repository there holds the tokens in this file.)
		res := exec1(t, `env; cat /proc/self/environ | tr '\0' '\n'; grep -rs -e `+egressToken+` -e `+plainToken+` "$HOME/.." $(dirname "$SSL_CERT_FILE") | grep -v /proc/; echo done`)
		assert.NotContains(t, string(res.Stdout), egressToken)
		assert.NotContains(t, string(res.Stdout), plainToken)
		assert.Contains(t, string(res.Stdout), "HTTPS_PROXY=")
		if os.Geteuid() == 0 {
			res = exec1(t, fmt.Sprintf("cat /proc/%d/environ", os.Getpid()))
			assert.NotEqual(t, 0, res.ExitCode, "the host's own environment is out of reach")
		}
	})

	t.Run("denied", func(t *testing.T) {
		before := len(api.seen)
		for _, tt := range []struct{ name, script, reason string }{
			{"path", "curl -sS -w '%{http_code}' https://api.damper.test/admin", "deny-level"},
			{"method", "curl -sS -w '%{http_code}' -X DELETE https://api.damper.test/v1/hello", "deny-level"},
			{"body", `curl -sS -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{"kind":"secret"}' https://api.damper.test/v1/items`, "deny-level"},
			{"host", "curl -sS -w '%{http_code}' https://evil.damper.test/v1/hello", "no-service"},
			{"http_host", "curl -sS -w '%{http_code}' http://evil.damper.test/v1/hello", "no-service"},
			{"scheme_swap", "curl -sS -w '%{http_code}' http://api.damper.test/v1/hello", "no-service"},
			{"go_path", "./gohttp https://api.damper.test/admin", ""},
			// Bypass attempts: each must fail closed.
			{"dot_segments", "curl -sS -w '%{http_code}' --path-as-is https://api.damper.test/v1/../admin", "deny-level"},
			{"encoded_dots", "curl -sS -w '%{http_code}' --path-as-is https://api.damper.test/v1/%2e%2e/admin", ""},
			{"placeholder_from_inside", `curl -sS -w '%{http_code}' -H 'Authorization: Bearer ${secret:EGRESS_TOKEN}' https://api.damper.test/v1/hello`, ""},
			{"ip_literal", "curl -sS -w '%{http_code}' http://127.0.0.1:9/v1/hello", "ip-literal"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				res := exec1(t, tt.script)
				assert.Contains(t, string(res.Stdout), "403", "%s", res.Stdout)
				assert.Contains(t, string(res.Stdout), "policy_denied")
				assert.NotContains(t, string(res.Stdout), "hello from", "it reached the service")
				if tt.reason != "" {
					assert.Contains(t, string(res.Stdout), tt.reason)
				}
			})
		}
		// An https URL in a plain request to the proxy (no CONNECT) is
		// refused: the proxy decrypts only what it terminates itself.
		res := exec1(t, `exec 3<>/dev/tcp/127.0.0.1/3128 && printf 'GET https://api.damper.test/v1/hello HTTP/1.1\r\nHost: api.damper.test\r\nConnection: close\r\n\r\n' >&3 && head -1 <&3`)
		assert.Contains(t, string(res.Stdout), "HTTP/1.1 400", "%s", res.Stdout)
		assert.Equal(t, before, len(api.seen), "no denied request reached the service")
	})

	t.Run("direct_bypass", func(t *testing.T) {
		res := exec1(t, "curl -sS --max-time 5 --noproxy '*' "+api.URL+"/v1/direct; echo exit=$?")
		if !h.sandboxes.Isolated(agentName, id) {
			t.Fatalf("this host could not give the container a network namespace of its own: direct connections reach the network (%s)", res.Stdout)
		}
		assert.NotContains(t, string(res.Stdout), "hello from", "a direct connection reached the service")
		assert.NotContains(t, string(res.Stdout), "exit=0")
		res = exec1(t, "curl -sS --max-time 5 --noproxy '*' http://1.1.1.1/; echo exit=$?")
		assert.NotContains(t, string(res.Stdout), "exit=0", "no route out")
	})

	t.Run("events", func(t *testing.T) {
		mu.Lock()
		defer mu.Unlock()
		var allows, denies int
		for _, e := range events {
			switch e.Type {
			case "egress.allow":
				allows++
			case "egress.deny":
				denies++
			default:
				continue
			}
			assert.NotContains(t, string(e.Data), egressToken)
			assert.Regexp(t, `^r_`, e.Run, "the event belongs to the run that ran the command")
		}
		assert.GreaterOrEqual(t, allows, 5)
		assert.GreaterOrEqual(t, denies, 7)
	})
}

// BenchmarkContainerExec is one exec through the module, the container
// effect and the child sandboxd: a run of probe.sandbox.container.
func BenchmarkContainerExec(b *testing.B) {
	h := newHost(b, containerConfig(b).WithLogger(slog.New(slog.DiscardHandler)))
	cmd := sandboxop.Cmd{Script: "true"}
	payload := mustJSON(b, sandboxop.Request{Op: sandboxop.OpExec, Cmd: &cmd})
	for b.Loop() {
		if _, err := h.Run(b.Context(), "probe.sandbox.container", "bench", payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkContainerEgress is one request of a command in the container
// through the egress proxy: the decision (an egress task in the module),
// the host's send with the credential, the scrubbed answer. One curl
// sends 50 requests per exec over one connection (HTTPS: one tunnel), so
// the exec's cost is spread out; the metric is per request.
func BenchmarkContainerEgress(b *testing.B) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	b.Cleanup(api.Close)
	plain := httptest.NewServer(api.Config.Handler)
	b.Cleanup(plain.Close)
	h := newHost(b, containerConfig(b).
		WithLogger(slog.New(slog.DiscardHandler)).
		WithTargets(map[string]string{"api": api.URL, "plain": plain.URL}).
		WithSecrets(func(name string) (string, bool) { return "fake-token-bench-0000", true }))
	for _, tt := range []struct{ name, url string }{{"https", "https://api.damper.test/v1/x"}, {"http", "http://plain.damper.test/v1/x"}} {
		b.Run(tt.name, func(b *testing.B) {
			const n = 50
			script := "curl -sS -o /dev/null" + strings.Repeat(" "+tt.url, n)
			cmd := sandboxop.Cmd{Script: script, TimeoutMs: 60_000}
			payload := mustJSON(b, sandboxop.Request{Op: sandboxop.OpExec, Cmd: &cmd})
			for b.Loop() {
				res, err := h.Run(b.Context(), "probe.sandbox.container", "bench-egress", payload)
				if err != nil {
					b.Fatal(err)
				}
				if !strings.Contains(string(res.Result), `"exit_code":0`) {
					b.Fatalf("%s", res.Result)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/request")
		})
	}
}

// The remote kinds stream a command's output through the module as it is
// printed: the writers get each line in its own write, before the command
// ends, and exactly what the Result keeps; a sandboxd killed mid-stream
// fails the exec with an error that says so.
func TestRemoteKindsStream(t *testing.T) {
	h := newHost(t, containerConfig(t).WithLocalSandbox(t.TempDir()))
	for _, kind := range []sandbox.Kind{sandbox.KindLocal, sandbox.KindContainer} {
		t.Run(string(kind), func(t *testing.T) {
			out := run(t, h, "probe.sandbox.stream", "s", map[string]any{"kind": kind, "script": "echo one; echo e1 >&2; sleep 0.3; echo two; echo e2 >&2"})
			assert.Equal(t, []any{"one\n", "two\n"}, out["stdout"], "%v", out)
			assert.Equal(t, []any{"e1\n", "e2\n"}, out["stderr"])
			res := out["result"].(map[string]any)
			assert.Equal(t, "one\ntwo\n", res["stdout"])
			assert.EqualValues(t, 0, res["exit_code"])

			out = run(t, h, "probe.sandbox.stream", "s", map[string]any{"kind": kind, "script": "head -c 3000000 /dev/zero | tr '\\0' x"})
			var n int
			for _, w := range out["stdout"].([]any) {
				n += len(w.(string))
			}
			assert.Equal(t, sandbox.DefaultMaxOutput, n, "the writers got the capped output only")
			assert.Equal(t, true, out["result"].(map[string]any)["truncated"])
		})
	}

	t.Run("killed_mid_stream", func(t *testing.T) {
		errc := make(chan map[string]any, 1)
		go func() {
			errc <- run(t, h, "probe.sandbox.stream", "k", map[string]any{"kind": sandbox.KindContainer, "script": "echo started; sleep 60"})
		}()
		require.Eventually(t, func() bool { return h.sandboxes.Pid("probe.sandbox.stream", "k") != 0 }, 20*time.Second, 10*time.Millisecond)
		time.Sleep(300 * time.Millisecond) // the command is running
		require.NoError(t, syscall.Kill(-h.sandboxes.Pid("probe.sandbox.stream", "k"), syscall.SIGKILL))
		out := <-errc
		assert.Contains(t, out["error"], "went away before the command ended")
		out = run(t, h, "probe.sandbox.stream", "k", map[string]any{"kind": sandbox.KindContainer, "script": "echo again"})
		assert.Equal(t, []any{"again\n"}, out["stdout"], "started again for the next exec: %v", out)
	})
}
