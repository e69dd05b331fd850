//go:build !wasip1

package agent_test

import (
	"context"
	"fmt"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
)

type Note struct {
	Text string `json:"text"`
}

func init() {
	// example.notes keeps the notes of each instance in its state.
	agent.Register("example.notes", func(ctx *agent.Context, in Note) ([]Note, error) {
		var notes []Note
		if _, err := ctx.State().Get("notes", &notes); err != nil {
			return nil, err
		}
		notes = append(notes, in)
		return notes, ctx.State().Set("notes", notes)
	})
}

func ExampleState() {
	h := agenttest.New()
	defer h.Close()

	for _, text := range []string{"milk", "eggs"} {
		out, _ := h.Run(context.Background(), "example.notes", "alice", Note{Text: text})
		fmt.Println(string(out))
	}
	out, _ := h.Run(context.Background(), "example.notes", "bob", Note{Text: "tea"})
	fmt.Println(string(out))
	// Output:
	// [{"text":"milk"}]
	// [{"text":"milk"},{"text":"eggs"}]
	// [{"text":"tea"}]
}
