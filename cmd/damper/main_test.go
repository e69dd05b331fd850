package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/internal/wire"
)

func damper(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = dispatch(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpAndUnknownCommand(t *testing.T) {
	code, out, _ := damper(t, "", "help")
	assert.Equal(t, 0, code)
	for _, cmd := range []string{"damper init", "damper build", "damper run", "damper serve", "damper dev", "damper deploy", "damper policy", "damper version"} {
		assert.Contains(t, out, cmd)
	}
	code, _, errOut := damper(t, "", "frobnicate")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `unknown command "frobnicate"`)
	code, _, _ = damper(t, "")
	assert.Equal(t, 2, code)
	code, _, _ = damper(t, "", "run", "-h")
	assert.Equal(t, 0, code)
}

func TestBuildWritesModuleAndManifest(t *testing.T) {
	root, err := testmodule.RepoRoot()
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "build", "damper.wasm")
	code, stdout, stderr := damper(t, "", "build", "-o", out, filepath.Join(root, "tests", "module"))
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, `damper\.wasm: [0-9.]+ MB raw, [0-9.]+ MB gzip`, stdout)

	raw, err := os.ReadFile(filepath.Join(filepath.Dir(out), "manifest.json"))
	require.NoError(t, err)
	var m wire.Manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	assert.Equal(t, wire.Version, m.ABI)
	var names []string
	for _, a := range m.Agents {
		names = append(names, a.Name)
	}
	assert.Contains(t, names, "hello")

	// Deterministic: a rebuild gives the same bytes (and so hits the
	// compilation cache).
	first, err := os.ReadFile(out)
	require.NoError(t, err)
	code, _, stderr = damper(t, "", "build", "-o", out, filepath.Join(root, "tests", "module"))
	require.Equal(t, 0, code, stderr)
	second, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(first, second), "rebuild changed the module")

	code, _, stderr = damper(t, "", "build", "-o", out, filepath.Join(root, "internal", "wire"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "damper build")
}

func TestRun(t *testing.T) {
	module := testmodule.Path(t)
	data := t.TempDir()
	runHello := func(stdin string, payload ...string) (int, map[string]any, string) {
		args := append([]string{"run", "--module", module, "--data", data, "--id", "alice", "hello"}, payload...)
		code, out, errOut := damper(t, stdin, args...)
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &v), "stdout %q, stderr %q", out, errOut)
		return code, v, errOut
	}
	code, v, errOut := runHello("", `{"name":"world"}`)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `^r_`, v["run"])
	assert.Equal(t, map[string]any{"greeting": "Hello, world!", "visits": float64(1)}, v["result"])

	code, v, errOut = runHello(`{"name":"stdin"}`, "-")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, map[string]any{"greeting": "Hello, stdin!", "visits": float64(2)}, v["result"])
	assert.FileExists(t, filepath.Join(data, "hello", "alice.sqlite"))

	code, v, _ = runHello("", `{"name":7}`)
	assert.Equal(t, 2, code, "bad input")
	assert.Equal(t, wire.ErrInvalidPayload, v["error"].(map[string]any)["type"])

	code, out, _ := damper(t, "", "run", "--module", module, "--data", data, "nope")
	assert.Equal(t, 2, code, "bad input")
	assert.Contains(t, out, `"not_found"`)

	code, _, errOut = damper(t, "", "run", "--module", filepath.Join(t.TempDir(), "missing.wasm"), "hello")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "damper build")

	code, _, _ = damper(t, "", "run")
	assert.Equal(t, 2, code)
}

