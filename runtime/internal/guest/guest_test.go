package guest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"hello": true, "probe.state": true, "A-Z_0.9": true, strings.Repeat("a", 128): true,
		"..a": true, ".hidden": true,
		"": false, ".": false, "..": false, "a/b": false, `a\b`: false, "a b": false, "é": false,
		"a%2e": false, strings.Repeat("a", 129): false, "a\x00": false,
	} {
		assert.Equal(t, want, ValidName(name), "%q", name)
	}
}

func TestStartChecksTheTask(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start wire.Start
		want  wire.Error
	}{
		{"unknown kind", wire.Start{Kind: "alarm", Agent: "x", Instance: "i", Run: "r"}, wire.Error{Type: wire.ErrBadTask, Message: `unknown task kind "alarm"`}},
		{"bad instance", wire.Start{Kind: wire.KindRun, Agent: "x", Instance: "../etc", Run: "r"}, wire.Error{Type: wire.ErrBadTask, Message: `instance id "../etc" is outside the grammar`}},
		{"no run", wire.Start{Kind: wire.KindRun, Agent: "x", Instance: "i"}, wire.Error{Type: wire.ErrBadTask, Message: "the start names no run"}},
		{"unknown agent", wire.Start{Kind: wire.KindRun, Agent: "nobody", Instance: "i", Run: "r"}, wire.Error{Type: wire.ErrUnknownAgent, Status: 404, Message: `no agent named "nobody"; this module has no agents`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.start.Task = "t-" + tc.name
			in, err := json.Marshal(tc.start)
			require.NoError(t, err)
			var out wire.Output
			require.NoError(t, json.Unmarshal(Start(in), &out))
			assert.Equal(t, wire.Output{Task: tc.start.Task, Done: true, Error: &tc.want}, out)
		})
	}
}

func TestManifestNamesTheVersion(t *testing.T) {
	var m wire.Manifest
	require.NoError(t, json.Unmarshal(Manifest(7), &m))
	assert.Equal(t, wire.Manifest{ABI: 7, Agents: []wire.AgentEntry{}}, m)
}
