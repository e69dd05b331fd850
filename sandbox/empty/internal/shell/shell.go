// Package shell is the empty sandbox's shell: an interpreter of POSIX sh
// with the bash extensions models write, over mvdan.cc/sh's parser and
// word expansion, running every command in Go over in-memory file systems.
//
// It is its own evaluator rather than mvdan.cc/sh/v3/interp because that
// interpreter connects pipelines, here-documents and input redirections
// through os.Pipe, which wasip1 lacks, and runs pipeline stages on
// goroutines. Here everything runs on the goroutine that called Run:
// pipeline stages one after the other, each reading the output its
// predecessor left in a bounded buffer. So the shell never deadlocks,
// needs no timer (time limits are checked at every step against the clock,
// and a step budget stops what the clock cannot, as on Workers, whose clock
// stands still while a module computes), and any command may perform an
// effect of the run (sleep does).
package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"mvdan.cc/sh/v3/syntax"

	"github.com/damperdev/damper/sandbox/empty/internal/memfs"
)

// Name is the shell's name, as $0 and its messages say it.
const Name = "sh"

// DefaultMaxSteps bounds the steps (statements, loop rounds, commands,
// lines a command processes) of one Run when Config.MaxSteps is zero.
const DefaultMaxSteps = 50_000_000

// Bounds on what one Run holds in memory.
const (
	maxPipe  = 16 << 20 // bytes a pipeline stage may leave for the next
	maxValue = 16 << 20 // bytes of one variable or command substitution
	maxDepth = 200      // nested function calls, sources and evals
	maxElems = 1 << 20  // elements of one array
)

// Mount puts a file system at an absolute directory of the shell's view.
type Mount struct {
	Dir string // absolute and clean, e.g. /workspace
	FS  *memfs.FS
}

// Config is what one Run works with.
type Config struct {
	// Mounts are the file systems the script sees; any other path is
	// refused (Permission denied), except /dev/null, /dev/zero,
	// /dev/stdin, /dev/stdout and /dev/stderr.
	Mounts []Mount

	// Dir is the directory the script starts in, inside a mount.
	Dir string

	// Env holds the exported variables the script starts with.
	Env map[string]string

	Stdin          io.Reader
	Stdout, Stderr io.Writer

	// Deadline stops the script when the clock passes it; zero is none.
	Deadline time.Time

	// MaxSteps stops the script after that many steps; zero is
	// DefaultMaxSteps.
	MaxSteps int64

	// Context stops the script when it is done.
	Context context.Context

	// Sleep waits for d for the sleep command; nil makes sleep return at
	// once. It must not outlast the deadline (Run passes at most the time
	// left).
	Sleep func(d time.Duration) error

	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Status is how a Run ended.
type Status struct {
	// Code is the exit status: the last command's, or exit's; 124 when
	// the script ran out of time or steps.
	Code int

	// TimedOut says the deadline or the step budget stopped the script.
	TimedOut bool

	// Err is why the script was stopped otherwise: the context's error.
	Err error
}

// Unwinding: these travel as panics from deep in the evaluator (or a
// command) to the boundary that handles them.
type (
	// exitShell ends the (sub)shell with code: exit, set -e, a fatal
	// expansion error.
	exitShell struct{ code int }
	// stopRun ends the whole Run: time or steps are up, or the context
	// is done.
	stopRun struct {
		timedOut bool
		err      error
	}
	// brokenPipe ends a pipeline stage whose output buffer is full, as
	// SIGPIPE would.
	brokenPipe struct{}
)

// shared is what every subshell of one Run shares.
type shared struct {
	cfg      Config
	now      func() time.Time
	steps    int64
	maxSteps int64
	deadline time.Time
	ctx      context.Context
	nextPID  int
	psubs    int // process substitutions made, for their file names
	started  time.Time
	// patterns caches compiled shell patterns (case, [[ == ]], find).
	patterns map[string]*regexp.Regexp
	// tempFiles are the files of process substitutions, removed at the end.
	tempFiles []target
}

// step counts one step and stops the Run when time, steps or the context
// are up. It never blocks.
func (s *shared) step() {
	s.steps++
	if s.steps > s.maxSteps {
		panic(stopRun{timedOut: true})
	}
	if s.steps&255 != 0 {
		return
	}
	s.checkTime()
}

func (s *shared) checkTime() {
	if !s.deadline.IsZero() && !s.now().Before(s.deadline) {
		panic(stopRun{timedOut: true})
	}
	if s.ctx != nil {
		select {
		case <-s.ctx.Done():
			panic(stopRun{err: s.ctx.Err()})
		default:
		}
	}
}

// rethrowBugs makes a panic of the interpreter's own propagate, for tests
// that want its stack.
var rethrowBugs = false

// Run parses and runs script.
func Run(cfg Config, script string) (st Status) {
	sh := &shared{cfg: cfg, now: cfg.Now, maxSteps: cfg.MaxSteps, deadline: cfg.Deadline, ctx: cfg.Context, nextPID: 100}
	if sh.now == nil {
		sh.now = time.Now
	}
	if sh.maxSteps <= 0 {
		sh.maxSteps = DefaultMaxSteps
	}
	sh.started = sh.now()
	r := newRunner(sh)
	if cfg.Stdin == nil {
		cfg.Stdin = strings.NewReader("")
	}
	r.fds[0] = &fd{r: cfg.Stdin}
	r.fds[1] = &fd{w: cfg.Stdout}
	r.fds[2] = &fd{w: cfg.Stderr}

	file, err := parse(script)
	if err != nil {
		fmt.Fprintf(r.stderr(), "%s: %s\n", Name, err)
		return Status{Code: 2}
	}
	defer func() {
		for _, t := range sh.tempFiles {
			t.fs.Remove(t.rel)
		}
		if p := recover(); p != nil {
			st = r.endRun(p)
		}
	}()
	code := r.runTop(file.Stmts)
	return Status{Code: code}
}

// endRun turns what stopped the Run into its Status.
func (r *Runner) endRun(p any) Status {
	switch p := p.(type) {
	case stopRun:
		if p.timedOut {
			return Status{Code: 124, TimedOut: true}
		}
		return Status{Code: 130, Err: p.err}
	}
	panic(p)
}

func parse(script string) (*syntax.File, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(script), "")
	if err != nil {
		var pe syntax.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("line %d: %s", pe.Pos.Line(), pe.Text)
		}
		return nil, err
	}
	return f, nil
}

// runTop runs a script's statements as the shell's body: exit ends it,
// the EXIT trap runs last, and a panic of the interpreter's own (a bug)
// becomes an error message and status 2 rather than a trap of the module.
func (r *Runner) runTop(stmts []*syntax.Stmt) int {
	r.guard(func() { r.stmts(stmts) })
	if trap, ok := r.traps["EXIT"]; ok && trap != "" {
		delete(r.traps, "EXIT")
		code := r.status
		r.flow = flowNone
		r.guard(func() { r.evalString(trap, "trap") })
		r.status = code
	}
	return r.status
}

// guard runs f, catching the exit of the shell it belongs to.
func (r *Runner) guard(f func()) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		switch p := p.(type) {
		case exitShell:
			r.status = p.code
		case stopRun:
			panic(p)
		case brokenPipe:
			panic(p)
		default:
			if rethrowBugs {
				panic(p)
			}
			fmt.Fprintf(r.stderr(), "%s: internal error: %v\n", Name, p)
			r.status = 2
		}
		r.flow = flowNone
	}()
	f()
}
