// Package event is the closed set of events a run produces: what the
// agent's harness, its tools, its sandbox and the policy engine did, and
// how the run began and ended. Every event travels in one Envelope, is
// appended to the agent instance's event log with its sequence number,
// and is what the SSE streams, the CLI and the OpenTelemetry export read
// (docs/events.md).
//
// The set is closed: each type has one payload struct here (RunStart,
// TurnFinish, ToolStart, ...), and only these types implement Payload.
// A host refuses an emitted event of any other type.
//
// Agent code and the harness emit with Emit, from the run's goroutines:
//
//	_ = event.Emit(ctx, event.Event{Turn: turn, Data: event.TurnStart{Provider: "anthropic", Model: "claude-sonnet-4-5"}})
//
// The run lifecycle events (run.start, run.finish, run.error, run.cancel)
// and log events (from Context.Logger) are written by the host.
package event

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/internal/wirejson"
	"github.com/damperdev/damper/runtime/internal/sched"
)

// Type names an event type: "turn.start", "tool.finish", ...
type Type string

// The event types. Each has the payload struct of the same name
// (TypeTurnStart: TurnStart).
const (
	// The run's lifecycle, written by the host.
	TypeRunStart  Type = "run.start"  // the run started, or started again after an interruption
	TypeRunFinish Type = "run.finish" // the run ended with a result (the last event of a run)
	TypeRunError  Type = "run.error"  // the run failed (the last event of a run)
	TypeRunCancel Type = "run.cancel" // the run was canceled (the last event of a run)

	// The model loop.
	TypeTurnStart     Type = "turn.start"     // a model call begins
	TypeTurnFinish    Type = "turn.finish"    // a model call ended: model, usage, cost, stop reason
	TypeTextDelta     Type = "text.delta"     // a piece of the model's text
	TypeThinkingDelta Type = "thinking.delta" // a piece of the model's thinking
	TypeModelRetry    Type = "model.retry"    // the model call failed transiently and is tried again; the turn's deltas so far are void

	// Tools and the sandbox.
	TypeToolStart  Type = "tool.start"  // a tool call begins, with its arguments
	TypeToolFinish Type = "tool.finish" // a tool call returned (output capped)
	TypeToolError  Type = "tool.error"  // a tool call failed
	TypeShellExec  Type = "shell.exec"  // a shell command starts in the sandbox
	TypeShellExit  Type = "shell.exit"  // a shell command exited

	// Decisions of the policy engine.
	TypePolicyAllow  Type = "policy.allow"  // an outbound request was allowed
	TypePolicyDeny   Type = "policy.deny"   // an outbound request was denied, not sent
	TypePolicyReport Type = "policy.report" // report mode sent a request enforcement would deny
	TypeEgressAllow  Type = "egress.allow"  // the sandbox's own outbound request was allowed
	TypeEgressDeny   Type = "egress.deny"   // the sandbox's own outbound request was denied

	// The harness.
	TypeResultRetry      Type = "result.retry"      // a result did not validate; the model is asked again
	TypeCompactionStart  Type = "compaction.start"  // the conversation is being compacted
	TypeCompactionFinish Type = "compaction.finish" // compaction ended
	TypeSubagentStart    Type = "subagent.start"    // a subagent's session begins
	TypeSubagentFinish   Type = "subagent.finish"   // a subagent's session ended

	// TypeLog is a record the agent logged (Context.Logger), written by
	// the host from the log effect.
	TypeLog Type = "log"
)

// types lists every type, in the order of the constants above.
var types = [...]Type{
	TypeRunStart, TypeRunFinish, TypeRunError, TypeRunCancel,
	TypeTurnStart, TypeTurnFinish, TypeTextDelta, TypeThinkingDelta, TypeModelRetry,
	TypeToolStart, TypeToolFinish, TypeToolError, TypeShellExec, TypeShellExit,
	TypePolicyAllow, TypePolicyDeny, TypePolicyReport, TypeEgressAllow, TypeEgressDeny,
	TypeResultRetry, TypeCompactionStart, TypeCompactionFinish, TypeSubagentStart, TypeSubagentFinish,
	TypeLog,
}

// Types returns every event type, in a fixed order.
func Types() []Type { return append([]Type(nil), types[:]...) }

// Known reports whether t is one of the event types.
func Known(t Type) bool {
	for _, k := range types {
		if k == t {
			return true
		}
	}
	return false
}

// Terminal reports whether t ends a run: after it the run has no more
// events, and a stream of the run's events ends.
func Terminal(t Type) bool {
	return t == TypeRunFinish || t == TypeRunError || t == TypeRunCancel
}

