package harness

import (
	"context"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/internal/sched"
	"github.com/damperdev/damper/runtime/model"
)

// Every event the harness emits goes through this file, so that moving
// them to the closed set of runtime/event is one change here. Events are
// posted: they ride with the run's next batch of effects (the next read
// of the model's stream, the next sql write), costing no round trip.

// Event types the harness emits; each data is the struct named after it.
const (
	evTurnStart        = "turn.start"
	evTurnFinish       = "turn.finish"
	evTextDelta        = "text.delta"
	evThinkingDelta    = "thinking.delta"
	evModelRetry       = "model.retry"
	evToolStart        = "tool.start"
	evToolFinish       = "tool.finish"
	evToolError        = "tool.error"
	evResultRetry      = "result.retry"
	evCompactionStart  = "compaction.start"
	evCompactionFinish = "compaction.finish"
	evSubagentStart    = "subagent.start"
	evSubagentFinish   = "subagent.finish"
)

type turnStart struct {
	Session string `json:"session"`
	Model   string `json:"model"`
	Turn    int    `json:"turn"`
}

type turnFinish struct {
	Session    string      `json:"session"`
	Model      string      `json:"model"` // as the provider answered
	Turn       int         `json:"turn"`
	StopReason string      `json:"stop_reason"`
	Usage      model.Usage `json:"usage"`
	Cost       float64     `json:"cost"`
	CostKnown  bool        `json:"cost_known"`
}

type delta struct {
	Session string `json:"session"`
	Index   int    `json:"index"`
	Text    string `json:"text"`
}

type modelRetry struct {
	Session string `json:"session"`
	Attempt int    `json:"attempt"`
	WaitMs  int64  `json:"wait_ms"`
	Error   string `json:"error"`
}

type toolEvent struct {
	Session string `json:"session"`
	CallID  string `json:"call_id"`
	Name    string `json:"name"`
	// Input is tool.start's; Bytes and Truncated tool.finish's; Error
	// tool.error's.
	Input     string `json:"input,omitempty"`
	Bytes     int    `json:"bytes,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	Error     string `json:"error,omitempty"`
}

type resultRetry struct {
	Session  string    `json:"session"`
	Attempt  int       `json:"attempt"`
	Problems []Problem `json:"problems"`
}

type compactionEvent struct {
	Session  string `json:"session"`
	Reason   string `json:"reason"` // window, overflow, request
	Messages int    `json:"messages"`
	Tokens   int    `json:"tokens"`
	// Kept and Summary are compaction.finish's.
	Kept    int `json:"kept,omitempty"`
	Summary int `json:"summary_tokens,omitempty"`
}

type subagentEvent struct {
	Session  string `json:"session"`
	Subagent string `json:"subagent"`
	Child    string `json:"child"`
	Error    string `json:"error,omitempty"`
}

// emit posts one event of ctx's run. An event that cannot be posted (the
// run is ending) is dropped: events report, they never fail a run.
func emit(ctx context.Context, typ string, data any) {
	t := sched.FromContext(ctx)
	if t == nil {
		return
	}
	raw, err := jsonOf(data)
	if err != nil {
		return
	}
	_ = sched.Post(ctx, wire.EffectEmit, wire.EmitArgs{Events: []wire.Event{{Type: typ, Run: t.Start().Run, Data: raw}}})
}
