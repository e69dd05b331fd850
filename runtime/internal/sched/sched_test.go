package sched

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

// handlers maps the agent named in a start to the code the task runs.
type handlers map[string]func(ctx context.Context, payload json.RawMessage) (any, error)

func newScheduler(hs handlers) *Scheduler {
	return New(func(ctx context.Context, start *wire.Start) (json.RawMessage, *wire.Error) {
		out, err := hs[start.Agent](ctx, start.Payload)
		if err != nil {
			return nil, &wire.Error{Type: wire.ErrAgent, Message: err.Error(), Status: 500}
		}
		b, _ := json.Marshal(out)
		return b, nil
	})
}

func decode(t *testing.T, b []byte) wire.Output {
	t.Helper()
	var out wire.Output
	require.NoError(t, json.Unmarshal(b, &out), "output %s", b)
	return out
}

func start(t *testing.T, s *Scheduler, task, agent string, payload string) wire.Output {
	t.Helper()
	in, err := json.Marshal(wire.Start{Task: task, Kind: wire.KindRun, Agent: agent, Instance: "i", Run: "r_" + task, Payload: json.RawMessage(payload)})
	require.NoError(t, err)
	return decode(t, s.Start(in))
}

func resume(t *testing.T, s *Scheduler, task string, results ...wire.Result) wire.Output {
	t.Helper()
	in, err := json.Marshal(wire.Resume{Task: task, Results: results})
	require.NoError(t, err)
	return decode(t, s.Resume(in))
}

func cancel(t *testing.T, s *Scheduler, task string) wire.Output {
	t.Helper()
	return decode(t, s.Cancel([]byte(`{"task":"`+task+`"}`)))
}

// echo answers every effect of a batch with its own args as the value.
func echo(batch []wire.Effect) []wire.Result {
	rs := make([]wire.Result, len(batch))
	for i, e := range batch {
		rs[i] = wire.Result{ID: e.ID, Value: e.Args}
	}
	return rs
}

// drive answers batches with answer until the task is done.
func drive(t *testing.T, s *Scheduler, out wire.Output, answer func([]wire.Effect) []wire.Result) wire.Output {
	t.Helper()
	for !out.Done {
		require.NotEmpty(t, out.Effects, "a batch is never empty")
		out = resume(t, s, out.Task, answer(out.Effects)...)
	}
	return out
}

type msg struct {
	N int    `json:"n"`
	S string `json:"s,omitempty"`
}

func TestEffectRoundTrip(t *testing.T) {
	s := newScheduler(handlers{"a": func(ctx context.Context, _ json.RawMessage) (any, error) {
		var got msg
		if err := Perform(ctx, "test", msg{N: 41}, &got); err != nil {
			return nil, err
		}
		return msg{N: got.N + 1}, nil
	}})

	out := start(t, s, "t1", "a", `{}`)
	require.False(t, out.Done)
	require.Len(t, out.Effects, 1)
	assert.Equal(t, wire.Effect{ID: 1, Type: "test", Args: json.RawMessage(`{"n":41}`)}, out.Effects[0])

	out = resume(t, s, "t1", wire.Result{ID: 1, Value: json.RawMessage(`{"n":41}`)})
	assert.Equal(t, wire.Output{Task: "t1", Done: true, Result: json.RawMessage(`{"n":42}`)}, out)
}