// Envelope is one event as the event log holds it and the SSE streams
// send it (the data line of an SSE event is its JSON).
type Envelope struct {
	// Seq numbers the agent instance's events 1, 2, 3, ... with no gap:
	// it is the SSE id, and what Last-Event-ID resumes after.
	Seq int64 `json:"seq"`
	// Time is when the host appended the event (millisecond precision).
	Time time.Time `json:"time"`
	Type Type      `json:"type"`
	// Agent and Instance name the agent instance; Run the run.
	Agent    string `json:"agent"`
	Instance string `json:"instance"`
	Run      string `json:"run,omitempty"`
	// Session, Turn and Call correlate the event with the harness's
	// session (conversation), its model turn, and a tool call (the
	// model's tool call id), when it has them.
	Session string `json:"session,omitempty"`
	Turn    string `json:"turn,omitempty"`
	Call    string `json:"call,omitempty"`
	// Data is the payload's JSON (see Payload).
	Data json.RawMessage `json:"data,omitempty"`
}

// timeLayout is how envelopes write their time: RFC 3339, UTC, in
// milliseconds, as on both hosts.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON writes e by hand (the hosts encode every event they stream).
// Data is written as it is: the host vouches for it.
func (e Envelope) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 160+len(e.Agent)+len(e.Instance)+len(e.Run)+len(e.Session)+len(e.Turn)+len(e.Call)+len(e.Data))), nil
}

// AppendJSON appends e's JSON to b, as MarshalJSON writes it.
func (e *Envelope) AppendJSON(b []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"time":"`...)
	b = e.Time.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","type":`...)
	b = wirejson.AppendString(b, string(e.Type))
	b = append(b, `,"agent":`...)
	b = wirejson.AppendString(b, e.Agent)
	b = append(b, `,"instance":`...)
	b = wirejson.AppendString(b, e.Instance)
	b = appendOptString(b, `,"run":`, e.Run)
	b = appendOptString(b, `,"session":`, e.Session)
	b = appendOptString(b, `,"turn":`, e.Turn)
	b = appendOptString(b, `,"call":`, e.Call)
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, e.Data...)
	}
	return append(b, '}')
}

// Payload decodes e's Data into the payload struct of its type.
func (e *Envelope) Payload() (Payload, error) { return Decode(e.Type, e.Data) }

// Event is one event as a run emits it: the payload and the ids that
// correlate it with the harness's session, turn and tool call. The host
// adds the rest of the envelope (seq, time, agent, instance, run).
type Event struct {
	Session string
	Turn    string
	Call    string
	Data    Payload
}

// Emit sends ev to the host, which appends it to the agent instance's
// event log and to the streams that follow it. It does not wait for the
// host: the event goes with the run's next effect, and at the latest
// when the handler returns, so emitting costs no round trip. Events of a
// run keep the order in which they were emitted.
//
// ctx is the run's *agent.Context, or a context derived from it; call
// Emit from the handler's goroutine or one of its Group. Strings over
// MaxOutput (tool and shell output, tool arguments) are cut there and
// marked truncated. Emit fails only when ctx is not a run's, the run is
// over, or ev has no payload.
func Emit(ctx context.Context, ev Event) error {
	if ev.Data == nil {
		return errors.New("emit: an event without a payload")
	}
	typ := ev.Data.Type()
	if obs := sched.Observer(ctx); obs != nil {
		obs(ev)
	}
	if err := sched.Post(ctx, wire.EffectEmit, wirejson.Encoded(AppendEmitArgs(nil, ev))); err != nil {
		return fmt.Errorf("emit %s: %w", typ, err)
	}
	return nil
}

// AppendEmitArgs appends the args of the emit effect that carries ev (see
// docs/abi.md) to b. It is for the runtime's own emitters; agent code
// calls Emit.
func AppendEmitArgs(b []byte, ev Event) []byte {
	b = slices.Grow(b, 128+len(ev.Session)+len(ev.Turn)+len(ev.Call))
	b = append(b, `{"events":[{"type":`...)
	b = wirejson.AppendString(b, string(ev.Data.Type()))
	b = appendOptString(b, `,"session":`, ev.Session)
	b = appendOptString(b, `,"turn":`, ev.Turn)
	b = appendOptString(b, `,"call":`, ev.Call)
	b = append(b, `,"data":`...)
	b = ev.Data.appendJSON(b)
	return append(b, `}]}`...)
}

func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, key...)
	return wirejson.AppendString(b, s)
}
