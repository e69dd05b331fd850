package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/internal/wirejson"
	"github.com/damperdev/damper/runtime/event"
)

// performers is the dispatch table both Go hosts start from; Options.Perform
// adds to it. worker/effects.js has the same table for the Workers host.
var performers = map[string]Performer{
	wire.EffectFetch: performFetch,
	wire.EffectRead:  performRead,
	wire.EffectClose: performClose,
	wire.EffectSQL:   performSQL,
	wire.EffectEmit:  performEmit,
	wire.EffectLog:   performLog,
	wire.EffectSleep: performSleep,
	// Locally, a binding call is its REST fallback: the request it
	// carries, sent as a fetch (worker/effects.js calls env.AI).
	wire.EffectBinding: performBinding,
}

// PerformBatch performs every effect of a batch concurrently and returns
// their results in the batch's order.
//
// Emit and log effects take no time: they are performed first, in this
// goroutine, which spares the common batch of a fetch and its policy event
// a goroutine hand-off (tens of microseconds on a busy machine).
func (c *Core) PerformBatch(ctx context.Context, t *Task, effects []wire.Effect) []wire.Result {
	results := make([]wire.Result, len(effects))
	var rest []int // the effects that may wait
	for i, e := range effects {
		if e.Type == wire.EffectEmit || e.Type == wire.EffectLog {
			results[i] = c.Perform(ctx, t, e)
		} else {
			rest = append(rest, i)
		}
	}
	if len(rest) == 1 {
		results[rest[0]] = c.Perform(ctx, t, effects[rest[0]])
		return results
	}
	var wg sync.WaitGroup
	for _, i := range rest {
		wg.Go(func() { results[i] = c.Perform(ctx, t, effects[i]) })
	}
	wg.Wait()
	return results
}

