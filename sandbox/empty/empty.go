// Package empty links the empty kind of sandbox into a module: an
// in-memory file system and an in-process POSIX shell that run inside the
// module, on both hosts, with no container.
//
// Import it for its effect, where the module's agents are registered:
//
//	import _ "github.com/damperdev/damper/sandbox/empty"
//
// and open the sandbox in a run with sandbox.Open(ctx, sandbox.Empty()).
// Only a module that imports this package pays for the shell (its
// interpreter and commands); importing package sandbox alone does not.
//
// # Files
//
// The working directory is /workspace, empty at first. Its files belong
// to the agent instance: they are kept in the instance's storage (SQLite:
// the Durable Object's on Workers, a file locally) and every run of the
// instance sees them. A module instance loads them once, at its first
// Open for the agent instance, and keeps them in memory; every operation
// and every Exec that changed files writes the changes back in one atomic
// sql batch before it returns. /tmp also exists for the shell, in memory
// only: it is gone when the module instance is (as a container's tmpfs is
// at a restart). Paths outside /workspace are refused with
// sandbox.ErrEscape (the shell says "Permission denied"), as are symbolic
// links, which the kind does not have.
//
// Limits (sandbox.Limits; defaults DefaultMaxFileSize, DefaultMaxTotalSize,
// DefaultMaxFiles) bound the working directory, and /tmp on its own,
// because both live in the module's memory.
//
// # Shell
//
// Exec runs POSIX sh with the bash extensions models write: variables,
// quoting, arrays, if/for/while/until/case, functions and local, $(...),
// arithmetic, pipes, redirections and here-documents, &&/||, set -e, -u,
// -o pipefail, -x, traps on EXIT, and the everyday commands (Commands
// lists them). Every command runs in Go over the in-memory files; there
// are no processes. Pipeline stages run one after the other, each reading
// what the previous one printed (at most 16 MiB, after which the writer
// stops as if the reader had gone). A script stops with exit code 124 when
// Cmd.Timeout passes or after a budget of steps: on Workers the clock does
// not advance while the module computes, so the budget is what stops a
// busy loop there. sleep waits through the run (a sleep effect), so it
// never blocks the module instance. See docs/sandbox.md for what the shell
// supports and what it does not.
package empty

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/damperdev/damper/runtime/instance"
	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/empty/internal/memfs"
	"github.com/damperdev/damper/sandbox/empty/internal/shell"
)

// Dir is the working directory of every empty sandbox.
const Dir = "/workspace"

// tmpDir is the shell's scratch directory, kept in memory only.
const tmpDir = "/tmp"

// Default limits of the empty kind. A module instance holds the files in
// its memory, and a Durable Object's isolate has 128 MB for all of them.
const (
	DefaultMaxFileSize  = 4 << 20  // 4 MiB
	DefaultMaxTotalSize = 16 << 20 // 16 MiB
	DefaultMaxFiles     = 10_000
)

// stepsPerSecond turns Cmd.Timeout into the shell's step budget, and
// maxSteps caps it: on Workers the clock stands still while the module
// computes, so the budget is what ends a busy loop there, before the
// platform's CPU limit ends the whole request.
const (
	stepsPerSecond = 500_000
	maxSteps       = 20_000_000
)

func init() {
	sandbox.RegisterKind(sandbox.KindEmpty, open)
	instance.OnForget(forget)
}

// Commands lists the commands the empty kind's shell runs, builtins
// included, sorted: what a tool can tell a model it has.
func Commands() []string { return shell.Commands() }

var (
	mu sync.Mutex
	// states are the sandboxes this module instance has loaded, by agent
	// instance ("agent/id").
	states = map[string]*state{}
)

func forget() {
	mu.Lock()
	defer mu.Unlock()
	clear(states)
}

func limitsOf(spec sandbox.Spec) memfs.Limits {
	l := memfs.Limits{MaxFileSize: spec.Limits.MaxFileSize, MaxTotalSize: spec.Limits.MaxTotalSize, MaxFiles: spec.Limits.MaxFiles}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = DefaultMaxTotalSize
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	return l
}

func open(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	key, ok := instance.Key(ctx)
	if !ok {
		return nil, errors.New("not in a run: open the sandbox with the run's context, whose agent instance it belongs to")
	}
	limits := limitsOf(spec)
	mu.Lock()
	st, ok := states[key]
	if !ok {
		st = newState(limits, &sqlStore{key: key})
		states[key] = st
	}
	mu.Unlock()
	st.setLimits(limits)
	if err := st.ensureLoaded(ctx); err != nil {
		return nil, err
	}
	return &box{st: st, key: key}, nil
}

