// Package wranglerdev runs the damper Worker under `wrangler dev` (real
// workerd, with its Durable Objects and their SQLite) for tests.
//
// Start stages a copy of the Worker with the module under test, starts the
// wrangler pinned in package-lock.json (running `npm ci` first unless
// node_modules holds exactly what the lock pins) on free loopback ports,
// waits until GET /health answers, and turns off DevTools' network view,
// which a deployed Worker does not have and which aborts workerd on a
// corrupt gzip body (devtools.go). wrangler runs on the Node.js the lock
// pins (internal/wrangler); npm, and a node to run it, are required: without
// them Start fails the test.
//
// Plain vars (such as DAMPER_TARGETS) are passed as `--var NAME:VALUE`,
// which wrangler splits at the first colon, so values may hold ':', '=' and
// ','. Secrets (the token, and those the agents' policies name) are written
// to the staged Worker's .dev.vars, which is how wrangler dev loads secrets
// locally: they stay out of the process list and out of wrangler's output.
package wranglerdev

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/internal/wrangler"
	"github.com/damperdev/damper/worker"
)

// DefaultStartTimeout bounds the wait for a started wrangler dev to answer
// GET /health. Here it usually answers within two seconds; the margin is for
// a loaded machine.
const DefaultStartTimeout = 90 * time.Second

// Options say what the Worker serves and how.
type Options struct {
	// Module is the path of the damper module (.wasm) the Worker imports as
	// build/damper.wasm. Required.
	Module string
	// Manifest is the path of the module's manifest.json, imported as
	// build/manifest.json. Required.
	Manifest string
	// Token is DAMPER_TOKEN, a secret. Empty leaves it unset, so every
	// route but /health answers 503 not_configured (unless Vars hold
	// DAMPER_DEV=1, as damper dev passes it: then loopback needs none).
	Token string
	// StateDir is where workerd keeps the Durable Objects' storage
	// (--persist-to). It outlives Restart. Empty means a t.TempDir.
	StateDir string
	// Vars are more --var bindings (name to value) for the Worker's env,
	// such as DAMPER_TARGETS.
	Vars map[string]string
	// Secrets are Worker secrets (name to value) for the Worker's env,
	// written to .dev.vars: the secrets that agents' policies name. A value
	// cannot hold a line break, nor all three of ' " and `.
	Secrets map[string]string
	// StartTimeout bounds the wait for /health; zero means DefaultStartTimeout.
	StartTimeout time.Duration
}

// Server is a running `wrangler dev`.
type Server struct {
	t         testing.TB
	opts      Options
	root      string // the repository: where node_modules is
	stage     string // the staged Worker: wrangler.toml, build/ (module, manifest, worker/)
	port      int
	inspector int
	logPath   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start stages the Worker with opts.Module and starts wrangler dev on it. It
// fails t unless the Worker answers GET /health with 200 within
// opts.StartTimeout. The server is stopped when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Module == "" || opts.Manifest == "" {
		t.Fatalf("wranglerdev: Options.Module and Options.Manifest are required")
	}
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	// wrangler runs in the staged directory: a relative path would land there.
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	opts.StateDir = stateDir
	if opts.StartTimeout == 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	devVars, err := devVarsFile(opts)
	if err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	root, err := testmodule.RepoRoot()
	if err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	if err := ensureWrangler(root); err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	s := &Server{t: t, opts: opts, root: root, stage: t.TempDir()}
	s.logPath = filepath.Join(t.TempDir(), "wrangler.log")
	if err := s.stageWorker(devVars); err != nil {
		t.Fatalf("wranglerdev: staging the Worker: %v", err)
	}
	if s.port, err = freePort(); err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	if s.inspector, err = freePort(); err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("wranglerdev: last lines of %s:\n%s", s.logPath, tail(s.logPath, 40))
		}
	})
	if err := s.start(); err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	return s
}

// URL is the Worker's base URL, such as http://127.0.0.1:41234. It stays the
// same across Restart.
func (s *Server) URL() string {
	return "http://127.0.0.1:" + strconv.Itoa(s.port)
}

// LogPath is the file that collects wrangler's output, across restarts.
func (s *Server) LogPath() string { return s.logPath }

// Stop ends wrangler and every process it started (workerd runs as its
// child), and waits for wrangler to exit. Stopping a stopped server does
// nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	pgid := s.cmd.Process.Pid // Setpgid: the group is led by wrangler
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	// Anything of the group that outlived wrangler goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	s.cmd = nil
}

// Restart stops wrangler dev and starts it again on the same ports and the
// same StateDir, so stored state must survive. Restart may be called from a
// subtest: a failure to come back is reported with Errorf on the test that
// called Start (with wrangler's output), and the calls that follow fail.
func (s *Server) Restart() {
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Errorf("wranglerdev: restart: %v", err)
	}
}

