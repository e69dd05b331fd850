package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnknownAgentMessage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		agents []string
		want   string
	}{
		{"helo", []string{"repo", "hello"}, `no agent named "helo"; this module's agents: hello, repo`},
		{"x", []string{"hello"}, `no agent named "x"; this module's agents: hello`},
		{"x", nil, `no agent named "x"; this module has no agents`},
	} {
		assert.Equal(t, tc.want, UnknownAgentMessage(tc.name, tc.agents))
	}
	agents := []string{"b", "a"}
	UnknownAgentMessage("x", agents)
	assert.Equal(t, []string{"b", "a"}, agents, "the caller's slice is not sorted in place")
}
