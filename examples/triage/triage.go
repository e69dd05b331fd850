// Package triage is an agent that triages an issue: it reads the title
// and body, may look at the issues it triaged before, and answers a label,
// a priority and a one-line summary, as a typed value the harness
// validated.
//
//	DAMPER_MODEL=test/schema damper run triage '{"title":"Crash on save","body":"The app quits when I save."}'
//	ANTHROPIC_API_KEY=… DAMPER_MODEL=anthropic/claude-sonnet-4-5 damper run triage '…'
//
// The model is the one the host names (DAMPER_MODEL): anthropic/…,
// openai/…, or test/schema, a test model that needs no key. Each agent
// instance (the {id} of the URL) keeps its conversation in a session, so
// a second issue sent to the same instance is triaged knowing the first.
package triage

import (
	"fmt"
	"strings"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/harness"
	_ "github.com/damperdev/damper/runtime/model/anthropic" // anthropic/…
	_ "github.com/damperdev/damper/runtime/model/openai"    // openai/…
	"github.com/damperdev/damper/runtime/tool"
	"github.com/damperdev/damper/sandbox"
	_ "github.com/damperdev/damper/sandbox/empty" // the empty sandbox
)

// Issue is what is triaged.
type Issue struct {
	Title string `json:"title" jsonschema:"minLength=1"`
	Body  string `json:"body"`
}

// Triage is the result.
type Triage struct {
	Label    string `json:"label" jsonschema:"enum=bug,enum=feature,enum=question,description=bug: something that worked is broken; feature: something new is asked for; question: someone needs an answer"`
	Priority int    `json:"priority" jsonschema:"minimum=1,maximum=3,description=1 is urgent (data loss\\, security\\, an outage)\\, 2 should be done soon\\, 3 can wait"`
	Summary  string `json:"summary" jsonschema:"minLength=1,maxLength=200,description=One sentence for the issue list"`
}

// System is the agent's instructions.
const System = `You triage the issues of a software project. For each issue, decide its label and its priority, and write a one-sentence summary. Use the past tool to see how similar issues were triaged before, so that labels and priorities stay consistent. Then call finish with your result.`

// pastIn asks for past triages whose title shares a word with the query.
type pastIn struct {
	Query string `json:"query" jsonschema:"description=Words to look for in the titles of issues triaged before"`
}

// past is the record of what this agent instance triaged.
type past struct {
	Title string `json:"title"`
	Triage
}

// pastTool looks up the issues triaged before, in the agent instance's
// state.
var pastTool = tool.New("past", "Lists issues triaged before whose titles share a word with the query, with their labels and priorities.",
	func(ctx *agent.Context, in pastIn) (string, error) {
		var history []past
		if _, err := ctx.State().Get(historyKey, &history); err != nil {
			return "", err
		}
		words := strings.Fields(strings.ToLower(in.Query))
		var b strings.Builder
		for _, p := range history {
			title := strings.ToLower(p.Title)
			for _, w := range words {
				if len(w) > 2 && strings.Contains(title, w) {
					fmt.Fprintf(&b, "%q: %s, priority %d\n", p.Title, p.Label, p.Priority)
					break
				}
			}
		}
		if b.Len() == 0 {
			return "no similar issue was triaged before", nil
		}
		return b.String(), nil
	}).Idempotent()

const historyKey = "triage.history"

// maxHistory bounds the history the past tool reads.
const maxHistory = 200

// Policy lets the agent reach the model APIs (the host adds their keys)
// and an OpenTelemetry collector, when the host is given one
// (OTEL_EXPORTER_OTLP_ENDPOINT): the run's spans are requests too.
var Policy = func() policy.Policy {
	p, err := policy.New(policy.Anthropic(), policy.OpenAI(), policy.OTLP())
	if err != nil {
		panic(err)
	}
	return p
}()

func init() {
	agent.Register("triage", Run, agent.WithPolicy(Policy))
}

// Run triages one issue in the agent instance's session.
func Run(ctx *agent.Context, in Issue) (Triage, error) {
	h, err := harness.New(ctx, harness.Config{
		System:  System,
		Sandbox: sandbox.Empty(),
		Tools:   []tool.Tool{pastTool},
	})
	if err != nil {
		return Triage{}, err
	}
	s, err := h.Session("default")
	if err != nil {
		return Triage{}, err
	}
	t, err := harness.Prompt[Triage](ctx, s, "Triage this issue.\n\nTitle: "+in.Title+"\n\n"+in.Body)
	if err != nil {
		return Triage{}, err
	}
	var history []past
	if _, err := ctx.State().Get(historyKey, &history); err != nil {
		return Triage{}, err
	}
	history = append(history, past{Title: in.Title, Triage: t})
	if len(history) > maxHistory {
		history = history[len(history)-maxHistory:]
	}
	if err := ctx.State().Set(historyKey, history); err != nil {
		return Triage{}, err
	}
	return t, nil
}
