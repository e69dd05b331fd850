// Package ownrepo tests damper the way a user meets it: the damper binary,
// run in a project of its own that `damper init` wrote outside this
// repository (pointed at this checkout with a replace directive), through
// go test, build, run, dev (workerd under the project's own wrangler) and
// serve --watch, with edits to the agent picked up without a restart.
package ownrepo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
)

// TestOwnRepository: init, the agent's own test, build, run with flags
// after the arguments, dev answering on loopback with no token and
// reloading an edit, serve --watch doing the same, and deploy shipping the
// module byte for byte.
func TestOwnRepository(t *testing.T) {
	p := newProject(t)

	out := p.damper(t, "init", p.dir, "--module", "example.com/myagents", "--replace-damper", p.root)
	assert.Contains(t, out, "damper init: wrote "+p.dir+": module example.com/myagents, damper from "+p.root)
	assert.NoDirExists(t, filepath.Join(p.dir, "worker"), "nothing of damper's worker/ in the project")

	out = p.command(t, "go", "test", "./...")
	assert.Regexp(t, `(?m)^ok\s+example.com/myagents/hello\s`, out)

	// go.mod pins the CLI as a tool.
	out = p.command(t, "go", "tool", "damper", "version")
	assert.Regexp(t, `^damper \(devel, from `+regexp.QuoteMeta(p.root)+`\), module ABI version 1, go1\.`, out)

	out = p.damper(t, "build")
	assert.Regexp(t, `^build/damper.wasm: [0-9.]+ MB raw, [0-9.]+ MB gzip; ABI 1; agents: hello\nbuild/manifest.json\nbuild/worker/index.js\n$`, out)

	out = p.damper(t, "run", "hello", "{}", "--id", "me")
	assert.Equal(t, result{"Hello, world!", 1}, parseResult(t, out))
	assert.FileExists(t, filepath.Join(p.dir, ".damper", "data", "hello", "me.sqlite"))

	t.Run("dev", func(t *testing.T) {
		dev := p.startDev(t)
		assert.Contains(t, dev.log(), "damper dev: installing wrangler from package-lock.json into node_modules/ (npm ci; once per checkout)")
		first := dev.run(t, "me")
		assert.Equal(t, "Hello, world!", first.Greeting, "no token needed on loopback")

		p.edit(t, `"Hello, %s!"`, `"Howdy, %s!"`)
		after := dev.waitFor(t, "me", "Howdy, world!")
		assert.Greater(t, after.Visits, first.Visits, "the agent instance's state survived the reload")
		assert.Contains(t, dev.log(), "damper dev: hello/hello.go changed; rebuilding")
		assert.Contains(t, dev.log(), "damper dev: rebuilt build/damper.wasm in ")
		assert.Nil(t, dev.cmd.ProcessState, "damper dev kept running")

		// A mistake keeps the last good module serving.
		p.edit(t, `"Howdy, %s!"`, `"Howdy, %s!" +`)
		require.Eventually(t, func() bool {
			return strings.Contains(dev.log(), "damper dev: the rebuild failed; wrangler keeps the previous module")
		},
			3*time.Minute, 100*time.Millisecond, "%s", dev.log())
		assert.Equal(t, "Howdy, world!", dev.run(t, "me").Greeting)
		p.edit(t, `"Howdy, %s!" +`, `"Howdy, %s!"`)
	})

	t.Run("serve_watch", func(t *testing.T) {
		s := p.startServe(t)
		first := s.run(t, "me")
		p.edit(t, `"Howdy, %s!"`, `"Hi, %s!"`)
		after := s.waitFor(t, "me", "Hi, world!")
		assert.Greater(t, after.Visits, first.Visits, "state survived the reload")
		assert.Contains(t, s.log(), `msg=rebuilding changed=hello/hello.go`)
		assert.Regexp(t, `msg=request method=POST path=/agents/hello/me status=200 duration=\S+ request_id=[0-9a-f]+`, s.log())
	})

	t.Run("deploy_dry_run", func(t *testing.T) {
		outdir := t.TempDir()
		out := p.damper(t, "deploy", "--", "--dry-run", "--outdir", outdir)
		assert.Contains(t, out, "set each once per account with `npx wrangler secret put NAME`: DAMPER_TOKEN")
		want, err := os.ReadFile(filepath.Join(p.dir, "build", "damper.wasm"))
		require.NoError(t, err)
		shipped, err := filepath.Glob(filepath.Join(outdir, "*.wasm"))
		require.NoError(t, err)
		require.Len(t, shipped, 1)
		got, err := os.ReadFile(shipped[0])
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "wrangler deploys the module damper built, byte for byte")
	})

	// The container kind, as the scaffold's wrangler.toml says to turn it
	// on: damper deploy writes the image's Dockerfile and entrypoint and
	// builds the Linux sandboxd from the project's damper, before wrangler
	// (which then needs a Docker daemon to build the image: none here).
	t.Run("container_image", func(t *testing.T) {
		toml := filepath.Join(p.dir, "wrangler.toml")
		b, err := os.ReadFile(toml)
		require.NoError(t, err)
		var on []string
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "# [") || strings.HasPrefix(line, "# class_name") || strings.HasPrefix(line, "# image") ||
				strings.HasPrefix(line, "# max_instances") || strings.HasPrefix(line, "# name = \"SANDBOX") ||
				strings.HasPrefix(line, "# tag = \"v2") || strings.HasPrefix(line, "# new_sqlite_classes = [\"Sandbox") ||
				strings.HasPrefix(line, "# enable_containers") {
				line = strings.TrimPrefix(line, "# ")
			}
			on = append(on, line)
		}
		require.NoError(t, os.WriteFile(toml, []byte(strings.Join(on, "\n")), 0o644))
		t.Cleanup(func() { os.WriteFile(toml, b, 0o644) })

		cmd := exec.Command(p.cli, "deploy", "--no-build", "--", "--dry-run", "--outdir", t.TempDir())
		cmd.Dir, cmd.Env = p.dir, p.env
		out, _ := cmd.CombinedOutput()
		assert.Contains(t, string(out), "building sandboxd (linux/amd64) into build/container/")
		for _, f := range []string{"Dockerfile", "entrypoint.sh"} {
			want, err := os.ReadFile(filepath.Join(p.root, "build", "container", f))
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(p.dir, "build", "container", f))
			require.NoError(t, err, "%s", out)
			assert.Equal(t, string(want), string(got), "the image of the damper that built the module")
		}
		elf, err := os.ReadFile(filepath.Join(p.dir, "build", "container", "sandboxd"))
		require.NoError(t, err, "%s", out)
		require.Greater(t, len(elf), 20)
		assert.Equal(t, "\x7fELF", string(elf[:4]), "a Linux executable")
		assert.Equal(t, []byte{0x3e, 0x00}, elf[18:20], "for x86-64, as Cloudflare Containers run")
	})
}

