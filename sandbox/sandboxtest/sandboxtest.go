// Package sandboxtest is the conformance suite of the sandbox surface:
// what every kind of sandbox must do the same way, FS and Shell, errors
// included, so that an agent's tools work unchanged on any kind.
//
// A kind's tests run it with an opener that returns a fresh sandbox, with
// an empty working directory, for each subtest:
//
//	sandboxtest.Run(t, func(t *testing.T) sandbox.Sandbox { return newSandbox(t) }, sandboxtest.Features{...})
package sandboxtest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/sandbox"
)

// Features says what a kind offers beyond the common surface, so that the
// suite checks what is meaningful for it.
type Features struct {
	// Confined: the shell, too, refuses paths outside the working
	// directory (and the kind's scratch /tmp), as the empty kind's does.
	// A container's or the host's shell is a real process and can reach
	// its own file system.
	Confined bool

	// Permissions: file modes bind the shell's user (a kind whose shell
	// does not run as root). The empty kind keeps modes but does not
	// enforce them, as root would not.
	Permissions bool

	// Streams: Cmd.Stdout and Cmd.Stderr receive output while the command
	// runs, not only once it has ended.
	Streams bool

	// MaxFileSize and MaxTotalSize are the kind's limits as the opener
	// sets them (zero: the suite does not test that limit).
	MaxFileSize  int64
	MaxTotalSize int64
}

// Run runs the suite; open returns a new sandbox with an empty working
// directory each time it is called.
func Run(t *testing.T, open func(t *testing.T) sandbox.Sandbox, f Features) {
	t.Run("fs", func(t *testing.T) { runFS(t, open, f) })
	t.Run("shell", func(t *testing.T) { runShell(t, open, f) })
}

// requirePathErr requires err to be a *fs.PathError for name that
// errors.Is finds every one of want in.
func requirePathErr(t *testing.T, err error, name string, want ...error) {
	t.Helper()
	require.Error(t, err)
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe, "%v is not a *fs.PathError", err)
	assert.Equal(t, name, pe.Path, "the error names the path it was given: %v", err)
	for _, w := range want {
		assert.ErrorIs(t, err, w, "%v", err)
	}
}

func exec(t *testing.T, sb sandbox.Sandbox, cmd sandbox.Cmd) *sandbox.Result {
	t.Helper()
	res, err := sb.Exec(t.Context(), cmd)
	require.NoError(t, err, "exec %q", cmd.Script)
	require.NotNil(t, res)
	return res
}

