//go:build !wasip1

package shell_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/examples/shell"
	"github.com/damperdev/damper/runtime/agent/agenttest"
)

func TestShell(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	run := func(instance string, in shell.Input) shell.Output {
		t.Helper()
		out, err := h.Run(t.Context(), "shell", instance, in)
		require.NoError(t, err)
		var o shell.Output
		require.NoError(t, json.Unmarshal(out, &o))
		return o
	}

	assert.Equal(t, shell.Output{Stdout: "0\n"}, run("a", shell.Input{Script: "ls | wc -l"}), "a new instance's sandbox is empty")

	o := run("a", shell.Input{
		Files:  map[string]string{"notes/todo.txt": "buy milk\nfix bug\nbuy bread\n"},
		Script: "grep -c buy notes/todo.txt; sort notes/todo.txt > sorted.txt; cat -",
		Stdin:  "from stdin\n",
	})
	assert.Equal(t, shell.Output{Stdout: "2\nfrom stdin\n"}, o)

	agenttest.Restart()
	o = run("a", shell.Input{Script: "cat sorted.txt; ls"})
	assert.Equal(t, "buy bread\nbuy milk\nfix bug\nnotes\nsorted.txt\n", o.Stdout, "the files are the instance's, across runs and restarts")
	assert.Equal(t, shell.Output{Stdout: "0\n"}, run("b", shell.Input{Script: "ls | wc -l"}), "another instance has its own sandbox")

	o = run("a", shell.Input{Script: "echo oops >&2; exit 3"})
	assert.Equal(t, shell.Output{Stderr: "oops\n", ExitCode: 3}, o, "a failing script is a result, not an error")

	o = run("a", shell.Input{Script: "nosuch"})
	assert.Equal(t, 127, o.ExitCode)
	assert.Contains(t, o.Stderr, "nosuch: command not found")

	o = run("a", shell.Input{Script: "yes | head -c 2000000"})
	assert.True(t, o.Truncated)
	assert.Len(t, o.Stdout, 1<<20, "output is capped at 1 MiB")
	assert.True(t, strings.HasPrefix(o.Stdout, "y\ny\n"))
}

func TestShellRefusesBadInput(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	_, err := h.Run(t.Context(), "shell", "bad", map[string]any{"files": map[string]string{"a": "b"}})
	var e *agenttest.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 400, e.Status, "a script is required: %v", e)

	_, err = h.Run(t.Context(), "shell", "bad", shell.Input{Script: "true", Files: map[string]string{"../escape": "x"}})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "agent_error", e.Type)
	assert.Contains(t, e.Message, "path escapes the sandbox")
}

// The host may ask for another kind than the agent's (damper run
// --sandbox, DAMPER_SANDBOX): one the host does not offer is a clear
// error saying which hosts do, and nothing runs. (agenttest offers the
// empty kind only; damper run offers all three.)
func TestHostChoosesTheKind(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	h.Sandbox = "container"
	_, err := h.Run(t.Context(), "shell", "k", shell.Input{Script: "echo hi"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "open container")
	assert.Contains(t, err.Error(), "this host does not perform container effects")

	h.Sandbox = "bogus"
	_, err = h.Run(t.Context(), "shell", "k", shell.Input{Script: "echo hi"})
	assert.ErrorContains(t, err, `sandbox kind "bogus": want empty, local or container`)
}