// BenchmarkInitToFirstRun: `damper init` in a fresh directory to the
// first `damper run` result, with Go's caches warm (the first iteration
// warms them; run with -benchtime 3x or more).
func BenchmarkInitToFirstRun(b *testing.B) {
	p := newProject(b)
	for i := 0; b.Loop(); i++ {
		dir := filepath.Join(filepath.Dir(p.dir), fmt.Sprintf("bench%d", i))
		q := *p
		q.dir = dir
		q.damper(b, "init", dir, "--replace-damper", p.root)
		q.damper(b, "build")
		if r := parseResult(b, q.damper(b, "run", "hello", "{}")); r.Visits != 1 {
			b.Fatalf("first run: %+v", r)
		}
	}
}

// BenchmarkReload: an edit of the agent to the first answer of the edited
// code, under `damper dev` (go build, the module's checks, wrangler's
// reload) and `damper serve --watch` (go build, the checks, a new host).
func BenchmarkReload(b *testing.B) {
	p := newProject(b)
	p.damper(b, "init", p.dir, "--replace-damper", p.root)
	for _, host := range []string{"dev", "serve"} {
		b.Run(host, func(b *testing.B) {
			var h *server
			if host == "dev" {
				h = p.startDev(b)
			} else {
				h = p.startServe(b)
			}
			for i := 0; b.Loop(); i++ {
				next := fmt.Sprintf("Hello%d-%d", i, time.Now().UnixNano())
				p.setGreeting(b, next)
				h.waitFor(b, "bench", next+", world!")
			}
		})
	}
}

// project is a project directory outside the repository and the damper
// binary built from this checkout.
type project struct {
	root, cli, dir string
	env            []string
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

func newProject(tb testing.TB) *project {
	tb.Helper()
	root, err := testmodule.RepoRoot()
	require.NoError(tb, err)
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "damper-ownrepo-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "damper")
		cmd := exec.Command("go", "build", "-o", cliPath, "./cmd/damper")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("go build ./cmd/damper: %w\n%s", err, out)
		}
	})
	require.NoError(tb, cliErr)
	dir := filepath.Join(tb.TempDir(), "myagents")
	rel, err := filepath.Rel(root, dir)
	require.NoError(tb, err)
	require.True(tb, strings.HasPrefix(rel, ".."), "the project %s must be outside the repository %s", dir, root)
	// The environment of a user who has set nothing up: no token.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DAMPER_") {
			env = append(env, kv)
		}
	}
	env = append(env, "WRANGLER_SEND_METRICS=false", "CI=true", "NO_COLOR=1", "FORCE_COLOR=0")
	return &project{root: root, cli: cliPath, dir: dir, env: env}
}

// command runs name in the project (in its parent before it exists) and
// returns its combined output, failing tb unless it succeeds.
func (p *project) command(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = p.dir
	if _, err := os.Stat(p.dir); err != nil {
		cmd.Dir = filepath.Dir(p.dir)
	}
	cmd.Env = p.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(tb, cmd.Run(), "%s %s:\n%s", name, strings.Join(args, " "), out.String())
	return out.String()
}