func TestServe(t *testing.T) {
	t.Setenv("DAMPER_TOKEN", "tok")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveOptions{addr: "127.0.0.1:0", module: testmodule.Path(t), data: t.TempDir(), idle: time.Minute}, pw)
		pw.Close()
	}()
	listening := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
			break
		}
	}
	require.NotEmpty(t, base, "serve printed no address")
	go io.Copy(io.Discard, pr)

	resp, err := http.Get(base + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)

	post := func(token string) *http.Response {
		req, err := http.NewRequest("POST", base+"/agents/hello/x", strings.NewReader(`{"name":"serve"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	assert.Equal(t, 401, post("wrong").StatusCode)
	resp = post("tok")
	require.Equal(t, 200, resp.StatusCode)
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "Hello, serve!", body["result"].(map[string]any)["greeting"])

	cancel()
	require.NoError(t, <-done, "graceful shutdown")
}

func TestServeRefusesNonLoopbackWithoutToken(t *testing.T) {
	t.Setenv("DAMPER_TOKEN", "")
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:8787"} {
		code, _, errOut := damper(t, "", "serve", "--addr", addr, "--module", "unused.wasm")
		assert.Equal(t, 1, code, addr)
		assert.Contains(t, errOut, "without a token", addr)
	}
}

// DAMPER_RUN_TIMEOUT sets serve's default run timeout with the grammar the
// Worker's var takes (worker/runner.js parseRunTimeout).
func TestRunTimeoutEnv(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"": defaultRunTimeout, "90s": 90 * time.Second, "5m": 5 * time.Minute, "1h30m": 90 * time.Minute,
		"1.5s": 1500 * time.Millisecond, "250ms": 250 * time.Millisecond, "0": 0,
	} {
		t.Setenv("DAMPER_RUN_TIMEOUT", v)
		got, err := runTimeoutEnv()
		require.NoError(t, err, v)
		assert.Equal(t, want, got, v)
	}
	for _, v := range []string{"5", "-1s", "1x", "5 m"} {
		t.Setenv("DAMPER_RUN_TIMEOUT", v)
		_, err := runTimeoutEnv()
		assert.ErrorContains(t, err, "DAMPER_RUN_TIMEOUT", v)
		code, _, errOut := damper(t, "", "serve", "--module", "unused.wasm")
		assert.Equal(t, 2, code, v)
		assert.Contains(t, errOut, "DAMPER_RUN_TIMEOUT", v)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8787": true, "127.1.2.3:1": true, "localhost:0": true, "[::1]:0": true,
		"0.0.0.0:0": false, ":8787": false, "example.com:80": false, "garbage": false,
	} {
		assert.Equal(t, want, loopback(addr), addr)
	}
}

func TestReadToken(t *testing.T) {
	t.Setenv("DAMPER_TOKEN", " from-env \n")
	tok, err := readToken("")
	require.NoError(t, err)
	assert.Equal(t, "from-env", tok)

	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("from-file\n"), 0o600))
	tok, err = readToken(file)
	require.NoError(t, err)
	assert.Equal(t, "from-file", tok)

	require.NoError(t, os.WriteFile(file, []byte("\n"), 0o600))
	_, err = readToken(file)
	assert.ErrorContains(t, err, "empty")
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		pos   []string
		dash  []string
		o     string
		build bool
	}{
		{args: nil},
		{args: []string{"./examples/module"}, pos: []string{"./examples/module"}},
		{args: []string{"./pkg", "--", "--port", "9000"}, pos: []string{"./pkg"}, dash: []string{"--port", "9000"}},
		{args: []string{"--", "--port", "9000"}, dash: []string{"--port", "9000"}},
		{args: []string{"--no-build", "--", "--local"}, build: true, dash: []string{"--local"}},
		{args: []string{"-o", "x.wasm", "./pkg", "--", "-e", "prod"}, o: "x.wasm", pos: []string{"./pkg"}, dash: []string{"-e", "prod"}},
		// Flags after positional arguments.
		{args: []string{"hello", "{}", "-o", "y.wasm"}, o: "y.wasm", pos: []string{"hello", "{}"}},
		{args: []string{"hello", "--no-build", "{}", "--o=z.wasm"}, o: "z.wasm", build: true, pos: []string{"hello", "{}"}},
		{args: []string{"hello", "-", "--no-build"}, build: true, pos: []string{"hello", "-"}},
		{args: []string{"hello", "--", "-o", "x"}, pos: []string{"hello"}, dash: []string{"-o", "x"}},
		{args: []string{"--"}, dash: []string{}},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		o := fs.String("o", "", "")
		build := fs.Bool("no-build", false, "")
		pos, dash, err := parseArgs(fs, tc.args)
		require.NoError(t, err, "%q", tc.args)
		assert.Equal(t, tc.pos, pos, "%q", tc.args)
		assert.Equal(t, tc.dash, dash, "%q", tc.args)
		assert.Equal(t, tc.o, *o, "%q", tc.args)
		assert.Equal(t, tc.build, *build, "%q", tc.args)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_, _, err := parseArgs(fs, []string{"hello", "--nope"})
	assert.ErrorContains(t, err, "nope")
}

func TestTargetOverrides(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   string
		flags []string
		want  map[string]string
		err   string
	}{
		{name: "none", want: map[string]string{}},
		{name: "environment", env: "a=http://127.0.0.1:1,b=https://b.test", want: map[string]string{"a": "http://127.0.0.1:1", "b": "https://b.test"}},
		{name: "a flag wins for its service", env: "a=http://127.0.0.1:1,b=https://b.test", flags: []string{"--target", "a=http://127.0.0.1:2/"},
			want: map[string]string{"a": "http://127.0.0.1:2", "b": "https://b.test"}},
		{name: "a flag given twice", flags: []string{"--target", "a=http://x.test", "--target", "a=http://y.test"}, err: "--target"},
		{name: "a bad environment", env: "a=nowhere", err: "DAMPER_TARGETS"},
		{name: "a bad flag", flags: []string{"--target", "a"}, err: "want name=scheme://host[:port]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DAMPER_TARGETS", tc.env)
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			targets := targetFlag(fs)
			require.NoError(t, fs.Parse(tc.flags))
			got, err := targets()
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// damper run points probe.policy's service at a loopback fake with
// --target, takes its secret from the environment, and logs the override.
func TestRunWithTargetAndSecret(t *testing.T) {
	const secret = "cli-test-secret-not-real"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	t.Setenv("PROBE_API_TOKEN", secret)
	t.Setenv("DAMPER_TARGETS", "other="+other.URL)
	code, out, errOut := damper(t, "", "run", "--module", testmodule.Path(t), "--data", t.TempDir(),
		"--target", "api="+srv.URL, "probe.policy", `{"url":"`+srv.URL+`/allowed/x"}`)
	require.Equal(t, 0, code, errOut)
	var v struct {
		Result map[string]any `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	assert.Equal(t, "Bearer [REDACTED:PROBE_API_TOKEN]", v.Result["body"], "sent with the secret, handed back without")
	assert.Contains(t, errOut, "msg=\"target override\" service=api target="+srv.URL)
	assert.Contains(t, errOut, "msg=\"target override\" service=other target="+other.URL)
	assert.NotContains(t, out+errOut, secret)

	code, _, errOut = damper(t, "", "run", "--module", testmodule.Path(t), "--target", "api=ftp://x", "hello")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--target")
}

// A client that sends its request head slowly, or sends nothing on an open
// connection, is disconnected; a client that sends a huge head is refused.
func TestServeCutsOffSlowClients(t *testing.T) {
	defer func(h, r, i time.Duration) { readHeaderTimeout, readTimeout, idleTimeout = h, r, i }(readHeaderTimeout, readTimeout, idleTimeout)
	readHeaderTimeout, readTimeout, idleTimeout = 200*time.Millisecond, 400*time.Millisecond, 200*time.Millisecond
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.ReadAll(r.Body) }))
	srv.Config = newServer(srv.Config.Handler)
	srv.Start()
	defer srv.Close()

	for name, send := range map[string]string{
		"a head that never ends": "POST /agents/hello/x HTTP/1.1\r\nHost: x\r\n",
		"a body that never ends": "POST /agents/hello/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
		"nothing at all":         "",
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			_, err = io.WriteString(conn, send)
			require.NoError(t, err)
			// The server closes the connection: the read ends (EOF or a
			// reset) instead of blocking for good. The deadline only keeps a
			// broken server from hanging the test.
			conn.SetReadDeadline(time.Now().Add(time.Minute))
			_, err = io.ReadAll(conn)
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server kept the connection open")
		})
	}

	req, err := http.NewRequest("GET", srv.URL+"/health", nil)
	require.NoError(t, err)
	req.Header.Set("X-Big", strings.Repeat("a", 2*maxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}