// newMemory returns an empty sandbox that keeps its files in memory only,
// for tests and benchmarks that run outside a run.
func newMemory(limits sandbox.Limits) *box {
	return &box{st: newState(limitsOf(sandbox.Spec{Limits: limits}), nil)}
}

// box is a handle on an agent instance's sandbox.
type box struct {
	st  *state
	key string // the agent instance; "" for a memory-only sandbox
}

var _ sandbox.Sandbox = (*box)(nil)

func (b *box) Kind() sandbox.Kind { return sandbox.KindEmpty }

func (b *box) Dir() string { return Dir }

// begin checks ctx and makes sure the files are in memory.
func (b *box) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.key != "" {
		key, ok := instance.Key(ctx)
		if !ok {
			return errors.New("empty sandbox: not in a run: pass the run's context")
		}
		if key != b.key {
			return fmt.Errorf("empty sandbox: it belongs to agent instance %s, not %s", b.key, key)
		}
	}
	return b.st.ensureLoaded(ctx)
}

// resolve maps a name of the FS surface onto the working directory's file
// system: relative names against /workspace, absolute ones inside it.
func resolve(op, name string) (string, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	abs := name
	if !strings.HasPrefix(abs, "/") {
		abs = Dir + "/" + abs
	}
	abs = path.Clean(abs)
	switch {
	case abs == Dir:
		return ".", nil
	case strings.HasPrefix(abs, Dir+"/"):
		return abs[len(Dir)+1:], nil
	}
	return "", &fs.PathError{Op: op, Path: name, Err: sandbox.ErrEscape}
}

func (b *box) ReadFile(ctx context.Context, name string) ([]byte, error) {
	p, err := resolve("open", name)
	if err != nil {
		return nil, err
	}
	if err := b.begin(ctx); err != nil {
		return nil, err
	}
	data, err := b.st.work.ReadFile(p)
	if err != nil {
		return nil, memfs.Relabel(err, name)
	}
	return append([]byte(nil), data...), nil
}

func (b *box) ReadText(ctx context.Context, name string) (string, error) {
	data, err := b.ReadFile(ctx, name)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(data) || strings.IndexByte(string(data), 0) >= 0 {
		return "", &fs.PathError{Op: "read", Path: name, Err: sandbox.ErrNotText}
	}
	return string(data), nil
}

func (b *box) WriteFile(ctx context.Context, name string, data []byte) error {
	p, err := resolve("open", name)
	if err != nil {
		return err
	}
	if err := b.begin(ctx); err != nil {
		return err
	}
	if p == "." {
		return &fs.PathError{Op: "open", Path: name, Err: sandbox.ErrIsDir}
	}
	if err := b.st.work.WriteFileAll(p, data); err != nil {
		return memfs.Relabel(err, name)
	}
	return b.st.commit(ctx)
}

func (b *box) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	p, err := resolve("stat", name)
	if err != nil {
		return nil, err
	}
	if err := b.begin(ctx); err != nil {
		return nil, err
	}
	in, err := b.st.work.Stat(p)
	if err != nil {
		return nil, memfs.Relabel(err, name)
	}
	return in, nil
}

func (b *box) ReadDir(ctx context.Context, name string) ([]fs.DirEntry, error) {
	p, err := resolve("open", name)
	if err != nil {
		return nil, err
	}
	if err := b.begin(ctx); err != nil {
		return nil, err
	}
	infos, err := b.st.work.ReadDir(p)
	if err != nil {
		return nil, memfs.Relabel(err, name)
	}
	out := make([]fs.DirEntry, len(infos))
	for i, in := range infos {
		out[i] = in
	}
	return out, nil
}

func (b *box) Exists(ctx context.Context, name string) (bool, error) {
	p, err := resolve("stat", name)
	if err != nil {
		return false, err
	}
	if err := b.begin(ctx); err != nil {
		return false, err
	}
	_, err = b.st.work.Stat(p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, sandbox.ErrNotDir):
		return false, nil
	}
	return false, memfs.Relabel(err, name)
}

func (b *box) MkdirAll(ctx context.Context, name string) error {
	p, err := resolve("mkdir", name)
	if err != nil {
		return err
	}
	if err := b.begin(ctx); err != nil {
		return err
	}
	if err := b.st.work.MkdirAll(p); err != nil {
		return memfs.Relabel(err, name)
	}
	return b.st.commit(ctx)
}

func (b *box) RemoveAll(ctx context.Context, name string) error {
	p, err := resolve("remove", name)
	if err != nil {
		return err
	}
	if err := b.begin(ctx); err != nil {
		return err
	}
	if err := b.st.work.RemoveAll(p); err != nil {
		return memfs.Relabel(err, name)
	}
	return b.st.commit(ctx)
}

