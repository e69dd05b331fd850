// Package ossandbox is a sandbox.Sandbox on the operating system's own
// files and processes: a working directory on disk whose FS surface
// refuses paths that leave it (through "..", an absolute path elsewhere or
// a symbolic link, race-free with os.Root), and a shell that is a real
// bash (or sh) process group, killed whole at the timeout.
//
// The local kind (the host's working directory) and sandboxd (a
// container's /workspace, or a child process's directory under the local
// host's data) are both this package: only the directory, the environment
// and the process attributes differ. Its shell is not confined: a command
// reaches whatever the process may reach.
package ossandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/damperdev/damper/sandbox"
)

// Config configures a Sandbox.
type Config struct {
	// Dir is the working directory: it must exist. The sandbox's Dir is
	// its absolute, symlink-free form.
	Dir string
	// Kind is what Sandbox.Kind reports.
	Kind sandbox.Kind
	// Env is the environment every command starts with ("NAME=value");
	// Cmd.Env adds to it. The process's own environment is never passed
	// on: a caller chooses what to share (see AllowedEnv).
	Env []string
	// Shell is the shell that runs scripts, as "-c SCRIPT"; "" finds bash
	// on the PATH, then sh.
	Shell string
	// Relative says the process's working directory is Dir: commands
	// start there by a relative path, so a process that gave up the
	// rights to Dir's parents can still start them.
	Relative bool
	// ProcAttr, when set, returns the attributes of each command's
	// process (a user to run as, namespaces). The sandbox always puts a
	// command in a process group of its own, so it can kill the group.
	ProcAttr func() *syscall.SysProcAttr
	// Strays makes this process the subreaper of its commands' processes
	// and kills every process that outlives its command: one that left
	// the command's group (setsid) and would otherwise run on, reparented
	// to init, sending requests during later runs. It is process-wide: for
	// a process that is only a sandbox (sandboxd), on Linux; elsewhere it
	// is an error.
	Strays bool
}

// Sandbox is an operating-system sandbox. It is safe for concurrent use.
type Sandbox struct {
	root     *os.Root
	dir      string
	kind     sandbox.Kind
	env      []string
	shell    string
	attr     func() *syscall.SysProcAttr
	relative bool

	// live counts the running commands by process group: with Strays,
	// a child of this process in no live group is a stray.
	liveMu sync.Mutex
	live   map[int]int
	strays bool
	stop   chan struct{}
}

// New opens the sandbox rooted at cfg.Dir.
func New(cfg Config) (*Sandbox, error) {
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox directory %s: %w", cfg.Dir, err)
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return nil, fmt.Errorf("sandbox directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox directory: %w", err)
	}
	sh := cfg.Shell
	if sh == "" {
		if sh, err = exec.LookPath("bash"); err != nil {
			if sh, err = exec.LookPath("sh"); err != nil {
				root.Close()
				return nil, fmt.Errorf("sandbox shell: neither bash nor sh is on the PATH: %w", err)
			}
		}
	}
	sb := &Sandbox{root: root, dir: filepath.ToSlash(dir), kind: cfg.Kind, env: cfg.Env, shell: sh, attr: cfg.ProcAttr, relative: cfg.Relative,
		live: map[int]int{}, stop: make(chan struct{})}
	if cfg.Strays {
		if err := becomeSubreaper(); err != nil {
			root.Close()
			return nil, fmt.Errorf("sandbox: strays: %w", err)
		}
		sb.strays = true
		go sb.reapStrays()
	}
	return sb, nil
}

// Close releases the directory.
func (s *Sandbox) Close() error {
	close(s.stop)
	return s.root.Close()
}

// reapStrays kills strays until the sandbox closes: at the end of each
// command (killStrays) and every strayInterval, since a process is
// reparented here only once the parents between are gone.
func (s *Sandbox) reapStrays() {
	t := time.NewTicker(strayInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.killStrays()
		}
	}
}

const strayInterval = 250 * time.Millisecond

// Kind implements sandbox.Sandbox.
func (s *Sandbox) Kind() sandbox.Kind { return s.kind }

// Dir implements sandbox.Sandbox.
func (s *Sandbox) Dir() string { return s.dir }

// AllowedEnv are the variables of the host's environment the local kind
// passes to its commands: what tools need to run (PATH, a home, a
// locale, a temporary directory), never a credential.
var AllowedEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR"}

// EnvFrom returns the "NAME=value" pairs of names that lookup finds.
func EnvFrom(names []string, lookup func(string) (string, bool)) []string {
	var env []string
	for _, n := range names {
		if v, ok := lookup(n); ok {
			env = append(env, n+"="+v)
		}
	}
	return env
}

