package agents

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/event"
)

// The probes of the event log, SSE streams, durable runs and the
// OpenTelemetry export (docs/events.md).
func init() {
	agent.Register("probe.triage", triageProbe)
	agent.Register("probe.steps", steps)
	agent.Register("probe.otel", otelProbe, agent.WithPolicy(OTelPolicy))
}

// OTelPolicy lets probe.otel export its spans: the collector is the
// service "otel", whose target the hosts point at the endpoint they are
// given.
var OTelPolicy = must(policy.New(policy.OTLP()))

// TriageIn shapes a probe.triage run: Turns model turns, each with a tool
// call, SleepMs between events (so a client can leave mid-run), and
// FailTool makes the last turn's tool fail.
type TriageIn struct {
	Turns    int  `json:"turns"`
	SleepMs  int  `json:"sleep_ms,omitempty"`
	FailTool bool `json:"fail_tool,omitempty"`
}

// TriageOut is what probe.triage did.
type TriageOut struct {
	Turns int `json:"turns"`
	Tools int `json:"tools"`
}

// TriageTurnUsage is the usage each probe.triage turn reports, and
// TriageTurnCost its cost.
var TriageTurnUsage = event.Usage{InputTokens: 120, OutputTokens: 30, CacheReadTokens: 10, CacheWriteTokens: 5}

// TriageTurnCost is what each probe.triage turn reports it cost.
const TriageTurnCost = 0.0025

// TriageTypes are the event types a probe.triage run of n turns emits, in
// order (the host's run.start and run.finish around them).
func TriageTypes(n int, failTool bool) []event.Type {
	types := []event.Type{event.TypeRunStart}
	for i := range n {
		types = append(types, event.TypeTurnStart, event.TypeThinkingDelta, event.TypeTextDelta, event.TypeTextDelta, event.TypeTurnFinish,
			event.TypeToolStart, event.TypeShellExec, event.TypeShellExit)
		if failTool && i == n-1 {
			types = append(types, event.TypeToolError)
		} else {
			types = append(types, event.TypeToolFinish)
		}
	}
	return append(types, event.TypeTurnStart, event.TypeTextDelta, event.TypeTurnFinish, event.TypeRunFinish)
}

// triageProbe emits what a tool-using harness run emits, as the harness does:
// each turn's events carry the session and turn, a tool call's its call
// id; then a last turn that answers.
func triageProbe(ctx *agent.Context, in TriageIn) (TriageOut, error) {
	const session = "s1"
	emit := func(turn, call string, p event.Payload) error {
		return event.Emit(ctx, event.Event{Session: session, Turn: turn, Call: call, Data: p})
	}
	pause := func() error { return ctx.Sleep(time.Duration(in.SleepMs) * time.Millisecond) }
	model := event.TurnStart{Provider: "test", Model: "test/scripted"}
	out := TriageOut{}
	for i := range in.Turns {
		turn, call := "t"+strconv.Itoa(i+1), "call_"+strconv.Itoa(i+1)
		steps := []func() error{
			func() error { return emit(turn, "", model) },
			func() error { return emit(turn, "", event.ThinkingDelta{Text: "looking at the issue"}) },
			func() error { return emit(turn, "", event.TextDelta{Text: "Let me "}) },
			func() error { return emit(turn, "", event.TextDelta{Text: "check."}) },
			func() error {
				return emit(turn, "", event.TurnFinish{Provider: "test", Model: "test/scripted", StopReason: "tool_use",
					Usage: TriageTurnUsage, Cost: TriageTurnCost, DurationMs: 5})
			},
			func() error {
				return emit(turn, call, event.ToolStart{Tool: "bash", Args: json.RawMessage(fmt.Sprintf(`{"command":"grep -rn bug%d ."}`, i+1))})
			},
			func() error {
				return emit(turn, call, event.ShellExec{Command: fmt.Sprintf("grep -rn bug%d .", i+1), Cwd: "/work", Sandbox: "empty"})
			},
			func() error {
				return emit(turn, call, event.ShellExit{ExitCode: 0, DurationMs: 3, Output: "main.go:12: bug"})
			},
			func() error {
				if in.FailTool && i == in.Turns-1 {
					return emit(turn, call, event.ToolError{Tool: "bash", DurationMs: 3, Message: "exit status 2"})
				}
				out.Tools++
				return emit(turn, call, event.ToolFinish{Tool: "bash", DurationMs: 3, Output: "main.go:12: bug"})
			},
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return out, err
			}
			if err := pause(); err != nil {
				return out, err
			}
		}
		out.Turns++
	}
	last := "t" + strconv.Itoa(in.Turns+1)
	for _, p := range []event.Payload{model, event.TextDelta{Text: "Found it."},
		event.TurnFinish{Provider: "test", Model: "test/scripted", StopReason: "end_turn", Usage: TriageTurnUsage, Cost: TriageTurnCost, DurationMs: 5}} {
		if err := emit(last, "", p); err != nil {
			return out, err
		}
	}
	out.Turns++
	return out, nil
}