func TestInterleavedTasks(t *testing.T) {
	s := newScheduler(handlers{"count": func(ctx context.Context, p json.RawMessage) (any, error) {
		var in msg
		_ = json.Unmarshal(p, &in)
		sum := 0
		for i := range in.N {
			var got msg
			if err := Perform(ctx, "add", msg{N: i, S: in.S}, &got); err != nil {
				return nil, err
			}
			sum += got.N
		}
		return msg{N: sum, S: in.S}, nil
	}})

	// Three tasks in flight at once, resumed in an order unrelated to
	// their start order; each effect carries its task's tag back.
	outs := map[string]wire.Output{
		"a": start(t, s, "a", "count", `{"n":3,"s":"a"}`),
		"b": start(t, s, "b", "count", `{"n":2,"s":"b"}`),
		"c": start(t, s, "c", "count", `{"n":4,"s":"c"}`),
	}
	order := []string{"c", "a", "b", "b", "c", "a", "c", "a", "c"}
	for _, id := range order {
		out := outs[id]
		require.False(t, out.Done, "task %s", id)
		var args msg
		require.NoError(t, json.Unmarshal(out.Effects[0].Args, &args))
		require.Equal(t, id, args.S, "task %s got another task's effect", id)
		outs[id] = resume(t, s, id, echo(out.Effects)...)
	}
	for id, want := range map[string]string{"a": `{"n":3,"s":"a"}`, "b": `{"n":1,"s":"b"}`, "c": `{"n":6,"s":"c"}`} {
		assert.Equal(t, wire.Output{Task: id, Done: true, Result: json.RawMessage(want)}, outs[id])
	}
	assert.Empty(t, s.tasks)
}