// rel turns a caller's name into a path relative to the root, or says
// why it is refused: empty or NUL (fs.ErrInvalid), outside the working
// directory (sandbox.ErrEscape). Symbolic links are the os.Root's to
// refuse.
func (s *Sandbox) rel(op, name string) (string, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	p := name
	if !path.IsAbs(p) {
		p = s.dir + "/" + p
	}
	p = path.Clean(p)
	switch {
	case p == s.dir:
		return ".", nil
	case strings.HasPrefix(p, s.dir+"/"):
		return p[len(s.dir)+1:], nil
	}
	return "", &fs.PathError{Op: op, Path: name, Err: sandbox.ErrEscape}
}

// pathErr is err as the surface reports it: a *fs.PathError naming the
// caller's name, its cause mapped onto the sandbox's sentinels.
func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		err = le.Err
	}
	switch {
	case strings.Contains(err.Error(), "path escapes from parent"):
		err = sandbox.ErrEscape
	case errors.Is(err, syscall.ENOTDIR):
		err = sandbox.ErrNotDir
	case errors.Is(err, syscall.EISDIR):
		err = sandbox.ErrIsDir
	case errors.Is(err, syscall.ENOTEMPTY):
		err = fmt.Errorf("directory not empty: %w", fs.ErrExist)
	case errors.Is(err, syscall.ELOOP):
		err = fmt.Errorf("too many levels of symbolic links: %w", sandbox.ErrEscape)
	case errors.Is(err, syscall.EFBIG):
		err = fmt.Errorf("file too large: %w", sandbox.ErrTooLarge)
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// ReadFile implements sandbox.FS.
func (s *Sandbox) ReadFile(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := s.rel("read", name)
	if err != nil {
		return nil, err
	}
	fi, err := s.root.Stat(r)
	if err != nil {
		return nil, pathErr("read", name, err)
	}
	if fi.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: sandbox.ErrIsDir}
	}
	b, err := s.root.ReadFile(r)
	if err != nil {
		return nil, pathErr("read", name, err)
	}
	return b, nil
}

// ReadText implements sandbox.FS.
func (s *Sandbox) ReadText(ctx context.Context, name string) (string, error) {
	b, err := s.ReadFile(ctx, name)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) || strings.IndexByte(string(b), 0) >= 0 {
		return "", &fs.PathError{Op: "read", Path: name, Err: sandbox.ErrNotText}
	}
	return string(b), nil
}

// WriteFile implements sandbox.FS.
func (s *Sandbox) WriteFile(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := s.rel("write", name)
	if err != nil {
		return err
	}
	if r == "." {
		return &fs.PathError{Op: "write", Path: name, Err: sandbox.ErrIsDir}
	}
	if dir := path.Dir(r); dir != "." {
		if err := s.root.MkdirAll(dir, 0o755); err != nil {
			err = pathErr("write", name, err)
			if errors.Is(err, fs.ErrExist) {
				return &fs.PathError{Op: "write", Path: name, Err: sandbox.ErrNotDir}
			}
			return err
		}
	}
	if fi, err := s.root.Stat(r); err == nil && fi.IsDir() {
		return &fs.PathError{Op: "write", Path: name, Err: sandbox.ErrIsDir}
	}
	f, err := s.root.OpenFile(r, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return pathErr("write", name, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	return pathErr("write", name, errors.Join(werr, cerr))
}

// Stat implements sandbox.FS.
func (s *Sandbox) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := s.rel("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := s.root.Stat(r)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	if r == "." {
		return renamed{fi, path.Base(s.dir)}, nil
	}
	return fi, nil
}

// renamed is a FileInfo under another name.
type renamed struct {
	fs.FileInfo
	name string
}

func (r renamed) Name() string { return r.name }

// ReadDir implements sandbox.FS.
func (s *Sandbox) ReadDir(ctx context.Context, name string) ([]fs.DirEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := s.rel("readdir", name)
	if err != nil {
		return nil, err
	}
	f, err := s.root.Open(r)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: sandbox.ErrNotDir}
	}
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	return entries, nil
}

