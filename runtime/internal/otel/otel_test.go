package otel

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
)

type export struct {
	ResourceSpans []struct {
		ScopeSpans []struct {
			Spans []struct {
				SpanID       string `json:"spanId"`
				ParentSpanID string `json:"parentSpanId"`
				Name         string `json:"name"`
				Attributes   []struct {
					Key   string          `json:"key"`
					Value json.RawMessage `json:"value"`
				} `json:"attributes"`
				Status *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"status"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

func decode(t *testing.T, body []byte) map[string]map[string]string {
	t.Helper()
	var e export
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	out := map[string]map[string]string{}
	for _, rs := range e.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				attrs := map[string]string{}
				for _, a := range s.Attributes {
					attrs[a.Key] = string(a.Value)
				}
				out[s.Name] = attrs
			}
		}
	}
	return out
}

func TestNoTelemetryNoTracer(t *testing.T) {
	assert.Nil(t, New(&wire.Start{Run: "r"}))
	assert.Nil(t, New(&wire.Start{Run: "r", Telemetry: &wire.Telemetry{}}))
}

// With content on, spans carry the tool's arguments and result and the
// turn's text; a span still open when the run ends is ended, marked
// interrupted; a failed run's span carries its error.
func TestContentAndOpenSpans(t *testing.T) {
	tr := New(&wire.Start{Agent: "a", Run: "r_1", Telemetry: &wire.Telemetry{Endpoint: "http://c/v1/traces", Content: true, Service: "svc"}})
	require.NotNil(t, tr)
	var sent [][]byte
	tr.Send = func(b []byte) { sent = append(sent, b) }
	for _, ev := range []event.Event{
		{Session: "s", Turn: "t1", Data: event.TurnStart{Provider: "p", Model: "m"}},
		{Session: "s", Turn: "t1", Data: event.TextDelta{Text: `say "hi"`}},
		{Session: "s", Turn: "t1", Data: event.TurnFinish{Model: "m", StopReason: "tool_use", ErrorType: "overloaded", Error: "busy"}},
		{Session: "s", Turn: "t1", Call: "c1", Data: event.ToolStart{Tool: "read", Args: json.RawMessage(`{"path":"a.go"}`)}},
		{Session: "s", Turn: "t1", Call: "c1", Data: event.ToolFinish{Tool: "read", Output: "package a"}},
		{Session: "s", Turn: "t2", Call: "c2", Data: event.ToolStart{Tool: "bash"}},
	} {
		tr.Observe(ev)
	}
	assert.Empty(t, sent, "batched")
	body := tr.Finish(&wire.Error{Type: "agent_error", Message: "boom"})
	require.NotNil(t, body)
	spans := decode(t, body)
	assert.JSONEq(t, `{"stringValue":"{\"path\":\"a.go\"}"}`, spans["execute_tool read"]["gen_ai.tool.call.arguments"])
	assert.JSONEq(t, `{"stringValue":"package a"}`, spans["execute_tool read"]["gen_ai.tool.call.result"])
	assert.Contains(t, spans["chat m"]["gen_ai.output.messages"], `say \\\"hi\\\"`)
	assert.JSONEq(t, `{"stringValue":"overloaded"}`, spans["chat m"]["error.type"])
	assert.JSONEq(t, `{"stringValue":"interrupted"}`, spans["execute_tool bash"]["error.type"])
	assert.JSONEq(t, `{"stringValue":"agent_error"}`, spans["invoke_agent a"]["error.type"])
	assert.Contains(t, string(body), `"key":"service.name","value":{"stringValue":"svc"}`)
	assert.Nil(t, tr.Finish(nil), "nothing waits any more")
}

// Many spans go in batches, each a valid export.
func TestBatches(t *testing.T) {
	tr := New(&wire.Start{Agent: "a", Run: "r", Telemetry: &wire.Telemetry{Endpoint: "http://c/v1/traces"}})
	var sent [][]byte
	tr.Send = func(b []byte) { sent = append(sent, b) }
	for i := range 2*batchSpans + 3 {
		call := strings.Repeat("c", i+1)
		tr.Observe(event.Event{Call: call, Data: event.ToolStart{Tool: "t"}})
		tr.Observe(event.Event{Call: call, Data: event.ToolFinish{Tool: "t"}})
	}
	require.Len(t, sent, 2)
	last := tr.Finish(nil)
	n := 0
	for _, b := range append(sent, last) {
		var e export
		require.NoError(t, json.Unmarshal(b, &e))
		n += len(e.ResourceSpans[0].ScopeSpans[0].Spans)
	}
	assert.Equal(t, 2*batchSpans+3+1, n, "every tool span and the run's")
}
