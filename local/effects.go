package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/internal/wirejson"
)

// task is the host's side of one task in flight: what its effects need, and
// the stream handles it holds until it ends.
type task struct {
	id       string
	agent    string
	instance string
	run      string
	store    func(ctx context.Context) (*store, error) // the agent instance's database, opened on first use
	onEvent  func(wire.Event)                          // the run's listener, or nil
	logger   *slog.Logger
	counters *counters
	secrets  *agentSecrets // the agent's; nil: it has no policy

	mu         sync.Mutex
	streams    map[uint64]*stream
	nextHandle uint64
}

// agentSecrets returns what substitutes and scrubs the task's secrets.
func (t *task) agentSecrets() *agentSecrets {
	if t.secrets == nil {
		return noSecrets
	}
	return t.secrets
}

type stream struct {
	mu   sync.Mutex // two reads of one handle in one batch take turns
	body io.ReadCloser
}

// counters count what the host holds, so tests can see it all released.
type counters struct {
	streams atomic.Int64 // open stream handles
	effects atomic.Int64 // effects being performed
}

func (t *task) addStream(body io.ReadCloser) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.streams == nil {
		t.streams = map[uint64]*stream{}
	}
	t.nextHandle++
	t.streams[t.nextHandle] = &stream{body: body}
	t.counters.streams.Add(1)
	return t.nextHandle
}

func (t *task) stream(h uint64) *stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.streams[h]
}

func (t *task) releaseStream(h uint64) {
	t.mu.Lock()
	s, ok := t.streams[h]
	delete(t.streams, h)
	t.mu.Unlock()
	if ok {
		s.body.Close()
		t.counters.streams.Add(-1)
	}
}

// release closes every handle the task still holds; called when it ends.
func (t *task) release() {
	t.mu.Lock()
	handles := make([]uint64, 0, len(t.streams))
	for h := range t.streams {
		handles = append(handles, h)
	}
	t.mu.Unlock()
	for _, h := range handles {
		t.releaseStream(h)
	}
}

// performer performs effects. One per Host; per-task state is in task.
type performer struct {
	fetcher Fetcher
}

// performBatch performs every effect of a batch concurrently and returns
// their results in the batch's order.
//
// Emit and log effects take no time: they are performed first, in this
// goroutine, which spares the common batch of a fetch and its policy event
// a goroutine hand-off (tens of microseconds on a busy machine).
func (p *performer) performBatch(ctx context.Context, t *task, effects []wire.Effect) []wire.Result {
	results := make([]wire.Result, len(effects))
	var rest []int // the effects that may wait
	for i, e := range effects {
		if e.Type == wire.EffectEmit || e.Type == wire.EffectLog {
			results[i] = p.perform(ctx, t, e)
		} else {
			rest = append(rest, i)
		}
	}
	if len(rest) == 1 {
		results[rest[0]] = p.perform(ctx, t, effects[rest[0]])
		return results
	}
	var wg sync.WaitGroup
	for _, i := range rest {
		wg.Go(func() { results[i] = p.perform(ctx, t, effects[i]) })
	}
	wg.Wait()
	return results
}

// perform performs one effect. It never fails the task: every problem,
// including an effect type this host does not know, is an error result.
func (p *performer) perform(ctx context.Context, t *task, e wire.Effect) wire.Result {
	t.counters.effects.Add(1)
	defer t.counters.effects.Add(-1)
	value, werr := p.dispatch(ctx, t, e)
	r := wire.Result{ID: e.ID, Error: werr}
	if werr == nil {
		raw, err := encodeValue(value)
		if err != nil {
			r.Error = &wire.Error{Type: "internal", Message: fmt.Sprintf("encode %s result: %v", e.Type, err)}
		} else {
			r.Value = raw
		}
	}
	return r
}

// emptyValue is the value of the effects that answer nothing but success.
var emptyValue = json.RawMessage(`{}`)

// encodeValue is json.Marshal, by hand for the values of every round trip
// (wirejson writes the same JSON).
func encodeValue(v any) (json.RawMessage, error) {
	switch v := v.(type) {
	case struct{}:
		return emptyValue, nil
	case wire.FetchValue:
		return wirejson.AppendFetchValue(make([]byte, 0, wirejson.FetchValueSize(&v)), &v), nil
	}
	return json.Marshal(v)
}