// start runs wrangler dev and waits for /health.
func (s *Server) start() error {
	began := time.Now()
	done, err := s.launch()
	if err != nil {
		return err
	}
	if err := s.waitHealthy(done); err != nil {
		s.Stop()
		return fmt.Errorf("%w\n--- last lines of %s ---\n%s", err, s.logPath, tail(s.logPath, 60))
	}
	if err := disableNetworkView(s.inspector, s.opts.StartTimeout); err != nil {
		s.Stop()
		return fmt.Errorf("turning off DevTools' network view: %w", err)
	}
	s.logf("/health answered %s after start", time.Since(began).Round(time.Millisecond))
	return nil
}

// launch starts the wrangler dev process, its output going to the log file.
func (s *Server) launch() (<-chan struct{}, error) {
	args := []string{"dev",
		"--config", filepath.Join(s.stage, "wrangler.toml"),
		"--ip", "127.0.0.1",
		"--port", strconv.Itoa(s.port),
		"--inspector-port", strconv.Itoa(s.inspector),
		"--persist-to", s.opts.StateDir,
		"--show-interactive-dev-session=false",
	}
	for _, k := range sortedKeys(s.opts.Vars) {
		args = append(args, "--var", k+":"+s.opts.Vars[k])
	}
	cmd, err := wrangler.Command(s.root, args...)
	if err != nil {
		return nil, err
	}
	cmd.Dir = s.stage
	cmd.Env = append(cmd.Env,
		"WRANGLER_SEND_METRICS=false",
		"CI=true",
		"NO_COLOR=1",
		"FORCE_COLOR=0",
		"WRANGLER_LOG_PATH="+filepath.Join(s.stage, ".wrangler", "logs"),
	)
	// No stdin (/dev/null), so no TTY and no interactive session. Output goes
	// straight to a file: no pipe for workerd's children to hold open.
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Stop kills the group
	s.logf("%s", strings.Join(redact(cmd.Args), " "))

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting wrangler: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	return done, nil
}

// logf adds a line of its own to the log file.
func (s *Server) logf(format string, args ...any) {
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== wranglerdev: "+format+"\n", args...)
}

// waitHealthy polls GET /health until it answers 200, wrangler exits, or the
// start timeout passes.
func (s *Server) waitHealthy(exited <-chan struct{}) error {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(s.opts.StartTimeout)
	for {
		resp, err := client.Get(s.URL() + "/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("wrangler dev exited before GET /health answered 200")
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s/health did not answer 200 within %s (last error: %v)", s.URL(), s.opts.StartTimeout, err)
		}
	}
}

// stageWorker lays out what wrangler.toml expects, with the module under
// test in place of the shipped one: wrangler.toml, build/damper.wasm,
// build/manifest.json, the Worker in build/worker/, node_modules linked
// from the repository, and the secrets in .dev.vars beside wrangler.toml.
func (s *Server) stageWorker(devVars []byte) error {
	return stage(s.root, s.stage, s.opts.Module, s.opts.Manifest, devVars)
}

// stage lays out in dir what `damper build` leaves in a checkout:
// wrangler.toml, the module and its manifest as build/damper.wasm and
// build/manifest.json, the Worker that the damper CLI embeds (package
// worker) in build/worker/, node_modules, and .dev.vars when given.
func stage(root, dir, module, manifest string, devVars []byte) error {
	if devVars != nil {
		if err := os.WriteFile(filepath.Join(dir, ".dev.vars"), devVars, 0o600); err != nil {
			return err
		}
	}
	if err := copyFile(filepath.Join(root, "wrangler.toml"), filepath.Join(dir, "wrangler.toml")); err != nil {
		return err
	}
	// [[containers]] names the image's Dockerfile: wrangler checks it is
	// there, even with enable_containers = false.
	for _, f := range []string{"Dockerfile", "entrypoint.sh"} {
		if err := copyFile(filepath.Join(root, "build", "container", f), filepath.Join(dir, "build", "container", f)); err != nil {
			return err
		}
	}
	if err := copyFile(module, filepath.Join(dir, "build", "damper.wasm")); err != nil {
		return err
	}
	if err := copyFile(manifest, filepath.Join(dir, "build", "manifest.json")); err != nil {
		return err
	}
	if err := worker.Write(filepath.Join(dir, "build"), "damper.wasm"); err != nil {
		return err
	}
	return os.Symlink(filepath.Join(root, "node_modules"), filepath.Join(dir, "node_modules"))
}

