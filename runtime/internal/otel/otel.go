// Package otel turns a run's events into OpenTelemetry spans, following
// the GenAI semantic conventions, and encodes them as OTLP/JSON for the
// traces endpoint of a collector (docs/events.md): a span for the run
// (invoke_agent), one per model turn (chat, from turn.start to
// turn.finish), one per tool call (execute_tool, from tool.start to
// tool.finish or tool.error), and one per subagent (invoke_agent, from
// subagent.start to subagent.finish). The module sends the batches itself,
// through the fetch effect (runtime/agent), so it needs no SDK: the
// encoding is by hand, as encoding/json is slow in wasm.
package otel

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/internal/wirejson"
	"github.com/damperdev/damper/runtime/event"
)

// Span kinds (OTLP's enum).
const (
	kindInternal = 1
	kindClient   = 3
)

// batchSpans is how many finished spans wait before a batch is sent.
const batchSpans = 64

// Tracer is the spans of one run.
type Tracer struct {
	// Send is given each batch to send, an OTLP/JSON ExportTraceServiceRequest.
	Send func(body []byte)

	mu       sync.Mutex
	service  string
	content  bool
	traceID  string
	root     *span
	sessions map[string]*span // invoke_agent span of each session
	turns    map[string]*span // open chat spans, by turn
	calls    map[string]*span // open execute_tool spans, by call
	done     [][]byte         // finished spans, encoded
	ended    bool             // Finish was called
}

type span struct {
	id, parent   string
	name         string
	kind         int
	start, end   time.Time
	attrs        []byte // encoded attributes, comma-separated
	errType      string
	errMessage   string
	text         strings.Builder // the turn's text, when content is on
	conversation string
}

// New returns the tracer of a run, or nil when the start asks for no
// export. The trace id is the run's (hashed), so every attempt of a run
// that starts again is in one trace.
func New(start *wire.Start) *Tracer {
	tel := start.Telemetry
	if tel == nil || tel.Endpoint == "" {
		return nil
	}
	sum := sha256.Sum256([]byte("damper run " + start.Run))
	t := &Tracer{
		service:  tel.Service,
		content:  tel.Content,
		traceID:  hex.EncodeToString(sum[:16]),
		sessions: map[string]*span{},
		turns:    map[string]*span{},
		calls:    map[string]*span{},
	}
	if t.service == "" {
		t.service = "damper"
	}
	t.root = &span{id: newSpanID(), name: "invoke_agent " + start.Agent, kind: kindInternal, start: time.Now()}
	t.root.attrs = appendStr(appendStr(nil, "gen_ai.operation.name", "invoke_agent"), "gen_ai.agent.name", start.Agent)
	t.root.attrs = appendStr(t.root.attrs, "damper.run", start.Run)
	t.root.attrs = appendStr(t.root.attrs, "damper.instance", start.Instance)
	t.root.attrs = appendInt(t.root.attrs, "damper.attempt", int64(max(start.Attempt, 1)))
	return t
}