func runFS(t *testing.T, open func(t *testing.T) sandbox.Sandbox, f Features) {
	t.Run("write_read_stat", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		require.NoError(t, sb.WriteFile(ctx, "a.txt", []byte("hello\n")))
		b, err := sb.ReadFile(ctx, "a.txt")
		require.NoError(t, err)
		assert.Equal(t, "hello\n", string(b))
		s, err := sb.ReadText(ctx, "a.txt")
		require.NoError(t, err)
		assert.Equal(t, "hello\n", s)
		fi, err := sb.Stat(ctx, "a.txt")
		require.NoError(t, err)
		assert.Equal(t, "a.txt", fi.Name())
		assert.EqualValues(t, 6, fi.Size())
		assert.True(t, fi.Mode().IsRegular())
		assert.False(t, fi.IsDir())
		ok, err := sb.Exists(ctx, "a.txt")
		require.NoError(t, err)
		assert.True(t, ok)

		require.NoError(t, sb.WriteFile(ctx, "a.txt", []byte("replaced")), "overwrite")
		b, err = sb.ReadFile(ctx, "a.txt")
		require.NoError(t, err)
		assert.Equal(t, "replaced", string(b))

		require.NoError(t, sb.WriteFile(ctx, "empty", nil))
		b, err = sb.ReadFile(ctx, "empty")
		require.NoError(t, err)
		assert.Empty(t, b)
	})

	t.Run("write_creates_parents", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		require.NoError(t, sb.WriteFile(ctx, "x/y/z.txt", []byte("deep")))
		fi, err := sb.Stat(ctx, "x/y")
		require.NoError(t, err)
		assert.True(t, fi.IsDir())
		entries, err := sb.ReadDir(ctx, "x")
		require.NoError(t, err)
		require.Len(t, entries, 1)
		assert.Equal(t, "y", entries[0].Name())
		assert.True(t, entries[0].IsDir())
	})

	t.Run("absolute_paths_inside", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		require.NoError(t, sb.WriteFile(ctx, sb.Dir()+"/abs.txt", []byte("abs")))
		b, err := sb.ReadFile(ctx, "abs.txt")
		require.NoError(t, err)
		assert.Equal(t, "abs", string(b))
		b, err = sb.ReadFile(ctx, "./sub/../abs.txt")
		require.NoError(t, err, "dot segments that stay inside")
		assert.Equal(t, "abs", string(b))
		fi, err := sb.Stat(ctx, ".")
		require.NoError(t, err)
		assert.True(t, fi.IsDir(), "the working directory")
	})

	t.Run("binary", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		require.NoError(t, sb.WriteFile(ctx, "bin", all))
		b, err := sb.ReadFile(ctx, "bin")
		require.NoError(t, err)
		assert.Equal(t, all, b, "every byte value survives")
		_, err = sb.ReadText(ctx, "bin")
		requirePathErr(t, err, "bin", sandbox.ErrNotText, fs.ErrInvalid)

		require.NoError(t, sb.WriteFile(ctx, "latin1", []byte{'c', 'a', 'f', 0xe9}))
		_, err = sb.ReadText(ctx, "latin1")
		requirePathErr(t, err, "latin1", sandbox.ErrNotText)
		require.NoError(t, sb.WriteFile(ctx, "nul", []byte("a\x00b")))
		_, err = sb.ReadText(ctx, "nul")
		requirePathErr(t, err, "nul", sandbox.ErrNotText)
		require.NoError(t, sb.WriteFile(ctx, "utf8", []byte("héllo wörld ✓")))
		s, err := sb.ReadText(ctx, "utf8")
		require.NoError(t, err)
		assert.Equal(t, "héllo wörld ✓", s)

		res := exec(t, sb, sandbox.Cmd{Script: "wc -c < bin; cat bin > copy"})
		assert.Equal(t, "256", strings.TrimSpace(res.Stdout))
		b, err = sb.ReadFile(ctx, "copy")
		require.NoError(t, err)
		assert.Equal(t, all, b, "the shell copies binary files byte for byte")
	})

	t.Run("missing", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		_, err := sb.ReadFile(ctx, "nope")
		requirePathErr(t, err, "nope", fs.ErrNotExist)
		_, err = sb.ReadText(ctx, "nope")
		requirePathErr(t, err, "nope", fs.ErrNotExist)
		_, err = sb.Stat(ctx, "dir/nope")
		requirePathErr(t, err, "dir/nope", fs.ErrNotExist)
		_, err = sb.ReadDir(ctx, "nodir")
		requirePathErr(t, err, "nodir", fs.ErrNotExist)
		err = sb.Rename(ctx, "nope", "other")
		requirePathErr(t, err, "nope", fs.ErrNotExist)
		ok, err := sb.Exists(ctx, "nope")
		require.NoError(t, err, "a missing path is not an error for Exists")
		assert.False(t, ok)
		assert.NoError(t, sb.RemoveAll(ctx, "nope"), "removing what is not there is not an error")
		assert.NoError(t, sb.RemoveAll(ctx, "no/such/tree"))
	})

	t.Run("files_and_directories", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		require.NoError(t, sb.WriteFile(ctx, "f", []byte("file")))
		require.NoError(t, sb.MkdirAll(ctx, "d/e"))
		require.NoError(t, sb.MkdirAll(ctx, "d/e"), "MkdirAll of an existing directory")

		_, err := sb.ReadFile(ctx, "d")
		requirePathErr(t, err, "d", sandbox.ErrIsDir)
		err = sb.WriteFile(ctx, "d", []byte("x"))
		requirePathErr(t, err, "d", sandbox.ErrIsDir)
		_, err = sb.ReadDir(ctx, "f")
		requirePathErr(t, err, "f", sandbox.ErrNotDir)
		_, err = sb.ReadFile(ctx, "f/x")
		requirePathErr(t, err, "f/x", sandbox.ErrNotDir)
		err = sb.WriteFile(ctx, "f/x", []byte("x"))
		requirePathErr(t, err, "f/x", sandbox.ErrNotDir)
		err = sb.MkdirAll(ctx, "f")
		requirePathErr(t, err, "f", sandbox.ErrNotDir)
		err = sb.MkdirAll(ctx, "f/g")
		requirePathErr(t, err, "f/g", sandbox.ErrNotDir)

		b, err := sb.ReadFile(ctx, "f")
		require.NoError(t, err)
		assert.Equal(t, "file", string(b), "failed operations changed nothing")
	})

	t.Run("read_dir_sorted", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		for _, name := range []string{"b.txt", "a.txt", "c/x", ".hidden", "B"} {
			require.NoError(t, sb.WriteFile(ctx, "dir/"+name, []byte(name)))
		}
		entries, err := sb.ReadDir(ctx, "dir")
		require.NoError(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
			info, err := e.Info()
			require.NoError(t, err)
			assert.Equal(t, e.IsDir(), info.IsDir())
		}
		assert.Equal(t, []string{".hidden", "B", "a.txt", "b.txt", "c"}, names)
		assert.True(t, entries[4].IsDir())
	})

	t.Run("remove_all", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		require.NoError(t, sb.WriteFile(ctx, "tree/a/b/c.txt", []byte("c")))
		require.NoError(t, sb.WriteFile(ctx, "tree/d.txt", []byte("d")))
		require.NoError(t, sb.WriteFile(ctx, "keep.txt", []byte("k")))
		require.NoError(t, sb.RemoveAll(ctx, "tree"))
		ok, err := sb.Exists(ctx, "tree")
		require.NoError(t, err)
		assert.False(t, ok)
		ok, err = sb.Exists(ctx, "tree/a/b/c.txt")
		require.NoError(t, err)
		assert.False(t, ok)
		require.NoError(t, sb.RemoveAll(ctx, "keep.txt"), "a file")
		ok, _ = sb.Exists(ctx, "keep.txt")
		assert.False(t, ok)

		require.NoError(t, sb.WriteFile(ctx, "still.txt", []byte("s")))
		err = sb.RemoveAll(ctx, ".")
		requirePathErr(t, err, ".", fs.ErrInvalid)
		err = sb.RemoveAll(ctx, sb.Dir())
		requirePathErr(t, err, sb.Dir(), fs.ErrInvalid)
		ok, _ = sb.Exists(ctx, "still.txt")
		assert.True(t, ok, "the working directory stays")
	})

	t.Run("rename", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		require.NoError(t, sb.WriteFile(ctx, "a", []byte("A")))
		require.NoError(t, sb.WriteFile(ctx, "b", []byte("B")))
		require.NoError(t, sb.Rename(ctx, "a", "b"), "replaces a file")
		b, err := sb.ReadFile(ctx, "b")
		require.NoError(t, err)
		assert.Equal(t, "A", string(b))
		ok, _ := sb.Exists(ctx, "a")
		assert.False(t, ok)

		require.NoError(t, sb.WriteFile(ctx, "dir/in.txt", []byte("in")))
		require.NoError(t, sb.Rename(ctx, "dir", "moved"))
		b, err = sb.ReadFile(ctx, "moved/in.txt")
		require.NoError(t, err)
		assert.Equal(t, "in", string(b))

		err = sb.Rename(ctx, "moved", "moved/inside")
		requirePathErr(t, err, "moved/inside", fs.ErrInvalid)
		err = sb.Rename(ctx, "b", "no/parent/b")
		requirePathErr(t, err, "no/parent/b", fs.ErrNotExist)
		require.NoError(t, sb.WriteFile(ctx, "full/x", []byte("x")))
		require.NoError(t, sb.MkdirAll(ctx, "other"))
		err = sb.Rename(ctx, "other", "full")
		requirePathErr(t, err, "full", fs.ErrExist)
		err = sb.Rename(ctx, "b", "full")
		requirePathErr(t, err, "full", sandbox.ErrIsDir)
		err = sb.Rename(ctx, "other", "b")
		requirePathErr(t, err, "b", sandbox.ErrNotDir)
		b, err = sb.ReadFile(ctx, "full/x")
		require.NoError(t, err)
		assert.Equal(t, "x", string(b), "failed renames changed nothing")
	})

	t.Run("invalid_names", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		for _, name := range []string{"", "a\x00b"} {
			_, err := sb.ReadFile(ctx, name)
			requirePathErr(t, err, name, fs.ErrInvalid)
			err = sb.WriteFile(ctx, name, []byte("x"))
			requirePathErr(t, err, name, fs.ErrInvalid)
			_, err = sb.Exists(ctx, name)
			requirePathErr(t, err, name, fs.ErrInvalid)
		}
	})

	t.Run("escapes", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		require.NoError(t, sb.WriteFile(ctx, "inside.txt", []byte("safe")))
		for _, name := range []string{"..", "../x", "a/../../x", "/", "/etc/passwd", sb.Dir() + "/../x", sb.Dir() + "x/y", "/tmp/x", "./../" + lastElem(sb.Dir()) + "-sibling"} {
			t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
				_, err := sb.ReadFile(ctx, name)
				requirePathErr(t, err, name, sandbox.ErrEscape, fs.ErrPermission)
				_, err = sb.ReadText(ctx, name)
				requirePathErr(t, err, name, sandbox.ErrEscape)
				err = sb.WriteFile(ctx, name, []byte("x"))
				requirePathErr(t, err, name, sandbox.ErrEscape)
				_, err = sb.Stat(ctx, name)
				requirePathErr(t, err, name, sandbox.ErrEscape)
				_, err = sb.ReadDir(ctx, name)
				requirePathErr(t, err, name, sandbox.ErrEscape)
				_, err = sb.Exists(ctx, name)
				requirePathErr(t, err, name, sandbox.ErrEscape)
				err = sb.MkdirAll(ctx, name)
				requirePathErr(t, err, name, sandbox.ErrEscape)
				err = sb.RemoveAll(ctx, name)
				requirePathErr(t, err, name, sandbox.ErrEscape)
				err = sb.Rename(ctx, "inside.txt", name)
				requirePathErr(t, err, name, sandbox.ErrEscape)
				err = sb.Rename(ctx, name, "inside.txt")
				requirePathErr(t, err, name, sandbox.ErrEscape)
			})
		}
		b, err := sb.ReadFile(ctx, "inside.txt")
		require.NoError(t, err)
		assert.Equal(t, "safe", string(b), "refused operations changed nothing")
		entries, err := sb.ReadDir(ctx, ".")
		require.NoError(t, err)
		assert.Len(t, entries, 1, "nothing was created")
	})

	if f.Permissions {
		t.Run("permissions", func(t *testing.T) {
			sb := open(t)
			ctx := t.Context()
			require.NoError(t, sb.WriteFile(ctx, "secret", []byte("s")))
			res := exec(t, sb, sandbox.Cmd{Script: "chmod 000 secret"})
			require.Equal(t, 0, res.ExitCode, "%s", res.Stderr)
			_, err := sb.ReadFile(ctx, "secret")
			requirePathErr(t, err, "secret", fs.ErrPermission)
			res = exec(t, sb, sandbox.Cmd{Script: "cat secret"})
			assert.NotEqual(t, 0, res.ExitCode)
			assert.Contains(t, res.Stderr, "Permission denied")
		})
	}

	if f.MaxFileSize > 0 {
		t.Run("max_file_size", func(t *testing.T) {
			sb := open(t)
			ctx := t.Context()
			require.NoError(t, sb.WriteFile(ctx, "fits", make([]byte, f.MaxFileSize)), "exactly the limit")
			err := sb.WriteFile(ctx, "new/dir/big", make([]byte, f.MaxFileSize+1))
			requirePathErr(t, err, "new/dir/big", sandbox.ErrTooLarge)
			assert.Contains(t, err.Error(), "limit", "the error says which limit: %v", err)
			ok, err := sb.Exists(ctx, "new")
			require.NoError(t, err)
			assert.False(t, ok, "a refused write creates no parent directory")
			fi, err := sb.Stat(ctx, "fits")
			require.NoError(t, err)
			assert.Equal(t, f.MaxFileSize, fi.Size())

			res := exec(t, sb, sandbox.Cmd{Script: "head -c " + itoa(f.MaxFileSize+1) + " /dev/zero > big.out; echo status=$?"})
			assert.Equal(t, "status=1\n", res.Stdout, "the shell's write fails: %s", res.Stderr)
			assert.Contains(t, res.Stderr, "File too large")
		})
	}
	if f.MaxTotalSize > 0 {
		t.Run("max_total_size", func(t *testing.T) {
			sb := open(t)
			ctx := t.Context()
			chunk := f.MaxTotalSize / 4
			if f.MaxFileSize > 0 && chunk > f.MaxFileSize {
				chunk = f.MaxFileSize
			}
			var err error
			written := 0
			for i := 0; i < 1000 && err == nil; i++ {
				err = sb.WriteFile(ctx, "part"+itoa(int64(i)), make([]byte, chunk))
				if err == nil {
					written++
				}
			}
			requirePathErr(t, err, "part"+itoa(int64(written)), sandbox.ErrTooLarge)
			assert.LessOrEqual(t, int64(written)*chunk, f.MaxTotalSize)
			ok, _ := sb.Exists(ctx, "part"+itoa(int64(written)))
			assert.False(t, ok, "the refused file does not exist")
			require.NoError(t, sb.RemoveAll(ctx, "part0"))
			require.NoError(t, sb.WriteFile(ctx, "again", make([]byte, chunk)), "removing frees the space")
		})
	}
}

