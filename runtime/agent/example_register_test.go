//go:build !wasip1

package agent_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
)

type GreetIn struct {
	Name  string `json:"name"`
	Shout bool   `json:"shout,omitempty"`
}

type GreetOut struct {
	Greeting string `json:"greeting"`
}

func init() {
	agent.Register("example.greet", func(ctx *agent.Context, in GreetIn) (GreetOut, error) {
		g := "Hello, " + in.Name
		if in.Shout {
			g += "!"
		}
		return GreetOut{Greeting: g}, nil
	})
}

func ExampleRegister() {
	h := agenttest.New()
	defer h.Close()

	out, err := h.Run(context.Background(), "example.greet", "demo", GreetIn{Name: "Ada", Shout: true})
	fmt.Println(string(out), err)

	// The payload is checked against GreetIn before the handler runs.
	_, err = h.Run(context.Background(), "example.greet", "demo", json.RawMessage(`{"nmae":"Ada"}`))
	fmt.Println(err)
	// Output:
	// {"greeting":"Hello, Ada!"} <nil>
	// invalid_payload (400): field "nmae": unknown field
}
