//go:build !wasip1

package harness_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/harness"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/model/modeltest"
	"github.com/damperdev/damper/runtime/tool"
)

// Label is a typed result: its schema, with the enum and the bounds of its
// tags, is the finish tool's.
type Label struct {
	Kind     string `json:"kind" jsonschema:"enum=bug,enum=feature"`
	Priority int    `json:"priority" jsonschema:"minimum=1,maximum=3"`
}

// lookup is a custom tool: its arguments are validated against In's schema
// and decoded before it runs.
var lookup = tool.New("lookup", "Finds an issue by number.", func(ctx *agent.Context, in struct {
	Number int `json:"number" jsonschema:"minimum=1"`
}) (string, error) {
	return fmt.Sprintf("issue %d: the app crashes on save", in.Number), nil
})

func init() {
	agent.Register("example.label", func(ctx *agent.Context, issue int) (Label, error) {
		h, err := harness.New(ctx, harness.Config{
			System: "You label issues.",
			Tools:  []tool.Tool{lookup},
		})
		if err != nil {
			return Label{}, err
		}
		s, err := h.Session("default")
		if err != nil {
			return Label{}, err
		}
		return harness.Prompt[Label](ctx, s, fmt.Sprintf("Label issue %d.", issue))
	})

	// A scripted model: it looks the issue up, gives a result that does
	// not fit, reads the problems, and corrects it.
	turn := 0
	modeltest.Register("labeler", func(req *model.Request) (*model.Response, error) {
		turn++
		switch turn {
		case 1:
			return modeltest.Call("lookup", map[string]int{"number": 7}), nil
		case 2:
			return modeltest.Call("finish", map[string]any{"kind": "crash", "priority": 1}), nil
		}
		last := req.Messages[len(req.Messages)-1]
		fmt.Println("the model read:", last.Content[0].Text)
		return modeltest.Call("finish", map[string]any{"kind": "bug", "priority": 1}), nil
	})
}

// Prompt[T] hands back a typed value the model gave through the finish
// tool, validated against T's schema: a result that does not fit goes back
// to the model with every problem, and it tries again.
func ExamplePrompt() {
	h := agenttest.New()
	defer h.Close()
	h.Model = "test/labeler" // the host's default model, as DAMPER_MODEL sets it

	out, err := h.Run(context.Background(), "example.label", "demo", 7)
	fmt.Println(string(out), err)
	// Output:
	// the model read: The result does not fit its schema:
	// - /kind: want one of "bug", "feature"
	// Fix every problem and give the whole result again.
	// {"kind":"bug","priority":1} <nil>
}

func init() {
	agent.Register("example.chat", func(ctx *agent.Context, say string) (string, error) {
		h, err := harness.New(ctx, harness.Config{Model: "test/parrot"})
		if err != nil {
			return "", err
		}
		s, err := h.Session("chat")
		if err != nil {
			return "", err
		}
		return s.Prompt(ctx, say)
	})
	modeltest.Register("parrot", func(req *model.Request) (*model.Response, error) {
		return modeltest.Text(fmt.Sprintf("%d messages so far", len(req.Messages))), nil
	})
}

// A session's conversation is stored after every turn, so the next run of
// the same agent instance continues it, even on a new module instance.
func ExampleSession_Prompt() {
	h := agenttest.New()
	defer h.Close()
	for _, say := range []string{"hello", "again"} {
		out, _ := h.Run(context.Background(), "example.chat", "alice", say)
		fmt.Println(string(out))
		agenttest.Restart() // the host replaces the module instance: nothing in memory survives
	}
	// Output:
	// "1 messages so far"
	// "3 messages so far"
}

func init() {
	agent.Register("example.giveup", func(ctx *agent.Context, _ struct{}) (Label, error) {
		h, err := harness.New(ctx, harness.Config{Model: "test/quitter"})
		if err != nil {
			return Label{}, err
		}
		s, err := h.Session("default")
		if err != nil {
			return Label{}, err
		}
		l, err := harness.Prompt[Label](ctx, s, "Label it.")
		var re *harness.ResultError
		if errors.As(err, &re) {
			fmt.Println("no result:", re.Reason, re.Message)
		}
		return l, err
	})
	modeltest.Register("quitter", func(*model.Request) (*model.Response, error) {
		return modeltest.Call("give_up", map[string]string{"reason": "there is no issue"}), nil
	})
}

// A prompt that gets no valid result fails with a *ResultError; a run that
// returns it answers 500 result_error, with the reason, the raw output and
// the problems as the error's details.
func ExampleResultError() {
	h := agenttest.New()
	defer h.Close()
	_, err := h.Run(context.Background(), "example.giveup", "demo", nil)
	var ae *agenttest.Error
	if errors.As(err, &ae) {
		fmt.Println(ae.Status, ae.Type, string(ae.Details))
	}
	// Output:
	// no result: gave_up there is no issue
	// 500 result_error {"reason":"gave_up","message":"there is no issue","raw":"{\"reason\":\"there is no issue\"}","problems":[],"attempts":1}
}
