package ossandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/sandbox"
)

func newSandbox(t *testing.T) *Sandbox {
	t.Helper()
	sb, err := New(Config{Dir: t.TempDir(), Kind: sandbox.KindContainer, Env: []string{"PATH=" + os.Getenv("PATH")}})
	require.NoError(t, err)
	t.Cleanup(func() { sb.Close() })
	return sb
}

// Symbolic links that lead out of the working directory are refused by
// every FS operation, whatever the shell made them point at.
func TestSymlinkEscapesRefused(t *testing.T) {
	sb := newSandbox(t)
	ctx := t.Context()
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o644))
	res, err := sb.Exec(ctx, sandbox.Cmd{Script: "ln -s " + outside + " abs && ln -s ../" + filepath.Base(outside) + " rel && ln -s /etc/passwd passwd && ln -s loop loop && mkdir d && ln -s ../abs d/up"})
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	for _, name := range []string{"abs/secret", "rel/secret", "passwd", "d/up/secret", "abs", "loop"} {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			_, err := sb.ReadFile(ctx, name)
			assert.ErrorIs(t, err, sandbox.ErrEscape, "read %s: %v", name, err)
			err = sb.WriteFile(ctx, name, []byte("x"))
			assert.ErrorIs(t, err, sandbox.ErrEscape, "write %s: %v", name, err)
			if strings.Contains(name, "/") {
				_, err = sb.Stat(ctx, name)
				assert.ErrorIs(t, err, sandbox.ErrEscape, "stat %s: %v", name, err)
				err = sb.MkdirAll(ctx, name+"/x")
				assert.ErrorIs(t, err, sandbox.ErrEscape, "mkdir %s: %v", name, err)
				err = sb.RemoveAll(ctx, name)
				assert.ErrorIs(t, err, sandbox.ErrEscape, "remove %s: %v", name, err)
			}
		})
	}
	b, err := os.ReadFile(filepath.Join(outside, "secret"))
	require.NoError(t, err)
	assert.Equal(t, "outside", string(b), "nothing outside changed")
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Len(t, entries, 1)

	// A link that stays inside works.
	require.NoError(t, sb.WriteFile(ctx, "real/f", []byte("in")))
	res, err = sb.Exec(ctx, sandbox.Cmd{Script: "ln -s real inside"})
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode)
	b, err = sb.ReadFile(ctx, "inside/f")
	require.NoError(t, err)
	assert.Equal(t, "in", string(b))
}

// A command's background processes die with it: none outlives Exec, and
// none keeps Exec waiting on the pipes it holds.
func TestBackgroundProcessesDieWithTheCommand(t *testing.T) {
	sb := newSandbox(t)
	res, err := sb.Exec(t.Context(), sandbox.Cmd{Script: "sleep 30 & echo $! > pid; echo started", Timeout: 20 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, "started\n", res.Stdout)
	assert.False(t, res.TimedOut, "Exec returned when the shell ended, not at the timeout")
	pid, err := sb.ReadText(t.Context(), "pid")
	require.NoError(t, err)
	// Killed is dead or a zombie waiting for init to reap it.
	res, err = sb.Exec(t.Context(), sandbox.Cmd{Script: `p=` + strings.TrimSpace(pid) + `; for i in $(seq 50); do s=$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null); if [ -z "$s" ] || [ "$s" = Z ]; then echo gone; exit; fi; sleep 0.1; done; echo alive`})
	require.NoError(t, err)
	assert.Equal(t, "gone\n", res.Stdout)
}

// A command that never ends and floods its output is capped and killed
// at its timeout, with the output so far.
func TestFloodNeverEnding(t *testing.T) {
	sb := newSandbox(t)
	res, err := sb.Exec(t.Context(), sandbox.Cmd{Script: "cat /dev/zero & yes flood", MaxOutput: 4096, Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	assert.True(t, res.TimedOut)
	assert.True(t, res.Truncated)
	assert.Equal(t, sandbox.ExitTimeout, res.ExitCode)
	assert.Len(t, res.Stdout, 4096, "capped, both writers together")
}

// The command's environment is what the sandbox passes, never the
// process's own.
func TestEnvironmentIsOnlyWhatIsPassed(t *testing.T) {
	t.Setenv("DAMPER_TEST_SECRET", "fake-token-must-not-leak")
	sb := newSandbox(t)
	res, err := sb.Exec(t.Context(), sandbox.Cmd{Script: "env", Env: map[string]string{"MINE": "1"}})
	require.NoError(t, err)
	assert.NotContains(t, res.Stdout, "fake-token-must-not-leak")
	assert.Contains(t, res.Stdout, "MINE=1\n")
}
