package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/sandboxop"
	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/empty"
	"github.com/damperdev/damper/sandbox/sandboxtest"
	"github.com/damperdev/damper/tests/agents"
)

var sandboxSeq atomic.Int64

// testSandboxConformance runs the sandbox conformance suite against the
// empty kind inside the test module, on the host: every operation is one
// run of probe.sandbox over HTTP, so every one reaches the agent
// instance's storage (a Durable Object's SQLite under wrangler dev).
func testSandboxConformance(t *testing.T, c *client) {
	open := func(t *testing.T) sandbox.Sandbox {
		id := fmt.Sprintf("sandbox-%d", sandboxSeq.Add(1))
		return sandboxop.Client(sandbox.KindEmpty, empty.Dir, func(ctx context.Context, req sandboxop.Request) (sandboxop.Response, error) {
			b, err := json.Marshal(req)
			if err != nil {
				return sandboxop.Response{}, err
			}
			r := c.post(t, "probe.sandbox", id, string(b))
			if r.status != http.StatusOK {
				return sandboxop.Response{}, fmt.Errorf("probe.sandbox: %d %s", r.status, r.body)
			}
			var out struct {
				Result sandboxop.Response `json:"result"`
			}
			return out.Result, json.Unmarshal(r.body, &out)
		})
	}
	sandboxtest.Run(t, open, sandboxtest.Features{
		Confined:     true,
		MaxFileSize:  agents.SandboxLimits.MaxFileSize,
		MaxTotalSize: agents.SandboxLimits.MaxTotalSize,
	})
}

// testShell runs the shell example agent: a script over files it writes
// into its sandbox, which the next run of the instance sees.
func testShell(t *testing.T, c *client) {
	id := fmt.Sprintf("shell-%d", sandboxSeq.Add(1))
	res := c.run(t, "shell", id, `{"script":"ls | wc -l"}`)
	assert.Equal(t, map[string]any{"stdout": "0\n", "stderr": "", "exit_code": 0.0, "truncated": false}, res)

	res = c.run(t, "shell", id, `{"files":{"src/a.py":"import os\n# TODO: x\n","src/b.py":"print(1)\n"},"stdin":"b\na\n",`+
		`"script":"grep -rl TODO src; sort; sed -i 's/TODO/DONE/' src/a.py; for f in src/*.py; do echo \"$f $(wc -l < $f)\"; done"}`)
	assert.Equal(t, "src/a.py\na\nb\nsrc/a.py 2\nsrc/b.py 1\n", res["stdout"], "%v", res)
	assert.EqualValues(t, 0, res["exit_code"])

	res = c.run(t, "shell", id, `{"script":"cat src/a.py; set -e; false; echo unreachable"}`)
	assert.Equal(t, "import os\n# DONE: x\n", res["stdout"], "the files of the last run are there")
	assert.EqualValues(t, 1, res["exit_code"])

	res = c.run(t, "shell", id, `{"files":{"p.json":"{\"deps\":{\"b\":\"2\",\"a\":\"1\"},\"n\":[3,1,2]}"},`+
		`"script":"jq -r '.deps | to_entries[] | \"\\(.key)=\\(.value)\"' p.json; jq -c '.n | sort | map(. * 10)' p.json"}`)
	assert.Equal(t, "b=2\na=1\n[10,20,30]\n", res["stdout"], "jq, linked by the test module: %v", res)

	res = c.run(t, "shell", id, `{"script":"nosuch; echo $?"}`)
	assert.Equal(t, "127\n", res["stdout"])
	assert.Contains(t, res["stderr"], "nosuch: command not found")

	res = c.run(t, "shell", id, `{"script":"yes | head -c 3000000"}`)
	assert.Equal(t, true, res["truncated"])
	assert.Len(t, res["stdout"], 1<<20)

	r := c.post(t, "shell", id, `{"script":"true","files":{"../x":"y"}}`)
	require.Equal(t, http.StatusInternalServerError, r.status, "%s", r.body)
	assert.Equal(t, "agent_error", r.errorType(t))
	assert.True(t, strings.Contains(string(r.body), "path escapes the sandbox"), "%s", r.body)

	r = c.post(t, "shell", id, `{"files":{}}`)
	assert.Equal(t, http.StatusBadRequest, r.status, "a script is required: %s", r.body)
}

// sandboxOp runs one operation of probe.sandbox.local or
// probe.sandbox.container on the host.
func sandboxOp(t *testing.T, c *client, agent, id string, req sandboxop.Request) sandboxop.Response {
	t.Helper()
	b, err := json.Marshal(req)
	require.NoError(t, err)
	r := c.post(t, agent, id, string(b))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var out struct {
		Result sandboxop.Response `json:"result"`
	}
	require.NoError(t, json.Unmarshal(r.body, &out))
	return out.Result
}

// testRemoteKinds opens the local and container kinds in the real module
// on each host: damper serve performs both (its container is `damper
// sandboxd`, a child process); the Worker refuses the local kind, saying
// why, and reaches its Container binding, whose class workerd cannot give
// a container without Docker (wrangler dev's enable_containers = false).
func testRemoteKinds(t *testing.T, c *client) {
	id := fmt.Sprintf("kinds-%d", sandboxSeq.Add(1))
	local := sandboxOp(t, c, "probe.sandbox.local", id, sandboxop.Request{Op: sandboxop.OpOpen})
	cont := sandboxOp(t, c, "probe.sandbox.container", id, sandboxop.Request{Op: sandboxop.OpOpen})
	switch c.h.(type) {
	case *workerHost:
		require.NotNil(t, local.Error)
		assert.Equal(t, "unavailable", local.Error.Code)
		assert.Contains(t, local.Error.Message, "the local kind is the local host's own file system and shell")
		require.NotNil(t, cont.Error, "no container without Docker")
		assert.Contains(t, cont.Error.Message, "Containers have not been enabled", "the DO reached the Sandbox class through the SANDBOX binding: %s", cont.Error.Message)
	default:
		require.Nil(t, local.Error, "%+v", local.Error)
		assert.True(t, strings.HasPrefix(local.Dir, "/"), local.Dir)
		require.Nil(t, cont.Error, "%+v", cont.Error)
		assert.True(t, strings.HasSuffix(cont.Dir, "/workspace"), cont.Dir)
		cmd := sandboxop.Cmd{Script: "echo from the container > f; cat f; echo $HTTPS_PROXY"}
		res := sandboxOp(t, c, "probe.sandbox.container", id, sandboxop.Request{Op: sandboxop.OpExec, Cmd: &cmd})
		require.Nil(t, res.Error, "%+v", res.Error)
		assert.Contains(t, string(res.Result.Stdout), "from the container\nhttp://127.0.0.1:")
	}
}