// DryRunDeploy runs `wrangler deploy --dry-run` on the Worker with module
// and manifest, as `make deploy` would ship them, and returns the directory
// holding what wrangler would upload. No account or network is involved.
func DryRunDeploy(t testing.TB, module, manifest string) string {
	t.Helper()
	root, err := testmodule.RepoRoot()
	if err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	if err := ensureWrangler(root); err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	dir, out := t.TempDir(), t.TempDir()
	if err := stage(root, dir, module, manifest, nil); err != nil {
		t.Fatalf("wranglerdev: staging the Worker: %v", err)
	}
	// A Dockerfile image needs a Docker daemon even for --dry-run: the
	// container's entry is checked without one (tests/container_test.go),
	// the rest of the configuration here.
	toml, err := os.ReadFile(filepath.Join(dir, "wrangler.toml"))
	if err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wrangler.toml"), WithoutContainers(toml), 0o644); err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	cmd, err := wrangler.Command(root, "deploy", "--dry-run", "--outdir", out)
	if err != nil {
		t.Fatalf("wranglerdev: %v", err)
	}
	cmd.Dir = dir
	cmd.Env = append(cmd.Env, "WRANGLER_SEND_METRICS=false", "CI=true", "NO_COLOR=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wranglerdev: wrangler deploy --dry-run: %v\n%s", err, b)
	}
	return out
}

// ensureWrangler runs `npm ci` in root unless node_modules holds what
// package-lock.json pins (wrangler, and the Node.js it runs on). A lock file
// keeps concurrent test processes (go test runs packages in parallel) from
// installing at once.
func ensureWrangler(root string) error {
	stale := wrangler.Stale(root)
	if stale == "" {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("%s, and npm is not installed to run `npm ci`: install Node.js and npm", stale)
	}
	sum := sha256.Sum256([]byte(root))
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "damper-npm-ci-"+hex.EncodeToString(sum[:8])+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking for npm ci: %w", err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if wrangler.Stale(root) == "" {
		return nil // another process installed it while we waited
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "WRANGLER_SEND_METRICS=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s (%s): %w\n%s", root, stale, err, out)
	}
	if stale := wrangler.Stale(root); stale != "" {
		return fmt.Errorf("after npm ci in %s: %s", root, stale)
	}
	return nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func copyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// envName is what a var or secret may be called: wrangler splits --var at
// the first ':', and .dev.vars names are dotenv's.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// devVarsFile returns the .dev.vars text for the token and opts.Secrets, or
// nil when there is none. Every value is quoted so that wrangler's dotenv
// parser reads it back exactly: single quotes unless the value holds one,
// then double quotes (inside which dotenv turns \n and \r into line
// breaks), then backquotes.
func devVarsFile(opts Options) ([]byte, error) {
	secrets := map[string]string{}
	for k, v := range opts.Secrets {
		secrets[k] = v
	}
	if opts.Token != "" {
		if _, ok := secrets["DAMPER_TOKEN"]; ok {
			return nil, errors.New("DAMPER_TOKEN is given both as Token and in Secrets")
		}
		secrets["DAMPER_TOKEN"] = opts.Token
	}
	for k := range opts.Vars {
		if !envName.MatchString(k) {
			return nil, fmt.Errorf("var name %q: want [A-Za-z_][A-Za-z0-9_]*", k)
		}
		if _, ok := secrets[k]; ok {
			return nil, fmt.Errorf("%s is given both as a var and as a secret", k)
		}
	}
	if len(secrets) == 0 {
		return nil, nil
	}
	var b strings.Builder
	b.WriteString("# Written by tests/wranglerdev: the secrets of this test Worker.\n")
	for _, k := range sortedKeys(secrets) {
		line, err := devVarsLine(k, secrets[k])
		if err != nil {
			return nil, err
		}
		b.WriteString(line)
	}
	return []byte(b.String()), nil
}

func devVarsLine(name, value string) (string, error) {
	if !envName.MatchString(name) {
		return "", fmt.Errorf("secret name %q: want [A-Za-z_][A-Za-z0-9_]*", name)
	}
	if strings.ContainsAny(value, "\r\n") {
		return "", fmt.Errorf("secret %s: a line break cannot be written to .dev.vars", name)
	}
	for _, q := range []string{"'", `"`, "`"} {
		if strings.Contains(value, q) || q == `"` && (strings.Contains(value, `\n`) || strings.Contains(value, `\r`)) {
			continue
		}
		return name + "=" + q + value + q + "\n", nil
	}
	return "", fmt.Errorf("secret %s: a value holding ', \" and ` cannot be quoted in .dev.vars", name)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// redact hides --var values in the logged command line: a test may pass a
// fake secret as a var.
func redact(args []string) []string {
	out := append([]string(nil), args...)
	for i := 1; i < len(out); i++ {
		if out[i-1] == "--var" {
			if name, _, ok := strings.Cut(out[i], ":"); ok {
				out[i] = name + ":(hidden)"
			}
		}
	}
	return out
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WithoutContainers returns a wrangler.toml without its [[containers]]
// tables: what `wrangler deploy --dry-run` can check without Docker.
func WithoutContainers(toml []byte) []byte {
	var out []string
	skip := false
	for _, line := range strings.SplitAfter(string(toml), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			skip = t == "[[containers]]"
		}
		if !skip {
			out = append(out, line)
		}
	}
	return []byte(strings.Join(out, ""))
}
