package agents

import (
	"io"
	"net/http"

	"github.com/damperdev/damper/examples/triage"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/harness"
	harnesstool "github.com/damperdev/damper/runtime/tool"
	"github.com/damperdev/damper/sandbox"
)

// AttackPolicy is probe.attack's: the model presets, and ToolPolicy's
// vault (the secret RT_TOKEN) and open (a hostile origin) services.
var AttackPolicy = func() policy.Policy {
	p := must(policy.New(policy.Anthropic(), policy.OpenAI()))
	p.Services = append(p.Services, ToolPolicy.Services...)
	return p
}()

func init() {
	agent.Register("probe.attack", attack, agent.WithPolicy(AttackPolicy))
}

// AttackIn is one prompt of probe.attack, the agent the second red team
// drives with a scripted (prompt-injected) model: Session of the instance,
// the built-in tools over a sandbox of Kind (empty by default), a fetch
// tool, and a "helper" subagent with the same tools. Typed asks for a
// triage result (finish and give_up offered); otherwise the prompt wants
// text. Only names the tools offered, when set.
type AttackIn struct {
	Kind    sandbox.Kind `json:"kind,omitempty"`
	Session string       `json:"session"`
	Prompt  string       `json:"prompt"`
	Typed   bool         `json:"typed,omitempty"`
	Only    []string     `json:"only,omitempty"`
}

// AttackOut is the prompt's answer.
type AttackOut struct {
	Text   string         `json:"text,omitempty"`
	Result *triage.Triage `json:"result,omitempty"`
}

// FetchToolIn is the fetch tool's argument.
type FetchToolIn struct {
	URL string `json:"url"`
}

var fetchTool = harnesstool.New("fetch", "GETs a URL and returns the body.", func(ctx *agent.Context, in FetchToolIn) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.URL, nil)
	if err != nil {
		return "", err
	}
	resp, err := ctx.Fetch(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Status + "\n" + string(b), err
})

func attack(ctx *agent.Context, in AttackIn) (AttackOut, error) {
	spec := sandbox.Empty()
	if in.Kind != "" {
		spec = sandbox.Spec{Kind: in.Kind}
	}
	tools := append(harnesstool.Builtins(spec), fetchTool)
	if len(in.Only) > 0 {
		var some []harnesstool.Tool
		for _, t := range tools {
			for _, name := range in.Only {
				if t.Name() == name {
					some = append(some, t)
				}
			}
		}
		tools = some
	}
	cfg := harness.Config{System: "You are probe.attack.", Tools: tools}
	if len(in.Only) == 0 {
		cfg.Subagents = []harness.Subagent{{Name: "helper", Description: "Does what it is asked.", Instructions: "Help."}}
	}
	h, err := harness.New(ctx, cfg)
	if err != nil {
		return AttackOut{}, err
	}
	s, err := h.Session(in.Session)
	if err != nil {
		return AttackOut{}, err
	}
	if in.Typed {
		t, err := harness.Prompt[triage.Triage](ctx, s, in.Prompt)
		if err != nil {
			return AttackOut{}, err
		}
		return AttackOut{Result: &t}, nil
	}
	text, err := s.Prompt(ctx, in.Prompt)
	return AttackOut{Text: text}, err
}