// Observe takes one event the run emits (an event.Event): it is the run's
// event observer (sched.SetObserver).
func (t *Tracer) Observe(v any) {
	ev, ok := v.(event.Event)
	if !ok {
		return
	}
	now := time.Now()
	t.mu.Lock()
	var batch []byte
	parent := t.session(ev.Session)
	switch p := ev.Data.(type) {
	case event.TurnStart:
		s := &span{id: newSpanID(), parent: parent.id, name: "chat " + p.Model, kind: kindClient, start: now, conversation: ev.Session}
		s.attrs = appendStr(nil, "gen_ai.operation.name", "chat")
		s.attrs = appendOptStr(s.attrs, "gen_ai.provider.name", p.Provider)
		s.attrs = appendStr(s.attrs, "gen_ai.request.model", p.Model)
		s.attrs = appendOptStr(s.attrs, "gen_ai.conversation.id", ev.Session)
		t.turns[ev.Turn] = s
	case event.TextDelta:
		if s := t.turns[ev.Turn]; s != nil && t.content {
			s.text.WriteString(p.Text)
		}
	case event.TurnFinish:
		s := t.turns[ev.Turn]
		if s == nil { // a turn.finish without its start: a span of no length
			s = &span{id: newSpanID(), parent: parent.id, name: "chat " + p.Model, kind: kindClient, start: now, conversation: ev.Session}
			s.attrs = appendStr(appendStr(nil, "gen_ai.operation.name", "chat"), "gen_ai.request.model", p.Model)
			s.attrs = appendOptStr(s.attrs, "gen_ai.provider.name", p.Provider)
		}
		delete(t.turns, ev.Turn)
		s.attrs = appendOptStr(s.attrs, "gen_ai.response.model", p.ResponseModel)
		if p.StopReason != "" {
			s.attrs = appendStrings(s.attrs, "gen_ai.response.finish_reasons", p.StopReason)
		}
		u := p.Usage
		// gen_ai.usage.input_tokens counts the whole prompt, cached parts
		// included; runtime/model splits them out.
		s.attrs = appendInt(s.attrs, "gen_ai.usage.input_tokens", u.InputTokens+u.CacheReadTokens+u.CacheWriteTokens)
		s.attrs = appendInt(s.attrs, "gen_ai.usage.output_tokens", u.OutputTokens)
		s.attrs = appendInt(s.attrs, "gen_ai.usage.cache_read.input_tokens", u.CacheReadTokens)
		s.attrs = appendInt(s.attrs, "gen_ai.usage.cache_creation.input_tokens", u.CacheWriteTokens)
		if t.content && s.text.Len() > 0 {
			msgs := `[{"role":"assistant","parts":[{"type":"text","content":` + string(wirejson.AppendString(nil, s.text.String())) + `}]}]`
			s.attrs = appendStr(s.attrs, "gen_ai.output.messages", msgs)
		}
		if p.ErrorType != "" {
			s.errType, s.errMessage = p.ErrorType, p.Error
		}
		batch = t.finish(s, now)
	case event.ToolStart:
		s := &span{id: newSpanID(), parent: parent.id, name: "execute_tool " + p.Tool, kind: kindInternal, start: now}
		s.attrs = appendStr(nil, "gen_ai.operation.name", "execute_tool")
		s.attrs = appendStr(s.attrs, "gen_ai.tool.name", p.Tool)
		s.attrs = appendOptStr(s.attrs, "gen_ai.tool.call.id", ev.Call)
		s.attrs = appendOptStr(s.attrs, "gen_ai.conversation.id", ev.Session)
		if t.content && len(p.Args) > 0 {
			s.attrs = appendStr(s.attrs, "gen_ai.tool.call.arguments", string(p.Args))
		}
		t.calls[ev.Call] = s
	case event.ToolFinish:
		if s := t.calls[ev.Call]; s != nil {
			delete(t.calls, ev.Call)
			if t.content {
				s.attrs = appendStr(s.attrs, "gen_ai.tool.call.result", p.Output)
			}
			batch = t.finish(s, now)
		}
	case event.ToolError:
		if s := t.calls[ev.Call]; s != nil {
			delete(t.calls, ev.Call)
			s.errType, s.errMessage = "tool_error", p.Message
			batch = t.finish(s, now)
		}
	case event.SubagentStart:
		parentID := parent.id
		if c := t.calls[ev.Call]; c != nil {
			parentID = c.id // the tool call that started it
		}
		s := &span{id: newSpanID(), parent: parentID, name: "invoke_agent " + p.Name, kind: kindInternal, start: now, conversation: p.Session}
		s.attrs = appendStr(appendStr(nil, "gen_ai.operation.name", "invoke_agent"), "gen_ai.agent.name", p.Name)
		s.attrs = appendOptStr(s.attrs, "gen_ai.conversation.id", p.Session)
		t.sessions[p.Session] = s
	case event.SubagentFinish:
		if s := t.sessions[p.Session]; s != nil && s != t.root {
			delete(t.sessions, p.Session)
			if p.Error != "" {
				s.errType, s.errMessage = "subagent_error", p.Error
			}
			batch = t.finish(s, now)
		}
	}
	t.mu.Unlock()
	if batch != nil && t.Send != nil {
		t.Send(batch)
	}
}

// session returns the span of a session: the root's for the first
// session the run names (its conversation), a subagent's for the sessions
// subagent.start named.
func (t *Tracer) session(id string) *span {
	if s := t.sessions[id]; s != nil {
		return s
	}
	if id != "" && t.root.conversation == "" {
		t.root.conversation = id
		t.root.attrs = appendStr(t.root.attrs, "gen_ai.conversation.id", id)
		t.sessions[id] = t.root
	}
	return t.root
}