func TestGroupEffectsFormOneBatch(t *testing.T) {
	const n = 8
	s := newScheduler(handlers{"fanout": func(ctx context.Context, _ json.RawMessage) (any, error) {
		g := NewGroup(ctx)
		got := make([]int, n)
		for i := range n {
			g.Go(func() error {
				var v msg
				if err := Perform(ctx, "fetch", msg{N: i}, &v); err != nil {
					return err
				}
				// A second, nested round: also one batch.
				inner := NewGroup(ctx)
				inner.Go(func() error { return Perform(ctx, "fetch", msg{N: i + 100}, nil) })
				if err := inner.Wait(); err != nil {
					return err
				}
				got[i] = v.N * 10
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		return got, nil
	}})

	out := start(t, s, "t", "fanout", `{}`)
	require.Len(t, out.Effects, n, "every goroutine's effect is in the first batch")
	// Answer in reverse order: each goroutine must get its own result.
	rs := echo(out.Effects)
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	out = resume(t, s, "t", rs...)
	require.Len(t, out.Effects, n, "the nested groups' effects form the second batch")
	out = resume(t, s, "t", echo(out.Effects)...)
	assert.Equal(t, wire.Output{Task: "t", Done: true, Result: json.RawMessage(`[0,10,20,30,40,50,60,70]`)}, out)
}

func TestEffectIDsAreUnique(t *testing.T) {
	s := newScheduler(handlers{"many": func(ctx context.Context, _ json.RawMessage) (any, error) {
		for range 3 {
			g := NewGroup(ctx)
			for range 4 {
				g.Go(func() error { return Perform(ctx, "x", nil, nil) })
			}
			if err := g.Wait(); err != nil {
				return nil, err
			}
		}
		return nil, Perform(ctx, "x", nil, nil)
	}})

	seen := map[uint64]bool{}
	out := drive(t, s, start(t, s, "t", "many", `{}`), func(batch []wire.Effect) []wire.Result {
		for _, e := range batch {
			assert.False(t, seen[e.ID], "effect id %d used twice", e.ID)
			seen[e.ID] = true
		}
		return echo(batch)
	})
	assert.True(t, out.Done)
	assert.Len(t, seen, 13)
}

func TestEffectErrors(t *testing.T) {
	s := newScheduler(handlers{"fail": func(ctx context.Context, _ json.RawMessage) (any, error) {
		err := Perform(ctx, "fetch", nil, nil)
		var ee *EffectError
		if !errors.As(err, &ee) {
			return nil, fmt.Errorf("not an EffectError: %v", err)
		}
		return ee, nil
	}})
	out := start(t, s, "t", "fail", `{}`)
	out = resume(t, s, "t", wire.Result{ID: 1, Error: &wire.Error{Type: wire.ErrFetch, Message: "refused"}})
	assert.JSONEq(t, `{"Type":"fetch_error","Message":"refused"}`, string(out.Result))
}

func TestCancel(t *testing.T) {
	var afterCancel atomic.Value
	s := newScheduler(handlers{"slow": func(ctx context.Context, _ json.RawMessage) (any, error) {
		g := NewGroup(ctx)
		for range 2 {
			g.Go(func() error { return Perform(ctx, "sleep", nil, nil) })
		}
		err := g.Wait()
		if !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("outstanding effect: want canceled, got %v", err)
		}
		<-ctx.Done() // the task's context is canceled too
		afterCancel.Store(Perform(ctx, "sleep", nil, nil))
		return "finished", nil
	}})

	out := start(t, s, "t", "slow", `{}`)
	require.Len(t, out.Effects, 2)
	out = cancel(t, s, "t")
	assert.Equal(t, "t", out.Task)
	assert.True(t, out.Done)
	require.NotNil(t, out.Error)
	assert.Equal(t, wire.ErrCanceled, out.Error.Type)
	assert.Nil(t, out.Result, "a canceled task's output is the cancel, whatever the handler returned")

	err, _ := afterCancel.Load().(error)
	assert.ErrorIs(t, err, context.Canceled, "a new effect fails at once")
	assert.Equal(t, wire.ErrBadTask, resume(t, s, "t", wire.Result{ID: 1}).Error.Type, "the task is gone")
}

func TestBadInput(t *testing.T) {
	s := newScheduler(handlers{"wait": func(ctx context.Context, _ json.RawMessage) (any, error) {
		return nil, Perform(ctx, "x", nil, nil)
	}})
	out := start(t, s, "live", "wait", `{}`)
	require.Len(t, out.Effects, 1)

	for _, tc := range []struct {
		name string
		call func([]byte) []byte
		in   string
		task string
	}{
		{"start not JSON", s.Start, `{"task":`, ""},
		{"start without task", s.Start, `{"kind":"run"}`, ""},
		{"start wrong type", s.Start, `{"task":"x","payload":3,"run":7}`, "x"},
		{"start nil", s.Start, ``, ""},
		{"start duplicate", s.Start, `{"task":"live","kind":"run","agent":"wait"}`, "live"},
		{"resume not JSON", s.Resume, `[1,2`, ""},
		{"resume unknown task", s.Resume, `{"task":"nope","results":[{"id":1}]}`, "nope"},
		{"cancel unknown task", s.Cancel, `{"task":"nope"}`, "nope"},
		{"cancel not JSON", s.Cancel, `nope`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := decode(t, tc.call([]byte(tc.in)))
			assert.Equal(t, tc.task, out.Task)
			assert.True(t, out.Done)
			require.NotNil(t, out.Error)
			assert.Equal(t, wire.ErrBadTask, out.Error.Type)
		})
	}

	// The live task was not disturbed by any of that.
	out = resume(t, s, "live", wire.Result{ID: 1, Value: json.RawMessage(`{}`)})
	assert.Equal(t, wire.Output{Task: "live", Done: true, Result: json.RawMessage("null")}, out)
}

func TestResumeMustAnswerTheBatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		results []wire.Result
	}{
		{"missing result", []wire.Result{{ID: 1}}},
		{"unknown id", []wire.Result{{ID: 1}, {ID: 7}}},
		{"answered twice", []wire.Result{{ID: 1}, {ID: 1}}},
		{"extra result", []wire.Result{{ID: 1}, {ID: 2}, {ID: 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sawCancel atomic.Bool
			s := newScheduler(handlers{"two": func(ctx context.Context, _ json.RawMessage) (any, error) {
				g := NewGroup(ctx)
				g.Go(func() error { return Perform(ctx, "x", nil, nil) })
				g.Go(func() error { return Perform(ctx, "x", nil, nil) })
				sawCancel.Store(errors.Is(g.Wait(), context.Canceled))
				return nil, nil
			}})
			require.Len(t, start(t, s, "t", "two", `{}`).Effects, 2)
			out := resume(t, s, "t", tc.results...)
			assert.True(t, out.Done)
			require.NotNil(t, out.Error)
			assert.Equal(t, wire.ErrBadTask, out.Error.Type)
			assert.True(t, sawCancel.Load(), "the task's effects were canceled and it ran to its end")
			assert.Empty(t, s.tasks)
		})
	}
}