func (p *performer) dispatch(ctx context.Context, t *task, e wire.Effect) (any, *wire.Error) {
	switch e.Type {
	case wire.EffectFetch:
		var a wire.FetchArgs
		if err := decodeArgsWith(e, &a, wirejson.DecodeFetchArgs); err != nil {
			return nil, err
		}
		return p.performFetch(ctx, t, a)
	case wire.EffectRead:
		var a wire.ReadArgs
		if err := decodeArgs(e, &a); err != nil {
			return nil, err
		}
		return p.performRead(ctx, t, a)
	case wire.EffectClose:
		var a wire.CloseArgs
		if err := decodeArgs(e, &a); err != nil {
			return nil, err
		}
		return p.performClose(t, a)
	case wire.EffectSQL:
		a, err := decodeSQLArgs(e.Args)
		if err != nil {
			return nil, err
		}
		s, serr := t.store(ctx)
		if serr != nil {
			return nil, &wire.Error{Type: wire.ErrSQL, Message: serr.Error()}
		}
		return s.batch(ctx, a)
	case wire.EffectEmit:
		var a wire.EmitArgs
		if err := decodeArgsWith(e, &a, wirejson.DecodeEmitArgs); err != nil {
			return nil, err
		}
		debug := t.logger.Enabled(ctx, slog.LevelDebug)
		for _, ev := range a.Events {
			if debug {
				t.logger.Debug("event", "type", ev.Type, "run", ev.Run, "data", string(ev.Data))
			}
			if t.onEvent != nil {
				t.onEvent(ev)
			}
		}
		return struct{}{}, nil
	case wire.EffectLog:
		var a wire.LogArgs
		if err := decodeArgs(e, &a); err != nil {
			return nil, err
		}
		attrs := make([]slog.Attr, 0, len(a.Attrs)+1)
		attrs = append(attrs, slog.String("run", t.run))
		for k, v := range a.Attrs {
			attrs = append(attrs, slog.Any(k, v))
		}
		t.logger.LogAttrs(ctx, logLevel(a.Level), a.Message, attrs...)
		return struct{}{}, nil
	case wire.EffectSleep:
		var a wire.SleepArgs
		if err := decodeArgs(e, &a); err != nil {
			return nil, err
		}
		if a.Ms < 0 {
			return nil, &wire.Error{Type: wire.ErrBadEffect, Message: "sleep: negative ms"}
		}
		timer := time.NewTimer(time.Duration(a.Ms) * time.Millisecond)
		defer timer.Stop()
		select {
		case <-timer.C:
			return struct{}{}, nil
		case <-ctx.Done():
			return nil, canceledError(ctx)
		}
	default:
		return nil, &wire.Error{Type: wire.ErrUnknownEffect, Message: fmt.Sprintf("this host does not perform %q effects", e.Type)}
	}
}

func decodeArgs(e wire.Effect, v any) *wire.Error {
	if len(e.Args) == 0 {
		return &wire.Error{Type: wire.ErrBadEffect, Message: e.Type + ": no args"}
	}
	if err := json.Unmarshal(e.Args, v); err != nil {
		return &wire.Error{Type: wire.ErrBadEffect, Message: fmt.Sprintf("%s: malformed args: %v", e.Type, err)}
	}
	return nil
}

// decodeArgsWith is decodeArgs with a hand-written decoder from wirejson,
// for the args of every round trip. It accepts and refuses what
// encoding/json does (wirejson's tests); on a refusal encoding/json says
// why, so that the message is the one it always was.
func decodeArgsWith[T any](e wire.Effect, v *T, decode func([]byte, *T) error) *wire.Error {
	if len(e.Args) == 0 {
		return decodeArgs(e, v)
	}
	if decode(e.Args, v) == nil {
		return nil
	}
	*v = *new(T)
	return decodeArgs(e, v)
}

// decodeSQLArgs keeps numbers as json.Number, so integers bind as int64
// without a trip through float64.
func decodeSQLArgs(raw json.RawMessage) (wire.SQLArgs, *wire.Error) {
	var a wire.SQLArgs
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		return a, &wire.Error{Type: wire.ErrBadEffect, Message: fmt.Sprintf("sql: malformed args: %v", err)}
	}
	if len(a.Statements) == 0 {
		return a, &wire.Error{Type: wire.ErrBadEffect, Message: "sql: no statements"}
	}
	return a, nil
}

func logLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func canceledError(ctx context.Context) *wire.Error {
	msg := "the task was canceled"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg = "the run timed out"
	}
	return &wire.Error{Type: wire.ErrCanceled, Message: msg}
}
