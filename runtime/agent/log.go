package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/internal/sched"
)

// Logger returns a logger whose records go to the host's log, one round
// trip each, with the run they belong to. Attributes are sent as JSON
// values; a value JSON cannot encode is sent as its fmt.Sprint.
func (c *Context) Logger() *slog.Logger {
	return slog.New(&logHandler{c: c})
}

type logHandler struct {
	c *Context
	// steps are the WithGroup and WithAttrs calls that made this handler,
	// in order: a group nests what follows it.
	steps []logStep
}

type logStep struct {
	group string // or
	attrs []slog.Attr
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &logHandler{c: h.c, steps: append(h.steps[:len(h.steps):len(h.steps)], logStep{attrs: attrs})}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{c: h.c, steps: append(h.steps[:len(h.steps):len(h.steps)], logStep{group: name})}
}

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	root := map[string]any{}
	m := root
	for _, s := range h.steps {
		if s.group != "" {
			sub := map[string]any{}
			m[s.group] = sub
			m = sub
			continue
		}
		for _, a := range s.attrs {
			addAttr(m, a)
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(m, a)
		return true
	})
	args := wire.LogArgs{Level: levelName(r.Level), Message: r.Message, Attrs: root}
	if len(root) == 0 {
		args.Attrs = nil
	}
	return sched.Perform(h.c.task, wire.EffectLog, args, nil)
}

func addAttr(m map[string]any, a slog.Attr) {
	v := a.Value.Resolve()
	if a.Key == "" && v.Kind() != slog.KindGroup || a.Equal(slog.Attr{}) {
		return
	}
	switch v.Kind() {
	case slog.KindGroup:
		target := m
		if a.Key != "" { // an empty key inlines the group
			target = map[string]any{}
			m[a.Key] = target
		}
		for _, ga := range v.Group() {
			addAttr(target, ga)
		}
	case slog.KindString:
		m[a.Key] = v.String()
	case slog.KindInt64:
		m[a.Key] = v.Int64()
	case slog.KindUint64:
		m[a.Key] = v.Uint64()
	case slog.KindFloat64:
		m[a.Key] = v.Float64()
	case slog.KindBool:
		m[a.Key] = v.Bool()
	case slog.KindDuration:
		m[a.Key] = v.Duration().String()
	case slog.KindTime:
		m[a.Key] = v.Time().Format(time.RFC3339Nano)
	default:
		x := v.Any()
		if err, ok := x.(error); ok {
			m[a.Key] = err.Error()
			return
		}
		b, err := json.Marshal(x)
		if err != nil {
			m[a.Key] = fmt.Sprint(x)
			return
		}
		m[a.Key] = json.RawMessage(b)
	}
}

// levelName maps slog's levels onto the log effect's four.
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}
