package harness

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/runtime/model"
)

// Every event the harness emits goes through this file, in the closed set
// of runtime/event. Events are posted: they ride with the run's next
// batch of effects (the next read of the model's stream, the next sql
// write), costing no round trip. An event that cannot be posted (the run
// is ending) is dropped: events report, they never fail a run.

// emit posts data as an event of session s, in its turn and tool call
// when they are given ("" when not).
func emit(ctx context.Context, session, turn, call string, data event.Payload) {
	_ = event.Emit(ctx, event.Event{Session: session, Turn: turn, Call: call, Data: data})
}

// turnID names a session's model turn n in the events of its run.
func turnID(n int) string { return "t" + strconv.Itoa(n) }

// provider is the provider part of a model name ("anthropic" of
// "anthropic/claude-sonnet-4-5"), "" when it names none.
func provider(name string) string {
	p, _, ok := strings.Cut(name, "/")
	if !ok {
		return ""
	}
	return p
}

func usageOf(u model.Usage) event.Usage { return event.Usage(u) }

func sinceMs(t time.Time) int64 { return time.Since(t).Milliseconds() }

func problemStrings(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