func (p *project) damper(tb testing.TB, args ...string) string {
	tb.Helper()
	return p.command(tb, p.cli, args...)
}

// edit replaces old with new in the hello agent's source.
func (p *project) edit(tb testing.TB, old, new string) {
	tb.Helper()
	path := filepath.Join(p.dir, "hello", "hello.go")
	b, err := os.ReadFile(path)
	require.NoError(tb, err)
	require.Contains(tb, string(b), old)
	require.NoError(tb, os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644))
}

var greeting = regexp.MustCompile(`"[^"]*, %s!"`)

// setGreeting makes the hello agent greet with word.
func (p *project) setGreeting(tb testing.TB, word string) {
	tb.Helper()
	path := filepath.Join(p.dir, "hello", "hello.go")
	b, err := os.ReadFile(path)
	require.NoError(tb, err)
	require.Regexp(tb, greeting, string(b))
	require.NoError(tb, os.WriteFile(path, greeting.ReplaceAll(b, []byte(`"`+word+`, %s!"`)), 0o644))
}

// server is a damper dev or damper serve the test started, in its own
// process group (wrangler and workerd go with it).
type server struct {
	cmd     *exec.Cmd
	url     string
	logPath string
}

func (p *project) start(tb testing.TB, args ...string) *server {
	tb.Helper()
	s := &server{logPath: filepath.Join(tb.TempDir(), "server.log")}
	logf, err := os.Create(s.logPath)
	require.NoError(tb, err)
	defer logf.Close()
	s.cmd = exec.Command(p.cli, args...)
	s.cmd.Dir = p.dir
	s.cmd.Env = p.env
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(tb, s.cmd.Start())
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
		}
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if tb.Failed() {
			tb.Logf("%s %s:\n%s", p.cli, strings.Join(args, " "), s.log())
		}
	})
	return s
}

// startDev runs `damper dev` on free ports and waits for /health.
func (p *project) startDev(tb testing.TB) *server {
	tb.Helper()
	port, inspector := freePort(tb), freePort(tb)
	s := p.start(tb, "dev", "--", "--port", strconv.Itoa(port), "--inspector-port", strconv.Itoa(inspector), "--show-interactive-dev-session=false")
	s.url = "http://127.0.0.1:" + strconv.Itoa(port)
	s.waitHealthy(tb)
	return s
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startServe runs `damper serve --watch` on a free port.
func (p *project) startServe(tb testing.TB) *server {
	tb.Helper()
	s := p.start(tb, "serve", "--watch", "--addr", "127.0.0.1:0")
	require.Eventually(tb, func() bool {
		m := listening.FindStringSubmatch(s.log())
		if m != nil {
			s.url = m[1]
		}
		return m != nil || s.cmd.ProcessState != nil
	}, 3*time.Minute, 50*time.Millisecond, "damper serve printed no address:\n%s", s.log())
	require.NotEmpty(tb, s.url, "damper serve exited:\n%s", s.log())
	return s
}

func (s *server) log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

func (s *server) waitHealthy(tb testing.TB) {
	tb.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	require.Eventually(tb, func() bool {
		resp, err := client.Get(s.url + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Minute, 100*time.Millisecond, "GET /health did not answer 200:\n%s", s.log())
}

type result struct {
	Greeting string `json:"greeting"`
	Visits   int    `json:"visits"`
}

func parseResult(tb testing.TB, body string) result {
	tb.Helper()
	var v struct {
		Run    string `json:"run"`
		Result result `json:"result"`
	}
	require.NoError(tb, json.Unmarshal([]byte(body), &v), "%s", body)
	require.True(tb, strings.HasPrefix(v.Run, "r_"), "%s", body)
	return v.Result
}

// post runs hello on instance id with no Authorization header.
func (s *server) post(id string) (int, string, error) {
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Post(s.url+"/agents/hello/"+id, "application/json", strings.NewReader(`{}`))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (s *server) run(tb testing.TB, id string) result {
	tb.Helper()
	status, body, err := s.post(id)
	require.NoError(tb, err)
	require.Equal(tb, http.StatusOK, status, "%s", body)
	return parseResult(tb, body)
}

// waitFor polls until the served greeting is want: the edit was rebuilt
// and loaded. Runs in between may still answer with the old code.
func (s *server) waitFor(tb testing.TB, id, want string) result {
	tb.Helper()
	var last result
	var lastBody string
	require.Eventually(tb, func() bool {
		status, body, err := s.post(id)
		if err != nil || status != http.StatusOK {
			lastBody = fmt.Sprint(status, body, err)
			return false
		}
		lastBody = body
		last = parseResult(tb, body)
		return last.Greeting == want
	}, 5*time.Minute, 100*time.Millisecond, "the greeting never became %q (last answer %s):\n%s", want, lastBody, s.log())
	return last
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
