package host

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

// BenchmarkAppendEvent appends events one at a time, as emit effects come,
// to a file-backed log, and waits at the end until all are committed: the
// throughput of one run's events (the writer commits what waits together).
func BenchmarkAppendEvent(b *testing.B) {
	_, inst, _ := newLogInstance(b, 0)
	ev := []wire.Event{{Type: "text.delta", Turn: "t1", Data: json.RawMessage(`{"text":"a piece of the model's text"}`)}}
	ctx := context.Background()
	_, err := inst.AppendEvents(ctx, "r", ev)
	require.NoError(b, err)
	require.NoError(b, inst.Flush(ctx))
	b.ResetTimer()
	for b.Loop() {
		if _, err := inst.AppendEvents(ctx, "r", ev); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, inst.Flush(ctx))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	last, err := inst.LastSeq(ctx)
	require.NoError(b, err)
	require.EqualValues(b, b.N+1, last, "every event committed")
}

// BenchmarkAppendEventDurable waits for each event's commit before the
// next: the cost of one event alone on disk (one transaction).
func BenchmarkAppendEventDurable(b *testing.B) {
	_, inst, _ := newLogInstance(b, 0)
	ev := []wire.Event{{Type: "text.delta", Turn: "t1", Data: json.RawMessage(`{"text":"a piece of the model's text"}`)}}
	ctx := context.Background()
	for b.Loop() {
		if _, err := inst.AppendEvents(ctx, "r", ev); err != nil {
			b.Fatal(err)
		}
		if err := inst.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