// Exists implements sandbox.FS.
func (s *Sandbox) Exists(ctx context.Context, name string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	r, err := s.rel("stat", name)
	if err != nil {
		return false, err
	}
	if _, err := s.root.Stat(r); err != nil {
		err = pathErr("stat", name, err)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, sandbox.ErrNotDir) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// MkdirAll implements sandbox.FS.
func (s *Sandbox) MkdirAll(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := s.rel("mkdir", name)
	if err != nil {
		return err
	}
	if err := s.root.MkdirAll(r, 0o755); err != nil {
		err = pathErr("mkdir", name, err)
		if errors.Is(err, fs.ErrExist) {
			// MkdirAll of a path that is, or goes through, a file.
			return &fs.PathError{Op: "mkdir", Path: name, Err: sandbox.ErrNotDir}
		}
		return err
	}
	return nil
}

// RemoveAll implements sandbox.FS.
func (s *Sandbox) RemoveAll(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := s.rel("remove", name)
	if err != nil {
		return err
	}
	if r == "." {
		return &fs.PathError{Op: "remove", Path: name, Err: fmt.Errorf("the working directory cannot be removed: %w", fs.ErrInvalid)}
	}
	if err := s.root.RemoveAll(r); err != nil {
		err = pathErr("remove", name, err)
		if errors.Is(err, sandbox.ErrNotDir) {
			return nil // through a file: nothing there to remove
		}
		return err
	}
	return nil
}

// Rename implements sandbox.FS.
func (s *Sandbox) Rename(ctx context.Context, oldname, newname string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ro, err := s.rel("rename", oldname)
	if err != nil {
		return err
	}
	rn, err := s.rel("rename", newname)
	if err != nil {
		return err
	}
	from, err := s.root.Lstat(ro)
	if err != nil {
		return pathErr("rename", oldname, err)
	}
	if ro == "." || rn == "." {
		return &fs.PathError{Op: "rename", Path: newname, Err: fmt.Errorf("the working directory cannot move: %w", fs.ErrInvalid)}
	}
	if from.IsDir() && strings.HasPrefix(rn+"/", ro+"/") {
		return &fs.PathError{Op: "rename", Path: newname, Err: fmt.Errorf("a directory cannot move into itself: %w", fs.ErrInvalid)}
	}
	if parent := path.Dir(rn); parent != "." {
		fi, err := s.root.Stat(parent)
		if err != nil {
			return pathErr("rename", newname, err)
		}
		if !fi.IsDir() {
			return &fs.PathError{Op: "rename", Path: newname, Err: sandbox.ErrNotDir}
		}
	}
	if to, err := s.root.Lstat(rn); err == nil {
		switch {
		case to.IsDir() && !from.IsDir():
			return &fs.PathError{Op: "rename", Path: newname, Err: sandbox.ErrIsDir}
		case !to.IsDir() && from.IsDir():
			return &fs.PathError{Op: "rename", Path: newname, Err: sandbox.ErrNotDir}
		}
	}
	if err := s.root.Rename(ro, rn); err != nil {
		return pathErr("rename", newname, err)
	}
	return nil
}

// validEnvName reports whether name is [A-Za-z_][A-Za-z0-9_]*.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// CheckCmd says why cmd cannot run (fs.ErrInvalid), or nil.
func CheckCmd(cmd sandbox.Cmd) error {
	switch {
	case cmd.Timeout < 0:
		return fmt.Errorf("exec: negative timeout %v: %w", cmd.Timeout, fs.ErrInvalid)
	case cmd.MaxOutput < 0:
		return fmt.Errorf("exec: negative max output %d: %w", cmd.MaxOutput, fs.ErrInvalid)
	case strings.IndexByte(cmd.Script, 0) >= 0:
		return fmt.Errorf("exec: the script holds a NUL byte: %w", fs.ErrInvalid)
	}
	for k, v := range cmd.Env {
		if !validEnvName(k) {
			return fmt.Errorf("exec: environment variable name %q: want [A-Za-z_][A-Za-z0-9_]*: %w", k, fs.ErrInvalid)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("exec: environment variable %s holds a NUL byte: %w", k, fs.ErrInvalid)
		}
	}
	return nil
}

// Exec implements sandbox.Shell: the script runs as SHELL -c SCRIPT in a
// process group of its own, which is killed whole when the script ends
// (no background process outlives its command), when the timeout passes
// (exit 124, the output so far kept) and when ctx ends.
func (s *Sandbox) Exec(ctx context.Context, cmd sandbox.Cmd) (*sandbox.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := CheckCmd(cmd); err != nil {
		return nil, err
	}
	dir := s.dir
	if cmd.Dir != "" {
		r, err := s.rel("chdir", cmd.Dir)
		if err != nil {
			return nil, err
		}
		fi, err := s.root.Stat(r)
		if err != nil {
			return nil, pathErr("chdir", cmd.Dir, err)
		}
		if !fi.IsDir() {
			return nil, &fs.PathError{Op: "chdir", Path: cmd.Dir, Err: sandbox.ErrNotDir}
		}
		if r != "." {
			dir = s.dir + "/" + r
		}
	}
	timeout := cmd.Timeout
	if timeout == 0 {
		timeout = sandbox.DefaultTimeout
	}
	maxOut := cmd.MaxOutput
	if maxOut == 0 {
		maxOut = sandbox.DefaultMaxOutput
	}

	env := append([]string(nil), s.env...)
	env = append(env, "PWD="+dir)
	names := make([]string, 0, len(cmd.Env))
	for k := range cmd.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		env = append(env, k+"="+cmd.Env[k])
	}

	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("exec: %w", err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return nil, fmt.Errorf("exec: %w", err)
	}
	c := exec.Command(s.shell, "-c", cmd.Script)
	c.Dir = dir
	if s.relative {
		c.Dir = strings.TrimPrefix(strings.TrimPrefix(dir, s.dir), "/")
	}
	c.Env = env
	c.Stdin, c.Stdout, c.Stderr = inR, outW, errW
	attr := &syscall.SysProcAttr{}
	if s.attr != nil {
		attr = s.attr()
	}
	attr.Setpgid = true
	c.SysProcAttr = attr
	// Started and counted at once: the reaper never sees the new group's
	// leader uncounted.
	s.liveMu.Lock()
	err = c.Start()
	if err == nil {
		s.live[c.Process.Pid]++
	}
	s.liveMu.Unlock()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("exec: start %s: %w", s.shell, err)
	}
	go func() {
		// A script that does not read its stdin ends this write (EPIPE)
		// when it exits.
		_, _ = io.WriteString(inW, cmd.Stdin)
		inW.Close()
	}()
	pgid := c.Process.Pid
	killGroup := func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

	chunks := make(chan chunk, 16)
	var readers sync.WaitGroup
	readers.Add(2)
	go readPipe(outR, false, chunks, &readers)
	go readPipe(errR, true, chunks, &readers)
	go func() { readers.Wait(); close(chunks) }()

	exited := make(chan *os.ProcessState, 1)
	go func() {
		// Wait for the shell alone (the pipes are ours to read), then
		// take its group with it.
		ps, _ := c.Process.Wait()
		killGroup()
		s.liveMu.Lock()
		if s.live[pgid]--; s.live[pgid] <= 0 {
			delete(s.live, pgid)
		}
		s.liveMu.Unlock()
		if s.strays {
			s.killStrays()
		}
		exited <- ps
	}()

	res := &sandbox.Result{}
	var stdout, stderr capped
	stdout.max, stderr.max = maxOut, maxOut
	var werr error
	deliver := func(ch chunk) {
		b := &stdout
		w := cmd.Stdout
		if ch.stderr {
			b, w = &stderr, cmd.Stderr
		}
		kept := b.add(ch.data)
		if w != nil && len(kept) > 0 && werr == nil {
			if _, err := w.Write(kept); err != nil {
				werr = fmt.Errorf("exec: stream output: %w", err)
			}
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var ctxErr error
	var state *os.ProcessState
	shellDone := false
	pipesDone := false
	var drain <-chan time.Time
	for !(shellDone && pipesDone) {
		select {
		case ch, ok := <-chunks:
			if !ok {
				pipesDone = true
				chunks = nil
				continue
			}
			deliver(ch)
		case state = <-exited:
			shellDone = true
			exited = nil
			// The group is dead; a process that left it may still hold a
			// pipe: give the pipes a moment, then stop reading.
			drain = time.After(time.Second)
		case <-drain:
			outR.Close()
			errR.Close()
			drain = nil
		case <-timer.C:
			res.TimedOut = true
			killGroup()
		case <-ctx.Done():
			ctxErr = ctx.Err()
			killGroup()
			ctx = context.Background() // seen once
		}
	}
	outR.Close()
	errR.Close()
	res.Stdout, res.Stderr = string(stdout.buf), string(stderr.buf)
	res.Truncated = stdout.dropped || stderr.dropped
	switch {
	case res.TimedOut:
		res.ExitCode = sandbox.ExitTimeout
	case state != nil:
		res.ExitCode = exitCode(state)
	default:
		res.ExitCode = -1
	}
	if ctxErr != nil {
		return res, fmt.Errorf("exec: %w", ctxErr)
	}
	return res, werr
}

// exitCode is a shell's status as a shell reports it: 128+N for a
// signal.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

type chunk struct {
	data   []byte
	stderr bool
}

func readPipe(r io.Reader, stderr bool, out chan<- chunk, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		buf := make([]byte, 32<<10)
		n, err := r.Read(buf)
		if n > 0 {
			out <- chunk{data: buf[:n], stderr: stderr}
		}
		if err != nil {
			return
		}
	}
}

// capped keeps the first max bytes written to it.
type capped struct {
	buf     []byte
	max     int
	dropped bool
}

// add keeps what fits of p and returns it.
func (c *capped) add(p []byte) []byte {
	room := c.max - len(c.buf)
	if room <= 0 {
		if len(p) > 0 {
			c.dropped = true
		}
		return nil
	}
	if len(p) > room {
		p = p[:room]
		c.dropped = true
	}
	c.buf = append(c.buf, p...)
	return p
}