// Perform performs one effect. It never fails the task: every problem,
// including an effect type this host does not know, is an error result,
// and every error message is scrubbed of the agent's secrets.
func (c *Core) Perform(ctx context.Context, t *Task, e wire.Effect) wire.Result {
	c.counters.Effects.Add(1)
	defer c.counters.Effects.Add(-1)
	var (
		value any
		werr  *wire.Error
	)
	if p, ok := c.table[e.Type]; ok {
		value, werr = p(ctx, c, t, e.Args)
	} else {
		werr = &wire.Error{Type: wire.ErrUnknownEffect, Message: fmt.Sprintf("this host does not perform %q effects", e.Type)}
	}
	r := wire.Result{ID: e.ID, Error: werr}
	if werr != nil {
		werr.Message = t.Scrub(werr.Message)
		return r
	}
	raw, err := encodeValue(value)
	if err != nil {
		r.Error = &wire.Error{Type: "internal", Message: fmt.Sprintf("encode %s result: %v", e.Type, err)}
	} else {
		r.Value = raw
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

// DecodeArgs decodes an effect's args into v, or says why they are
// malformed (bad_effect), for performers of any type.
func DecodeArgs(typ string, args []byte, v any) *wire.Error {
	if len(args) == 0 {
		return &wire.Error{Type: wire.ErrBadEffect, Message: typ + ": no args"}
	}
	if err := json.Unmarshal(args, v); err != nil {
		return &wire.Error{Type: wire.ErrBadEffect, Message: fmt.Sprintf("%s: malformed args: %v", typ, err)}
	}
	return nil
}

// decodeArgsWith is DecodeArgs with a hand-written decoder from wirejson,
// for the args of every round trip. It accepts and refuses what
// encoding/json does (wirejson's tests); on a refusal encoding/json says
// why, so that the message is the one it always was.
func decodeArgsWith[T any](typ string, args []byte, v *T, decode func([]byte, *T) error) *wire.Error {
	if len(args) == 0 {
		return DecodeArgs(typ, args, v)
	}
	if decode(args, v) == nil {
		return nil
	}
	*v = *new(T)
	return DecodeArgs(typ, args, v)
}

func performSQL(ctx context.Context, _ *Core, t *Task, args []byte) (any, *wire.Error) {
	a, werr := decodeSQLArgs(args)
	if werr != nil {
		return nil, werr
	}
	s, err := t.Inst.Store(ctx)
	if err != nil {
		return nil, &wire.Error{Type: wire.ErrSQL, Message: err.Error()}
	}
	return s.Batch(ctx, a)
}

func performEmit(ctx context.Context, _ *Core, t *Task, args []byte) (any, *wire.Error) {
	var a wire.EmitArgs
	if err := decodeArgsWith(wire.EffectEmit, args, &a, wirejson.DecodeEmitArgs); err != nil {
		return nil, err
	}
	for k, ev := range a.Events {
		if werr := checkEvent(ev); werr != nil {
			return nil, werr
		}
		if t.secrets.any() {
			ev.Session, ev.Turn, ev.Call = t.Scrub(ev.Session), t.Scrub(ev.Turn), t.Scrub(ev.Call)
			ev.Data = scrubJSON(t, ev.Data)
			a.Events[k] = ev
		}
	}
	if _, err := t.Inst.AppendEvents(ctx, t.Run, a.Events); err != nil {
		t.Logger.Warn("events lost: appending to the event log failed", "run", t.Run, "err", t.Scrub(err.Error()))
		return nil, &wire.Error{Type: wire.ErrSQL, Message: err.Error()}
	}
	return struct{}{}, nil
}

// checkEvent refuses an event the log may not hold: a type outside
// runtime/event's closed set, data that is not one JSON value, or over
// wire.MaxEventData. The Worker checks the same (worker/effects.js).
func checkEvent(ev wire.Event) *wire.Error {
	switch {
	case !event.Known(event.Type(ev.Type)):
		return &wire.Error{Type: wire.ErrBadEffect, Message: fmt.Sprintf("emit: %q is not an event type (see runtime/event)", ev.Type)}
	case len(ev.Data) > wire.MaxEventData:
		return &wire.Error{Type: wire.ErrBadEffect, Message: fmt.Sprintf("emit: a %s event's data is %d bytes, over %d", ev.Type, len(ev.Data), wire.MaxEventData)}
	case len(ev.Data) > 0 && !json.Valid(ev.Data):
		return &wire.Error{Type: wire.ErrBadEffect, Message: fmt.Sprintf("emit: a %s event's data is not JSON", ev.Type)}
	}
	return nil
}

// scrubJSON replaces secrets in a JSON value. The replacement holds no
// character JSON escapes, so a value found inside a string leaves valid
// JSON; if the result is not valid JSON (a value found across the syntax)
// it becomes a JSON string of the scrubbed text.
func scrubJSON(t *Task, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	out := []byte(t.Scrub(string(raw)))
	if bytes.Equal(out, raw) || json.Valid(out) {
		return out
	}
	b, _ := json.Marshal(string(out))
	return b
}

func performLog(ctx context.Context, _ *Core, t *Task, args []byte) (any, *wire.Error) {
	var a wire.LogArgs
	if err := DecodeArgs(wire.EffectLog, args, &a); err != nil {
		return nil, err
	}
	attrs := make([]slog.Attr, 0, len(a.Attrs)+1)
	attrs = append(attrs, slog.String("run", t.Run))
	scrub := t.secrets.any()
	clean := make(map[string]any, len(a.Attrs))
	for k, v := range a.Attrs {
		if scrub {
			k = t.Scrub(k)
			if raw, err := json.Marshal(v); err == nil {
				if s := t.Scrub(string(raw)); s != string(raw) {
					v = s
				}
			}
		}
		clean[k] = v
		attrs = append(attrs, slog.Any(k, v))
	}
	msg := t.Scrub(a.Message)
	t.Logger.LogAttrs(ctx, logLevel(a.Level), msg, attrs...)
	// The record is an event of the run too.
	data := event.Log{Level: levelName(logLevel(a.Level)), Message: msg}
	if len(clean) > 0 {
		if raw, err := json.Marshal(clean); err == nil {
			data.Attrs = raw
		}
	}
	raw, err := json.Marshal(data)
	if err == nil {
		_, err = t.Inst.AppendEvents(ctx, t.Run, []wire.Event{{Type: string(event.TypeLog), Data: raw}})
	}
	if err != nil {
		t.Logger.Warn("a log event was lost", "run", t.Run, "err", t.Scrub(err.Error()))
	}
	return struct{}{}, nil
}

// levelName is the log event's name of a level.
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

func performSleep(ctx context.Context, c *Core, _ *Task, args []byte) (any, *wire.Error) {
	var a wire.SleepArgs
	if err := DecodeArgs(wire.EffectSleep, args, &a); err != nil {
		return nil, err
	}
	if a.Ms < 0 {
		return nil, &wire.Error{Type: wire.ErrBadEffect, Message: "sleep: negative ms"}
	}
	d := time.Duration(a.Ms) * time.Millisecond
	if c.sleep != nil {
		if err := c.sleep(ctx, d); err != nil {
			return nil, CanceledError(ctx)
		}
		return struct{}{}, nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return struct{}{}, nil
	case <-ctx.Done():
		return nil, CanceledError(ctx)
	}
}

// decodeSQLArgs keeps numbers as json.Number, so integers bind as int64
// without a trip through float64.
func decodeSQLArgs(raw []byte) (wire.SQLArgs, *wire.Error) {
	var a wire.SQLArgs
	if len(raw) == 0 {
		return a, &wire.Error{Type: wire.ErrBadEffect, Message: "sql: no args"}
	}
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

// CanceledError is the error of an effect, or a run, that ctx ended: it
// says whether it timed out.
func CanceledError(ctx context.Context) *wire.Error {
	msg := "the task was canceled"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg = "the run timed out"
	}
	return &wire.Error{Type: wire.ErrCanceled, Message: msg}
}
