//go:build !wasip1

package hello_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/examples/hello"
	"github.com/damperdev/damper/runtime/agent/agenttest"
)

func TestHello(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	greet := func(instance string, payload any) hello.Output {
		t.Helper()
		out, err := h.Run(t.Context(), "hello", instance, payload)
		require.NoError(t, err)
		var o hello.Output
		require.NoError(t, json.Unmarshal(out, &o))
		return o
	}

	assert.Equal(t, hello.Output{Greeting: "Hello, Ada!", Visits: 1}, greet("alice", hello.Input{Name: "Ada"}))
	assert.Equal(t, hello.Output{Greeting: "Hello, world!", Visits: 2}, greet("alice", nil), "no payload: the default name")
	assert.Equal(t, hello.Output{Greeting: "Hello, world!", Visits: 1}, greet("bob", json.RawMessage(`{}`)), "bob's visits are his own")

	agenttest.Restart()
	assert.Equal(t, 3, greet("alice", nil).Visits, "the count is durable")

	_, err := h.Run(t.Context(), "hello", "alice", json.RawMessage(`{"name":42}`))
	var e *agenttest.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, agenttest.Error{Type: "invalid_payload", Status: 400, Message: `field "name": want string, got JSON number`}, *e)
	assert.Equal(t, 4, greet("alice", nil).Visits, "a refused payload counted nothing")
}