func TestPanicsBecomeAgentErrors(t *testing.T) {
	s := newScheduler(handlers{
		"handler": func(ctx context.Context, _ json.RawMessage) (any, error) {
			_ = Perform(ctx, "x", nil, nil)
			panic("boom")
		},
		"goroutine": func(ctx context.Context, _ json.RawMessage) (any, error) {
			g := NewGroup(ctx)
			g.Go(func() error { return Perform(ctx, "x", nil, nil) })
			g.Go(func() error {
				_ = Perform(ctx, "x", nil, nil)
				var m map[string]int
				//lint:ignore SA5000 a runtime error, not just a panic(string), is the point
				m["x"] = 1
				return nil
			})
			err := g.Wait()
			if err == nil || !strings.Contains(err.Error(), "assignment to entry in nil map") {
				return nil, fmt.Errorf("Wait returned %v", err)
			}
			if Failure(ctx) == nil {
				return nil, errors.New("Failure is nil")
			}
			return "ignored: the panic decides the output", nil
		},
		"goexit": func(ctx context.Context, _ json.RawMessage) (any, error) {
			runtime.Goexit()
			return nil, nil
		},
	})
	for _, tc := range []struct{ agent, message string }{
		{"handler", "panic: boom"},
		{"goroutine", "panic: assignment to entry in nil map"},
		{"goexit", "the handler exited without returning (runtime.Goexit)"},
	} {
		t.Run(tc.agent, func(t *testing.T) {
			out := drive(t, s, start(t, s, tc.agent, tc.agent, `{}`), echo)
			require.NotNil(t, out.Error)
			assert.Equal(t, wire.Error{Type: wire.ErrAgent, Message: tc.message, Status: 500}, *out.Error)
		})
	}
}

func TestGoroutinesOutlivingTheHandlerAreCanceled(t *testing.T) {
	leftover := make(chan error, 1)
	s := newScheduler(handlers{"leak": func(ctx context.Context, _ json.RawMessage) (any, error) {
		g := NewGroup(ctx)
		g.Go(func() error {
			err := Perform(ctx, "x", nil, nil)
			leftover <- err
			return err
		})
		return "done", nil
	}})
	out := start(t, s, "t", "leak", `{}`)
	assert.Equal(t, wire.Output{Task: "t", Done: true, Result: json.RawMessage(`"done"`)}, out)
	assert.ErrorIs(t, <-leftover, context.Canceled)
}

func TestUntrackedGoroutineCannotWait(t *testing.T) {
	// A task whose every tracked goroutine waits: any goroutine that still
	// tries to wait on the host is one the task does not count.
	task := newTask(&wire.Start{Task: "t"})
	err := Perform(task, "x", nil, nil)
	assert.ErrorIs(t, err, errUntracked)
	assert.ErrorIs(t, NewGroup(task).Wait(), nil, "an empty group never waits")
	g := NewGroup(task)
	task.live, task.running = 1, 0 // pretend Go's goroutine is already blocked
	g.active = 1
	assert.ErrorIs(t, g.Wait(), errUntracked)
	assert.Empty(t, task.pending)
}

func TestGroupWaitInsideItsOwnGroupEndsTheTask(t *testing.T) {
	s := newScheduler(handlers{"self": func(ctx context.Context, _ json.RawMessage) (any, error) {
		g := NewGroup(ctx)
		g.Go(func() error { return g.Wait() })
		return nil, g.Wait()
	}})
	out := start(t, s, "t", "self", `{}`)
	require.NotNil(t, out.Error)
	assert.Equal(t, wire.ErrAgent, out.Error.Type)
	assert.Contains(t, out.Error.Message, "deadlock")
}

func TestPerformOutsideATask(t *testing.T) {
	err := Perform(context.Background(), "x", nil, nil)
	assert.ErrorContains(t, err, "not called inside a run")
}

