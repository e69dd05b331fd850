package sandboxd_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/sandboxd"
)

// A process that leaves its command's group (setsid) and would outlive
// it is killed once the command ends: sandboxd is its subreaper. (Run
// beside a command that is still going, whose own background process
// lives on until that command ends.)
func TestProcessStrays(t *testing.T) {
	bin := buildSandboxd(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	startProcess(t, bin, filepath.Join(dir, "ws"), sock)
	c, err := sandboxd.Dial(t.Context(), "http://sandboxd", unixClient(sock), sandbox.KindContainer)
	require.NoError(t, err)

	alive := func(pid int) bool { return syscall.Kill(pid, 0) == nil }
	// A command that runs on, with a background process of its own.
	long := make(chan *sandbox.Result, 1)
	go func() {
		res, _ := c.Exec(context.Background(), sandbox.Cmd{Script: "sleep 3601 & echo $! > bg.pid; wait", Timeout: time.Minute})
		long <- res
	}()
	require.Eventually(t, func() bool { b, err := c.ReadFile(t.Context(), "bg.pid"); return err == nil && len(b) > 1 }, 10*time.Second, 10*time.Millisecond)
	b, err := c.ReadFile(t.Context(), "bg.pid")
	require.NoError(t, err)
	bg, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)

	// Each stray writes its own pid (setsid may fork: $! would be its parent's).
	// The command ends once its stray is going.
	const started = "\nwhile [ ! -s stray.pid ]; do sleep 0.02; done"
	for i, script := range []string{
		"setsid sh -c 'echo $$ > stray.pid; exec sleep 3602' </dev/null >/dev/null 2>&1 &" + started,
		"setsid sh -c '(echo $$ > stray.pid; exec sleep 3603) & wait' </dev/null >/dev/null 2>&1 &" + started,
		"(setsid sh -c 'echo $$ > stray.pid; exec sleep 3604' </dev/null >/dev/null 2>&1 &)" + started,
		"setsid sh -c 'trap \"\" TERM HUP; echo $$ > stray.pid; exec sleep 3605' </dev/null >/dev/null 2>&1 &" + started,
	} {
		require.NoError(t, c.RemoveAll(t.Context(), "stray.pid"))
		res, err := c.Exec(t.Context(), sandbox.Cmd{Script: script})
		require.NoError(t, err)
		require.Equal(t, 0, res.ExitCode, "%s: %s", script, res.Stderr)
		var pid int
		require.Eventually(t, func() bool {
			b, err := c.ReadFile(t.Context(), "stray.pid")
			if err != nil {
				return false
			}
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil
		}, 10*time.Second, 10*time.Millisecond, "stray %d wrote no pid", i)
		assert.Eventually(t, func() bool { return !alive(pid) }, 10*time.Second, 20*time.Millisecond, "%s: the stray %d outlived its command", script, pid)
	}
	assert.True(t, alive(bg), "a running command's own background process is left alone")
	require.NoError(t, c.WriteFile(t.Context(), "stop", nil))
	syscall.Kill(bg, syscall.SIGTERM) // ends the long command
	<-long
}