func lastElem(dir string) string { return dir[strings.LastIndexByte(dir, '/')+1:] }

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

// recorder is a Cmd.Stdout that keeps each write.
type recorder struct {
	writes []string
	fail   error
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.fail != nil {
		return 0, r.fail
	}
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func runShell(t *testing.T, open func(t *testing.T) sandbox.Sandbox, f Features) {
	t.Run("output_and_exit_code", func(t *testing.T) {
		sb := open(t)
		res := exec(t, sb, sandbox.Cmd{Script: "echo out; echo err >&2; exit 3"})
		assert.Equal(t, "out\n", res.Stdout)
		assert.Equal(t, "err\n", res.Stderr)
		assert.Equal(t, 3, res.ExitCode)
		assert.False(t, res.TimedOut)
		assert.False(t, res.Truncated)
	})

	t.Run("stdin_env_dir", func(t *testing.T) {
		sb := open(t)
		res := exec(t, sb, sandbox.Cmd{Script: "cat; wc -c < /dev/stdin", Stdin: "abc"})
		assert.Equal(t, "abc0\n", res.Stdout, "cat read all of stdin; wc found none left")
		res = exec(t, sb, sandbox.Cmd{Script: `echo "$FOO"; env | grep '^FOO='`, Env: map[string]string{"FOO": "bar baz"}})
		assert.Equal(t, "bar baz\nFOO=bar baz\n", res.Stdout, "Env is set and exported")
		require.NoError(t, sb.MkdirAll(t.Context(), "sub/dir"))
		res = exec(t, sb, sandbox.Cmd{Script: "pwd", Dir: "sub/dir"})
		assert.Equal(t, sb.Dir()+"/sub/dir\n", res.Stdout)
		res = exec(t, sb, sandbox.Cmd{Script: "pwd"})
		assert.Equal(t, sb.Dir()+"\n", res.Stdout, "without Dir: the working directory")

		_, err := sb.Exec(t.Context(), sandbox.Cmd{Script: "pwd", Dir: "no/such/dir"})
		assert.ErrorIs(t, err, fs.ErrNotExist)
	})

	t.Run("files_shared_with_fs", func(t *testing.T) {
		sb := open(t)
		ctx := t.Context()
		require.NoError(t, sb.WriteFile(ctx, "in.txt", []byte("one\ntwo\nthree\n")))
		res := exec(t, sb, sandbox.Cmd{Script: "grep -c o in.txt; sed -n 2p in.txt > out/second.txt || { mkdir out && sed -n 2p in.txt > out/second.txt; }"})
		assert.Equal(t, "2\n", res.Stdout)
		b, err := sb.ReadFile(ctx, "out/second.txt")
		require.NoError(t, err)
		assert.Equal(t, "two\n", string(b))
	})

	t.Run("timeout_keeps_partial_output", func(t *testing.T) {
		sb := open(t)
		res := exec(t, sb, sandbox.Cmd{Script: "echo started; echo progress >&2; while true; do :; done; echo never", Timeout: 300 * time.Millisecond})
		assert.Equal(t, sandbox.ExitTimeout, res.ExitCode)
		assert.True(t, res.TimedOut)
		assert.Equal(t, "started\n", res.Stdout)
		assert.Equal(t, "progress\n", res.Stderr)

		res = exec(t, sb, sandbox.Cmd{Script: "echo before; sleep 30; echo after", Timeout: 300 * time.Millisecond})
		assert.Equal(t, sandbox.ExitTimeout, res.ExitCode, "a sleep past the timeout")
		assert.True(t, res.TimedOut)
		assert.Equal(t, "before\n", res.Stdout)

		res = exec(t, sb, sandbox.Cmd{Script: "echo quick", Timeout: 5 * time.Second})
		assert.Equal(t, 0, res.ExitCode)
		assert.False(t, res.TimedOut)
	})

	t.Run("output_cap", func(t *testing.T) {
		sb := open(t)
		res := exec(t, sb, sandbox.Cmd{Script: "head -c 5000 /dev/zero | tr '\\0' a; echo tail >&2", MaxOutput: 1000})
		assert.Len(t, res.Stdout, 1000)
		assert.Equal(t, strings.Repeat("a", 1000), res.Stdout)
		assert.True(t, res.Truncated)
		assert.Equal(t, 0, res.ExitCode, "the script ran to its end")
		assert.Equal(t, "tail\n", res.Stderr, "stderr has its own cap")

		res = exec(t, sb, sandbox.Cmd{Script: "yes", MaxOutput: 100, Timeout: 300 * time.Millisecond})
		assert.Len(t, res.Stdout, 100, "a flood is capped")
		assert.True(t, res.Truncated)
		assert.True(t, res.TimedOut, "and stopped at the timeout")
		assert.Equal(t, sandbox.ExitTimeout, res.ExitCode)
	})

	t.Run("binary_output", func(t *testing.T) {
		sb := open(t)
		res := exec(t, sb, sandbox.Cmd{Script: `printf '\000\001\377'`})
		assert.Equal(t, "\x00\x01\xff", res.Stdout)
	})

	t.Run("errors_of_the_script", func(t *testing.T) {
		sb := open(t)
		res := exec(t, sb, sandbox.Cmd{Script: "nosuchcommand --flag"})
		assert.Equal(t, 127, res.ExitCode)
		assert.Contains(t, res.Stderr, "nosuchcommand: command not found")
		res = exec(t, sb, sandbox.Cmd{Script: "if then fi"})
		assert.Equal(t, 2, res.ExitCode, "a syntax error")
		assert.NotEmpty(t, res.Stderr)
		res = exec(t, sb, sandbox.Cmd{Script: "cat missing.txt"})
		assert.Equal(t, 1, res.ExitCode)
		assert.Contains(t, res.Stderr, "missing.txt: No such file or directory")
		res = exec(t, sb, sandbox.Cmd{Script: "set -e; false; echo unreachable"})
		assert.Equal(t, 1, res.ExitCode)
		assert.Empty(t, res.Stdout)
	})

	t.Run("invalid_cmd", func(t *testing.T) {
		sb := open(t)
		_, err := sb.Exec(t.Context(), sandbox.Cmd{Script: "true", Timeout: -time.Second})
		assert.ErrorIs(t, err, fs.ErrInvalid)
		_, err = sb.Exec(t.Context(), sandbox.Cmd{Script: "true", MaxOutput: -1})
		assert.ErrorIs(t, err, fs.ErrInvalid)
		_, err = sb.Exec(t.Context(), sandbox.Cmd{Script: "true", Env: map[string]string{"1BAD": "x"}})
		assert.ErrorIs(t, err, fs.ErrInvalid)
		_, err = sb.Exec(t.Context(), sandbox.Cmd{Script: "true", Env: map[string]string{"A=B": "x"}})
		assert.ErrorIs(t, err, fs.ErrInvalid)
	})

	t.Run("canceled_context", func(t *testing.T) {
		sb := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := sb.Exec(ctx, sandbox.Cmd{Script: "echo hi"})
		assert.ErrorIs(t, err, context.Canceled)
		_, err = sb.ReadFile(ctx, "x")
		assert.ErrorIs(t, err, context.Canceled)
	})

	t.Run("stream_writers", func(t *testing.T) {
		sb := open(t)
		var out, errw recorder
		script := "echo one; echo e1 >&2; sleep 0.05; echo two; echo e2 >&2"
		res := exec(t, sb, sandbox.Cmd{Script: script, Stdout: &out, Stderr: &errw})
		assert.Equal(t, "one\ntwo\n", res.Stdout)
		assert.Equal(t, res.Stdout, strings.Join(out.writes, ""), "the writer got exactly what the result kept")
		assert.Equal(t, res.Stderr, strings.Join(errw.writes, ""))
		if f.Streams {
			assert.Equal(t, "one\n", out.writes[0], "output arrives as it is produced, not all at the end")
		}

		var capped recorder
		res = exec(t, sb, sandbox.Cmd{Script: "head -c 300 /dev/zero | tr '\\0' b", Stdout: &capped, MaxOutput: 100})
		assert.Equal(t, strings.Repeat("b", 100), strings.Join(capped.writes, ""), "the writer gets the capped output only")
		assert.True(t, res.Truncated)

		failing := &recorder{fail: errors.New("disk full")}
		res, err := sb.Exec(t.Context(), sandbox.Cmd{Script: "echo a; echo b", Stdout: failing})
		assert.ErrorContains(t, err, "disk full")
		require.NotNil(t, res, "the result comes with the writer's error")
		assert.Equal(t, "a\nb\n", res.Stdout)
	})

	if f.Confined {
		t.Run("shell_confined", func(t *testing.T) {
			sb := open(t)
			ctx := t.Context()
			require.NoError(t, sb.WriteFile(ctx, "mine.txt", []byte("mine")))
			for _, script := range []string{
				"cat ../x", "cat /etc/passwd", "ls /", "cd .. && pwd", "echo x > /etc/evil", "cd / && ls",
				"cp mine.txt ../stolen", "mv mine.txt /mine.txt", "mkdir /newdir", "touch ../../x",
				"find / -name passwd", "cat " + sb.Dir() + "/../x", "grep -r root /etc",
			} {
				res := exec(t, sb, sandbox.Cmd{Script: script})
				assert.NotEqual(t, 0, res.ExitCode, "%q must fail", script)
				assert.Contains(t, res.Stderr, "Permission denied", "%q", script)
			}
			b, err := sb.ReadFile(ctx, "mine.txt")
			require.NoError(t, err)
			assert.Equal(t, "mine", string(b), "nothing moved")
			entries, err := sb.ReadDir(ctx, ".")
			require.NoError(t, err)
			assert.Len(t, entries, 1)
			res := exec(t, sb, sandbox.Cmd{Script: "echo scratch > /tmp/s && cat /tmp/s"})
			assert.Equal(t, "scratch\n", res.Stdout, "the shell has a scratch /tmp")
		})
	}

	t.Run("large_output_is_whole", func(t *testing.T) {
		sb := open(t)
		res := exec(t, sb, sandbox.Cmd{Script: "seq 1 20000"})
		var want bytes.Buffer
		for i := 1; i <= 20000; i++ {
			want.WriteString(itoa(int64(i)) + "\n")
		}
		assert.Equal(t, want.String(), res.Stdout)
		assert.False(t, res.Truncated)
	})
}
