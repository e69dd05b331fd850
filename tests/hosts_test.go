package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/tests/wranglerdev"
)

// host is one running host of the HTTP API: the same assertions run against
// each.
type host interface {
	URL() string
	// Restart stops the host and starts it again on the same stored state.
	Restart(t testing.TB)
}

// artifacts are built once per test process: the damper CLI and, with it, the
// test module (hello plus the probe agents) and its manifest.
type artifacts struct {
	cli, module, manifest string
}

var (
	buildOnce sync.Once
	built     artifacts
	buildErr  error
)

func build(t testing.TB) artifacts {
	t.Helper()
	buildOnce.Do(func() {
		root, err := testmodule.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "damper-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		built = artifacts{
			cli:      filepath.Join(dir, "damper"),
			module:   filepath.Join(dir, "build", "damper.wasm"),
			manifest: filepath.Join(dir, "build", "manifest.json"),
		}
		steps := [][]string{
			{"go", "build", "-o", built.cli, "./cmd/damper"},
			{built.cli, "build", "-o", built.module, "./tests/module"},
		}
		for _, s := range steps {
			cmd := exec.Command(s[0], s[1:]...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("%s: %w\n%s", strings.Join(s, " "), err, out)
				return
			}
		}
	})
	require.NoError(t, buildErr)
	return built
}

// localHost is `damper serve` as a user runs it: a child process on loopback
// with its SQLite files under a data directory that outlives restarts.
type localHost struct {
	a     artifacts
	data  string
	token string
	env   map[string]string
	cmd   *exec.Cmd
	url   string
	log   *os.File
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

func startLocal(t testing.TB, token string, env map[string]string) *localHost {
	t.Helper()
	h := &localHost{a: build(t), data: t.TempDir(), token: token, env: env}
	h.start(t)
	t.Cleanup(h.stop)
	return h
}

func (h *localHost) URL() string { return h.url }

func (h *localHost) Restart(t testing.TB) {
	t.Helper()
	h.stop()
	h.start(t)
}

func (h *localHost) start(t testing.TB) {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	require.NoError(t, err)
	h.log = logf
	cmd := exec.Command(h.a.cli, "serve", "--addr", "127.0.0.1:0", "--data", h.data, "--module", h.a.module)
	cmd.Env = append(os.Environ(), "DAMPER_TOKEN="+h.token)
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.Stdout = logf
	require.NoError(t, cmd.Start())
	h.cmd = cmd

	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(logf, stderr)
	}()
	select {
	case h.url = <-found:
	case <-time.After(2 * time.Minute):
		h.stop()
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("damper serve did not report its address:\n%s", out)
	}
}

func (h *localHost) stop() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = h.cmd.Process.Kill()
		<-done
	}
	h.cmd = nil
}

// workerHost is the Worker under `wrangler dev`: real workerd, the Durable
// Object's SQLite persisted to a directory that outlives restarts.
type workerHost struct{ s *wranglerdev.Server }

func startWorker(t testing.TB, token string, env map[string]string) *workerHost {
	t.Helper()
	a := build(t)
	// Configuration goes in as vars; anything named like a secret goes in
	// .dev.vars, as `wrangler secret put` would, off the command line.
	vars, secrets := map[string]string{}, map[string]string{}
	for k, v := range env {
		if strings.HasPrefix(k, "DAMPER_") {
			vars[k] = v
		} else {
			secrets[k] = v
		}
	}
	s := wranglerdev.Start(t, wranglerdev.Options{
		Module:   a.module,
		Manifest: a.manifest,
		StateDir: t.TempDir(),
		Token:    token,
		Vars:     vars,
		Secrets:  secrets,
	})
	return &workerHost{s: s}
}

func (h *workerHost) URL() string { return h.s.URL() }

func (h *workerHost) Restart(t testing.TB) {
	t.Helper()
	h.s.Restart()
}

// forEachHost runs fn against the local host and the Worker, each started
// fresh with its own state, the given token and environment (the process
// environment locally; vars and secrets of the Worker's env).
func forEachHost(t *testing.T, token string, env map[string]string, fn func(t *testing.T, h host)) {
	t.Run("local", func(t *testing.T) { fn(t, startLocal(t, token, env)) })
	t.Run("workers", func(t *testing.T) { fn(t, startWorker(t, token, env)) })
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