// BenchmarkRoundTrip is one fetch effect's round trip through the
// scheduler: the resume with its result, the handler's next effect, the
// batch holding it. Under wasm it is several times slower (see wirejson).
func BenchmarkRoundTrip(b *testing.B) {
	s := newScheduler(handlers{"loop": func(ctx context.Context, _ json.RawMessage) (any, error) {
		args := wire.FetchArgs{Method: "GET", URL: "https://api.example.com/v1/items?page=2",
			Headers: []wire.Header{{"Accept", "application/json"}, {"Authorization", "Bearer ${secret:TOKEN}"}}}
		for {
			var v wire.FetchValue
			if err := Perform(ctx, wire.EffectFetch, args, &v); err != nil {
				return nil, nil // canceled: the benchmark is over
			}
		}
	}})
	s.Start([]byte(`{"task":"b","kind":"run","agent":"loop"}`))
	inputs := make([][]byte, b.N)
	for i := range inputs {
		inputs[i] = fmt.Appendf(nil, `{"task":"b","results":[{"id":%d,"value":{"status":200,"headers":[["content-type","application/json"]],"body":"eyJvayI6dHJ1ZX0="}}]}`, i+1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Resume(inputs[i])
	}
	b.StopTimer()
	s.Cancel([]byte(`{"task":"b"}`))
}

// A posted effect joins the batch of the effect its goroutine waits on
// next; its result, or its failure, goes nowhere, and a cancel skips it.
func TestPostJoinsTheNextBatch(t *testing.T) {
	s := newScheduler(handlers{
		"post": func(ctx context.Context, _ json.RawMessage) (any, error) {
			if err := Post(ctx, "emit", msg{N: 1}); err != nil {
				return nil, err
			}
			var v msg
			err := Perform(ctx, "fetch", msg{N: 2}, &v)
			return v, err
		},
	})
	for _, tc := range []struct {
		name   string
		answer func([]wire.Effect) []wire.Result
		want   string
	}{
		{"answered", echo, `{"n":2}`},
		{"the posted effect fails", func(batch []wire.Effect) []wire.Result {
			rs := echo(batch)
			rs[0] = wire.Result{ID: batch[0].ID, Error: &wire.Error{Type: wire.ErrFetch, Message: "nobody listens"}}
			return rs
		}, `{"n":2}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := start(t, s, "p-"+tc.name, "post", `{}`)
			require.Len(t, out.Effects, 2, "one batch holds both")
			assert.Equal(t, []string{"emit", "fetch"}, []string{out.Effects[0].Type, out.Effects[1].Type})
			out = resume(t, s, out.Task, tc.answer(out.Effects)...)
			require.True(t, out.Done)
			assert.JSONEq(t, tc.want, string(out.Result))
		})
	}

	out := start(t, s, "p-cancel", "post", `{}`)
	require.Len(t, out.Effects, 2)
	out = cancel(t, s, "p-cancel")
	require.True(t, out.Done)
	assert.Equal(t, wire.ErrCanceled, out.Error.Type)
}

// A fetch value is decoded where the resume carries it; the waiter gets
// the same value, or the same error, as decoding it on its own gives.
func TestFetchValueDecodedInTheResume(t *testing.T) {
	var (
		got  []wire.FetchValue
		errs []error
	)
	s := newScheduler(handlers{"f": func(ctx context.Context, _ json.RawMessage) (any, error) {
		for range 3 {
			var v wire.FetchValue
			err := Perform(ctx, wire.EffectFetch, wire.FetchArgs{Method: "GET", URL: "http://x/"}, &v)
			got, errs = append(got, v), append(errs, err)
		}
		return nil, nil
	}})
	out := start(t, s, "t1", "f", `{}`)
	values := []string{
		`{"status":200,"headers":[["a","b"]],"body":"b2s="}`,
		`{"status":"x"}`,
		`{"status":201,"status":null,"headers":null}`,
	}
	for _, v := range values {
		require.False(t, out.Done)
		out = decode(t, s.Resume(fmt.Appendf(nil, `{"task":"t1","results":[{"id":%d,"value":%s}]}`, out.Effects[0].ID, v)))
	}
	require.True(t, out.Done, "%+v", out)
	for i, v := range values {
		var want wire.FetchValue
		wantErr := json.Unmarshal([]byte(v), &want)
		if wantErr != nil {
			assert.ErrorContains(t, errs[i], "decode fetch result: json at offset 10: want a number", v)
			continue
		}
		require.NoError(t, errs[i], v)
		assert.Equal(t, want, got[i], v)
	}
}