func (b *box) Rename(ctx context.Context, oldname, newname string) error {
	op, err := resolve("rename", oldname)
	if err != nil {
		return err
	}
	np, err := resolve("rename", newname)
	if err != nil {
		return err
	}
	if err := b.begin(ctx); err != nil {
		return err
	}
	if op == "." || np == "." {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrInvalid}
	}
	if err := b.st.work.Rename(op, np); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == np && np != op {
			return memfs.Relabel(err, newname)
		}
		return memfs.Relabel(err, oldname)
	}
	return b.st.commit(ctx)
}

// env is the environment every command starts with.
var env = map[string]string{
	"HOME":     Dir,
	"PATH":     "/usr/local/bin:/usr/bin:/bin",
	"SHELL":    "/bin/sh",
	"USER":     "user",
	"LOGNAME":  "user",
	"LANG":     "C.UTF-8",
	"TMPDIR":   tmpDir,
	"HOSTNAME": "sandbox",
}

func (b *box) Exec(ctx context.Context, cmd sandbox.Cmd) (*sandbox.Result, error) {
	if cmd.Timeout < 0 || cmd.MaxOutput < 0 {
		return nil, fmt.Errorf("empty sandbox: exec: negative Timeout or MaxOutput: %w", fs.ErrInvalid)
	}
	for k := range cmd.Env {
		if !validName(k) {
			return nil, fmt.Errorf("empty sandbox: exec: environment variable name %q: %w", k, fs.ErrInvalid)
		}
	}
	if err := b.begin(ctx); err != nil {
		return nil, err
	}
	dir, err := b.st.dir(cmd.Dir)
	if err != nil {
		return nil, err
	}
	timeout := cmd.Timeout
	if timeout == 0 {
		timeout = sandbox.DefaultTimeout
	}
	maxOut := cmd.MaxOutput
	if maxOut == 0 {
		maxOut = sandbox.DefaultMaxOutput
	}
	vars := make(map[string]string, len(env)+len(cmd.Env))
	for k, v := range env {
		vars[k] = v
	}
	for k, v := range cmd.Env {
		vars[k] = v
	}
	stdout := &capture{max: maxOut, stream: cmd.Stdout}
	stderr := &capture{max: maxOut, stream: cmd.Stderr}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	steps := int64(timeout.Seconds() * stepsPerSecond)
	steps = min(max(steps, 1000), maxSteps)
	st := shell.Run(shell.Config{
		Mounts:   []shell.Mount{{Dir: Dir, FS: b.st.work}, {Dir: tmpDir, FS: b.st.tmp}},
		Dir:      dir,
		Env:      vars,
		Stdin:    strings.NewReader(cmd.Stdin),
		Stdout:   stdout,
		Stderr:   stderr,
		Deadline: deadline,
		MaxSteps: steps,
		Context:  ctx,
		Sleep:    sleeper(ctx),
	}, cmd.Script)
	res := &sandbox.Result{
		Stdout:    string(stdout.buf),
		Stderr:    string(stderr.buf),
		ExitCode:  st.Code,
		TimedOut:  st.TimedOut,
		Truncated: stdout.truncated || stderr.truncated,
	}
	commitErr := b.st.commit(context.WithoutCancel(ctx))
	switch {
	case st.Err != nil:
		return res, fmt.Errorf("empty sandbox: exec: %w", st.Err)
	case commitErr != nil:
		return res, commitErr
	case stdout.err != nil:
		return res, fmt.Errorf("empty sandbox: exec: stream stdout: %w", stdout.err)
	case stderr.err != nil:
		return res, fmt.Errorf("empty sandbox: exec: stream stderr: %w", stderr.err)
	}
	return res, nil
}

// sleeper is how the shell's sleep waits: as the run (a sleep effect), so
// that the module instance serves other runs meanwhile.
func sleeper(ctx context.Context) func(time.Duration) error {
	if s, ok := ctx.(interface{ Sleep(time.Duration) error }); ok {
		return s.Sleep
	}
	return sleepOutsideRun
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// capture keeps up to max bytes of a stream and passes them on to the
// caller's writer as they come.
type capture struct {
	buf       []byte
	max       int
	truncated bool
	stream    io.Writer
	err       error
}

// Write never fails: the script runs on whatever happens to its output.
func (c *capture) Write(p []byte) (int, error) {
	keep := p
	if room := c.max - len(c.buf); len(keep) > room {
		keep = keep[:max(room, 0)]
		c.truncated = true
	}
	c.buf = append(c.buf, keep...)
	if c.stream != nil && c.err == nil && len(keep) > 0 {
		if _, err := c.stream.Write(keep); err != nil {
			c.err = err
		}
	}
	return len(p), nil
}