// StepsIn asks probe.steps for Steps durable steps with SleepMs between,
// recorded under Key (default: one key per run). Steps 0 reads what Key
// holds.
type StepsIn struct {
	Steps   int    `json:"steps"`
	SleepMs int    `json:"sleep_ms,omitempty"`
	Key     string `json:"key,omitempty"`
	// CrashAt, when set, makes the module instance trap (os.Exit) right
	// after step CrashAt is recorded, in the run's first attempt only.
	CrashAt int `json:"crash_at,omitempty"`
}

// StepsOut is how many times each step ran (1 each, whatever restarts
// happened) and the attempt that finished.
type StepsOut struct {
	Executions []int `json:"executions"`
	Attempt    int   `json:"attempt"`
}

// steps does Steps steps, recording each in state when done and skipping
// those recorded, so a run that starts again (the same run id, a greater
// attempt) continues where it was: no step runs twice. A step is its
// state write; a restart between two steps loses nothing.
func steps(ctx *agent.Context, in StepsIn) (StepsOut, error) {
	key := in.Key
	if key == "" {
		key = "steps/" + ctx.Run()
	}
	var done []int
	if _, err := ctx.State().Get(key, &done); err != nil {
		return StepsOut{}, err
	}
	for len(done) < in.Steps {
		done = append(done, 0)
	}
	for i := range in.Steps {
		if done[i] > 0 {
			continue
		}
		done[i]++
		if err := ctx.State().Set(key, done); err != nil {
			return StepsOut{}, err
		}
		ctx.Logger().Info("step done", "step", i, "attempt", ctx.Attempt())
		if in.CrashAt == i+1 && ctx.Attempt() == 1 {
			os.Exit(3)
		}
		if err := ctx.Sleep(time.Duration(in.SleepMs) * time.Millisecond); err != nil {
			return StepsOut{}, err
		}
	}
	return StepsOut{Executions: done, Attempt: ctx.Attempt()}, nil
}

// otelProbe emits a run of a harness with a subagent: two chat turns, a
// tool call between them that starts a subagent with a turn of its own,
// and a tool call that fails; probe.otel's spans follow from them.
func otelProbe(ctx *agent.Context, _ struct{}) (struct{}, error) {
	emit := func(session, turn, call string, p event.Payload) {
		_ = event.Emit(ctx, event.Event{Session: session, Turn: turn, Call: call, Data: p})
	}
	usage := event.Usage{InputTokens: 100, OutputTokens: 20, CacheReadTokens: 7, CacheWriteTokens: 3}
	emit("main", "t1", "", event.TurnStart{Provider: "anthropic", Model: "claude-sonnet-4-5"})
	emit("main", "t1", "", event.TextDelta{Text: "secret plan"})
	emit("main", "t1", "", event.TurnFinish{Provider: "anthropic", Model: "claude-sonnet-4-5", ResponseModel: "claude-sonnet-4-5-20250929",
		StopReason: "tool_use", Usage: usage, Cost: 0.001})
	emit("main", "t1", "toolu_1", event.ToolStart{Tool: "task", Args: json.RawMessage(`{"prompt":"secret prompt"}`)})
	emit("main", "t1", "toolu_1", event.SubagentStart{Name: "explorer", Session: "sub1", Depth: 1})
	emit("sub1", "t2", "", event.TurnStart{Provider: "openai", Model: "gpt-5-mini"})
	emit("sub1", "t2", "", event.TurnFinish{Provider: "openai", Model: "gpt-5-mini", StopReason: "end_turn", Usage: usage, Cost: 0.0001})
	emit("main", "t1", "toolu_1", event.SubagentFinish{Name: "explorer", Session: "sub1"})
	emit("main", "t1", "toolu_1", event.ToolFinish{Tool: "task", Output: "secret output"})
	emit("main", "t1", "toolu_2", event.ToolStart{Tool: "bash", Args: json.RawMessage(`{"command":"false"}`)})
	emit("main", "t1", "toolu_2", event.ToolError{Tool: "bash", Message: "exit status 1"})
	emit("main", "t3", "", event.TurnStart{Provider: "anthropic", Model: "claude-sonnet-4-5"})
	emit("main", "t3", "", event.TurnFinish{Provider: "anthropic", Model: "claude-sonnet-4-5", StopReason: "end_turn", Usage: usage, Cost: 0.001})
	return struct{}{}, nil
}
