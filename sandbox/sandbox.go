// Package sandbox is the one surface every kind of sandbox offers an
// agent and its tools: a file system (FS) and a shell (Shell), rooted at a
// working directory.
//
// An agent chooses a kind in code and opens its sandbox in a run:
//
//	sb, err := sandbox.Open(ctx, sandbox.Empty())
//	if err != nil {
//		return Out{}, err
//	}
//	res, err := sb.Exec(ctx, sandbox.Cmd{Script: "ls | wc -l"})
//
// The kinds are
//
//   - empty: an in-memory file system and an in-process POSIX shell inside
//     the module, kept in the agent instance's storage; it works on both
//     hosts with no container. Import package sandbox/empty to link it.
//   - local: the host's own file system and shell, for CI runners that
//     isolate already. Not a security boundary; local host only.
//   - container: a container running sandboxd (Cloudflare Containers on
//     Workers, a child process locally).
//
// A sandbox belongs to its agent instance and lives as long as it: every
// run of the instance opens the same files. The host may override the kind
// an agent chose for a run (damper run --sandbox empty|local|container).
//
// Every method takes the run's context first (in a run, the agent's
// *agent.Context): the remote kinds perform their operations as effects of
// the run, and the empty kind stores its files through it. Call them from
// the run's goroutines (the handler's, or one started with its Group).
//
// Paths are slash-separated. A relative path resolves against the
// sandbox's working directory (Sandbox.Dir). Every kind's FS refuses a
// path that leaves the working directory (through "..", an absolute path
// elsewhere, or a symbolic link) with ErrEscape; only the empty kind's
// shell is confined too.
//
// Errors of FS methods are *fs.PathError values whose Err is, or wraps, one
// of fs.ErrNotExist, fs.ErrExist, fs.ErrPermission, fs.ErrInvalid or one of
// this package's errors (ErrIsDir, ErrNotDir, ErrNotText, ErrEscape,
// ErrTooLarge, errors.ErrUnsupported), so callers branch with errors.Is
// whatever the kind.
package sandbox

import (
	"context"
	"io"
	"io/fs"
	"time"
)

// Sandbox is a file system and a shell sharing one working directory. It
// is safe for concurrent use by the goroutines of a run.
type Sandbox interface {
	FS
	Shell

	// Kind is the sandbox's kind: the one the agent chose, or the host's
	// override.
	Kind() Kind

	// Dir is the working directory: an absolute, clean, slash-separated
	// path. Relative paths of FS methods resolve against it, and commands
	// run in it unless Cmd.Dir says otherwise. The empty kind and a
	// container on Workers use /workspace; the local host's container
	// kind a directory under its data directory; the local kind the
	// host's working directory. Use Dir rather than a fixed path.
	Dir() string
}

// FS is a sandbox's file system.
type FS interface {
	// ReadFile returns the content of the file name.
	ReadFile(ctx context.Context, name string) ([]byte, error)

	// ReadText returns the content of the file name as a string, or an
	// error wrapping ErrNotText when it is not UTF-8 text (invalid UTF-8,
	// or a NUL byte).
	ReadText(ctx context.Context, name string) (string, error)

	// WriteFile writes data to the file name, creating it and its missing
	// parent directories. A new file has mode 0o644 (directories 0o755);
	// an existing file keeps its mode.
	WriteFile(ctx context.Context, name string, data []byte) error

	// Stat describes the file or directory name.
	Stat(ctx context.Context, name string) (fs.FileInfo, error)

	// ReadDir returns the entries of the directory name, sorted by name.
	ReadDir(ctx context.Context, name string) ([]fs.DirEntry, error)

	// Exists reports whether name exists; a missing name is not an error,
	// but a name the sandbox refuses (ErrEscape, fs.ErrInvalid) is.
	Exists(ctx context.Context, name string) (bool, error)

	// MkdirAll creates the directory name and any missing parents. It is
	// not an error for name to be a directory already.
	MkdirAll(ctx context.Context, name string) error

	// RemoveAll removes name and everything below it. It is not an error
	// for name to be missing. The working directory itself cannot be
	// removed (fs.ErrInvalid).
	RemoveAll(ctx context.Context, name string) error

	// Rename moves oldname to newname, replacing a file or an empty
	// directory there. newname's parent must exist; a directory cannot
	// move into itself (fs.ErrInvalid).
	Rename(ctx context.Context, oldname, newname string) error
}

// Shell runs commands in a sandbox.
type Shell interface {
	// Exec runs cmd.Script and returns what it printed and how it ended.
	// A script that fails is not an error: its Result has a non-zero
	// ExitCode (2 for a syntax error, 127 for a command not found, 124
	// when it timed out). Exec returns an error only when the script
	// could not run or its result could not be delivered: an invalid Cmd
	// (fs.ErrInvalid), a Cmd.Dir that does not exist, the sandbox failing,
	// the run's context ending (then with what the script printed so
	// far), or a write to Cmd.Stdout or Cmd.Stderr failing.
	Exec(ctx context.Context, cmd Cmd) (*Result, error)
}

// Defaults of Cmd.
const (
	// DefaultTimeout is how long a command runs when Cmd.Timeout is zero.
	DefaultTimeout = 2 * time.Minute

	// DefaultMaxOutput is how many bytes of each of stdout and stderr a
	// Result keeps when Cmd.MaxOutput is zero: 1 MiB.
	DefaultMaxOutput = 1 << 20
)

// ExitTimeout is the exit code of a command that ran out of time, as
// coreutils' timeout(1) reports it.
const ExitTimeout = 124

// Cmd is a command for a sandbox's shell.
type Cmd struct {
	// Script is a shell script: POSIX sh with the bash extensions models
	// write (see the kind's documentation for what its shell supports).
	Script string

	// Dir is the directory the script starts in, relative to the
	// sandbox's working directory or absolute; empty means the working
	// directory. It must exist.
	Dir string

	// Env holds variables added to the sandbox's environment for this
	// command (names are [A-Za-z_][A-Za-z0-9_]*). They are exported.
	Env map[string]string

	// Stdin is the script's standard input; empty means none.
	Stdin string

	// Timeout bounds how long the script runs; zero means DefaultTimeout.
	// When it passes, the script is stopped, and its Result keeps the
	// output printed so far, with ExitCode ExitTimeout and TimedOut set.
	Timeout time.Duration

	// MaxOutput is how many bytes of each of stdout and stderr to keep;
	// zero means DefaultMaxOutput. Output past it is dropped (the script
	// runs on) and the Result says Truncated.
	MaxOutput int

	// Stdout and Stderr, when set, receive the script's output as it is
	// produced, as much of it as the Result keeps. They are written from
	// the goroutine that called Exec, so they may use the run's context
	// (emit events, say). A write error stops further writes to that
	// writer, and Exec returns it with the Result.
	Stdout io.Writer
	Stderr io.Writer
}

// Result is how a command ended.
type Result struct {
	// Stdout and Stderr are what the script printed, at most
	// Cmd.MaxOutput bytes of each.
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`

	// ExitCode is the script's exit status: that of the last command it
	// ran, or of exit; ExitTimeout when it timed out.
	ExitCode int `json:"exit_code"`

	// TimedOut says the script was stopped at Cmd.Timeout.
	TimedOut bool `json:"timed_out,omitempty"`

	// Truncated says stdout or stderr printed more than Cmd.MaxOutput
	// bytes, and the rest was dropped.
	Truncated bool `json:"truncated,omitempty"`
}
