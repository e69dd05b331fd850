package agents

import (
	"os"

	"github.com/damperdev/damper/examples/triage"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/harness"
	harnesstool "github.com/damperdev/damper/runtime/tool"
)

// HarnessIn asks probe.harness for a triage-shaped prompt in Session of the
// instance, on Model (empty: the host's DAMPER_MODEL).
type HarnessIn struct {
	Model   string `json:"model,omitempty"`
	Session string `json:"session"`
	Prompt  string `json:"prompt"`
}

// HarnessOut is the result, and how many messages the session holds.
type HarnessOut struct {
	Result   triage.Triage `json:"result"`
	Messages int           `json:"messages"`
}

// crashTool ends the module instance (proc_exit), as a trap does: the e2e
// suite loses a run while a tool runs.
var crashTool = harnesstool.New("crash", "Stops the module instance.", func(*agent.Context, struct{}) (string, error) {
	os.Exit(3)
	return "", nil
})

func init() {
	agent.Register("probe.harness", runHarness, agent.WithPolicy(ModelPolicy))
}

func runHarness(ctx *agent.Context, in HarnessIn) (HarnessOut, error) {
	h, err := harness.New(ctx, harness.Config{Model: in.Model, System: triage.System, Tools: []harnesstool.Tool{crashTool}})
	if err != nil {
		return HarnessOut{}, err
	}
	s, err := h.Session(in.Session)
	if err != nil {
		return HarnessOut{}, err
	}
	t, err := harness.Prompt[triage.Triage](ctx, s, in.Prompt)
	if err != nil {
		return HarnessOut{}, err
	}
	msgs, err := s.Messages(ctx)
	if err != nil {
		return HarnessOut{}, err
	}
	return HarnessOut{Result: t, Messages: len(msgs)}, nil
}