// finish ends s and returns a batch to send when enough spans wait.
func (t *Tracer) finish(s *span, now time.Time) []byte {
	s.end = now
	t.done = append(t.done, t.encode(s))
	if len(t.done) >= batchSpans {
		return t.flushLocked()
	}
	return nil
}

// Finish ends the run's span (failure, when set, is how the run failed),
// and every span still open, and returns the last batch; it returns nil
// when called again.
func (t *Tracer) Finish(failure *wire.Error) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return nil
	}
	t.ended = true
	now := time.Now()
	for _, open := range []map[string]*span{t.calls, t.turns} {
		for k, s := range open {
			s.errType, s.errMessage = "interrupted", "the run ended before this span did"
			s.end = now
			t.done = append(t.done, t.encode(s))
			delete(open, k)
		}
	}
	for k, s := range t.sessions {
		if s != t.root {
			s.end = now
			t.done = append(t.done, t.encode(s))
		}
		delete(t.sessions, k)
	}
	if failure != nil {
		t.root.errType, t.root.errMessage = failure.Type, failure.Message
	}
	t.root.end = now
	t.done = append(t.done, t.encode(t.root))
	return t.flushLocked()
}

func (t *Tracer) flushLocked() []byte {
	if len(t.done) == 0 {
		return nil
	}
	n := 160 + len(t.service)
	for _, s := range t.done {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"resourceSpans":[{"resource":{"attributes":[`...)
	b = appendStr(b, "service.name", t.service)
	b = append(b, `]},"scopeSpans":[{"scope":{"name":"damper"},"spans":[`...)
	for i, s := range t.done {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, s...)
	}
	b = append(b, "]}]}]}"...)
	t.done = t.done[:0]
	return b
}

// encode writes s as an OTLP/JSON Span.
func (t *Tracer) encode(s *span) []byte {
	b := make([]byte, 0, 256+len(s.attrs)+len(s.errMessage))
	b = append(b, `{"traceId":"`...)
	b = append(b, t.traceID...)
	b = append(b, `","spanId":"`...)
	b = append(b, s.id...)
	b = append(b, '"')
	if s.parent != "" {
		b = append(b, `,"parentSpanId":"`...)
		b = append(b, s.parent...)
		b = append(b, '"')
	}
	b = append(b, `,"name":`...)
	b = wirejson.AppendString(b, s.name)
	b = append(b, `,"kind":`...)
	b = strconv.AppendInt(b, int64(s.kind), 10)
	b = append(b, `,"startTimeUnixNano":"`...)
	b = strconv.AppendInt(b, s.start.UnixNano(), 10)
	b = append(b, `","endTimeUnixNano":"`...)
	b = strconv.AppendInt(b, s.end.UnixNano(), 10)
	b = append(b, `","attributes":[`...)
	b = append(b, s.attrs...)
	if s.errType != "" {
		b = appendStr(b, "error.type", s.errType)
	}
	b = append(b, ']')
	if s.errType != "" {
		b = append(b, `,"status":{"code":2,"message":`...)
		b = wirejson.AppendString(b, s.errMessage)
		b = append(b, '}')
	}
	return append(b, '}')
}

func attrStart(b []byte, key string) []byte {
	if len(b) > 0 && b[len(b)-1] != '[' {
		b = append(b, ',')
	}
	b = append(b, `{"key":`...)
	b = wirejson.AppendString(b, key)
	return append(b, `,"value":`...)
}

func appendStr(b []byte, key, v string) []byte {
	b = attrStart(b, key)
	b = append(b, `{"stringValue":`...)
	b = wirejson.AppendString(b, v)
	return append(b, "}}"...)
}

func appendOptStr(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendStr(b, key, v)
}

func appendInt(b []byte, key string, v int64) []byte {
	b = attrStart(b, key)
	b = append(b, `{"intValue":"`...)
	b = strconv.AppendInt(b, v, 10)
	return append(b, `"}}`...)
}

func appendStrings(b []byte, key string, vs ...string) []byte {
	b = attrStart(b, key)
	b = append(b, `{"arrayValue":{"values":[`...)
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"stringValue":`...)
		b = wirejson.AppendString(b, v)
		b = append(b, '}')
	}
	return append(b, "]}}}"...)
}

func newSpanID() string {
	var id [8]byte
	_, _ = rand.Read(id[:])
	return hex.EncodeToString(id[:])
}
