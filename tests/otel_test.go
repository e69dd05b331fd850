package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/event"
)

// otlpReceiver is an OTLP/HTTP traces receiver on loopback: it keeps every
// span it is sent, and the raw bodies.
type otlpReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	spans  []otlpSpan
	bodies []string
	bad    []string // what it refused, and why
}

type otlpSpan struct {
	TraceID      string `json:"traceId"`
	SpanID       string `json:"spanId"`
	ParentSpanID string `json:"parentSpanId"`
	Name         string `json:"name"`
	Kind         int    `json:"kind"`
	Start        string `json:"startTimeUnixNano"`
	End          string `json:"endTimeUnixNano"`
	Attributes   []struct {
		Key   string `json:"key"`
		Value struct {
			StringValue *string `json:"stringValue"`
			IntValue    *string `json:"intValue"`
			ArrayValue  *struct {
				Values []struct {
					StringValue string `json:"stringValue"`
				} `json:"values"`
			} `json:"arrayValue"`
		} `json:"value"`
	} `json:"attributes"`
	Status *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"status"`
	service string
}

// attr returns an attribute's value as text (an array as its values
// joined with ","), and whether the span has it.
func (s otlpSpan) attr(key string) (string, bool) {
	for _, a := range s.Attributes {
		if a.Key != key {
			continue
		}
		switch v := a.Value; {
		case v.StringValue != nil:
			return *v.StringValue, true
		case v.IntValue != nil:
			return *v.IntValue, true
		case v.ArrayValue != nil:
			var vs []string
			for _, x := range v.ArrayValue.Values {
				vs = append(vs, x.StringValue)
			}
			return strings.Join(vs, ","), true
		}
	}
	return "", false
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || !strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
			r.bad = append(r.bad, req.Method+" "+req.URL.Path+" "+req.Header.Get("Content-Type"))
			http.Error(w, "want POST /v1/traces with JSON", http.StatusBadRequest)
			return
		}
		var export struct {
			ResourceSpans []struct {
				Resource struct {
					Attributes []struct {
						Key   string `json:"key"`
						Value struct {
							StringValue string `json:"stringValue"`
						} `json:"value"`
					} `json:"attributes"`
				} `json:"resource"`
				ScopeSpans []struct {
					Spans []otlpSpan `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		}
		if err := json.Unmarshal(body, &export); err != nil {
			r.bad = append(r.bad, "not OTLP/JSON: "+err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.bodies = append(r.bodies, string(body))
		for _, rs := range export.ResourceSpans {
			service := ""
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" {
					service = a.Value.StringValue
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					s.service = service
					r.spans = append(r.spans, s)
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *otlpReceiver) all() ([]otlpSpan, []string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]otlpSpan(nil), r.spans...), append([]string(nil), r.bodies...), append([]string(nil), r.bad...)
}

// TestTelemetry exports a harness-shaped run's spans from the module to a
// loopback OTLP/HTTP receiver, on both hosts, and checks their names,
// their parents and their GenAI attributes; message content stays out.
func TestTelemetry(t *testing.T) {
	recv := newOTLPReceiver(t)
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL}
	forEachHost(t, token, env, func(t *testing.T, h host) {
		c := &client{h: h, token: token}
		before, _, _ := recv.all()
		r := c.post(t, "probe.otel", "o", `{}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		run := r.json(t)["run"].(string)
		// The batch went with the run's end: the spans are there when the
		// run has answered.
		all, bodies, bad := recv.all()
		require.Empty(t, bad)
		spans := all[len(before):]
		checkSpans(t, spans, run)
		for _, b := range bodies {
			for _, secret := range []string{"secret plan", "secret prompt", "secret output"} {
				assert.NotContains(t, b, secret, "message content is off by default")
			}
		}
		// The export is a request of the run, decided by its policy.
		evs := c.stream(t, http.MethodGet, "/agents/probe.otel/o/runs/"+run+"/events", nil, nil).all(t)
		var allowed []string
		for _, e := range evs {
			if e.env.Type == event.TypePolicyAllow {
				p, err := e.env.Payload()
				require.NoError(t, err)
				allowed = append(allowed, p.(event.PolicyAllow).Service+" "+p.(event.PolicyAllow).URL)
			}
		}
		assert.Equal(t, []string{"otel " + recv.URL + "/v1/traces"}, allowed)
	})
}

// checkSpans checks the spans of one probe.otel run.
func checkSpans(t *testing.T, spans []otlpSpan, run string) {
	t.Helper()
	byName := map[string][]otlpSpan{}
	byID := map[string]otlpSpan{}
	var names []string
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
		byID[s.SpanID] = s
		names = append(names, s.Name)
		assert.Equal(t, spans[0].TraceID, s.TraceID, "one trace")
		assert.Len(t, s.TraceID, 32)
		assert.Len(t, s.SpanID, 16)
		assert.Equal(t, "damper", s.service)
		assert.LessOrEqual(t, len(s.Start), len(s.End))
		assert.NotEqual(t, "0", s.Start)
	}
	sort.Strings(names)
	require.Equal(t, []string{"chat claude-sonnet-4-5", "chat claude-sonnet-4-5", "chat gpt-5-mini", "execute_tool bash", "execute_tool task",
		"invoke_agent explorer", "invoke_agent probe.otel"}, names)

	root := byName["invoke_agent probe.otel"][0]
	assert.Empty(t, root.ParentSpanID)
	assert.Equal(t, 1, root.Kind)
	want := map[string]string{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "probe.otel", "gen_ai.conversation.id": "main", "damper.run": run}
	for k, v := range want {
		got, ok := root.attr(k)
		assert.True(t, ok, "root has %s", k)
		assert.Equal(t, v, got, k)
	}
	_, hasErr := root.attr("error.type")
	assert.False(t, hasErr)

	for _, chat := range byName["chat claude-sonnet-4-5"] {
		assert.Equal(t, root.SpanID, chat.ParentSpanID, "a chat span is its session's child")
		assert.Equal(t, 3, chat.Kind, "CLIENT")
		for k, v := range map[string]string{
			"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
			"gen_ai.usage.input_tokens": "110", "gen_ai.usage.output_tokens": "20",
			"gen_ai.usage.cache_read.input_tokens": "7", "gen_ai.usage.cache_creation.input_tokens": "3", "gen_ai.conversation.id": "main",
		} {
			got, ok := chat.attr(k)
			assert.True(t, ok, "chat has %s", k)
			assert.Equal(t, v, got, k)
		}
	}
	reasons := []string{}
	for _, chat := range byName["chat claude-sonnet-4-5"] {
		r, _ := chat.attr("gen_ai.response.finish_reasons")
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	assert.Equal(t, []string{"end_turn", "tool_use"}, reasons)
	first := byName["chat claude-sonnet-4-5"]
	model := ""
	for _, s := range first {
		if m, ok := s.attr("gen_ai.response.model"); ok {
			model = m
		}
	}
	assert.Equal(t, "claude-sonnet-4-5-20250929", model)

	task := byName["execute_tool task"][0]
	assert.Equal(t, root.SpanID, task.ParentSpanID)
	for k, v := range map[string]string{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "task", "gen_ai.tool.call.id": "toolu_1"} {
		got, _ := task.attr(k)
		assert.Equal(t, v, got, k)
	}
	_, hasArgs := task.attr("gen_ai.tool.call.arguments")
	assert.False(t, hasArgs, "no content by default")

	sub := byName["invoke_agent explorer"][0]
	assert.Equal(t, task.SpanID, sub.ParentSpanID, "a subagent is the child of the tool call that started it")
	conv, _ := sub.attr("gen_ai.conversation.id")
	assert.Equal(t, "sub1", conv)
	subChat := byName["chat gpt-5-mini"][0]
	assert.Equal(t, sub.SpanID, subChat.ParentSpanID, "the subagent's turn is its child")
	prov, _ := subChat.attr("gen_ai.provider.name")
	assert.Equal(t, "openai", prov)

	bash := byName["execute_tool bash"][0]
	assert.Equal(t, root.SpanID, bash.ParentSpanID)
	et, ok := bash.attr("error.type")
	assert.True(t, ok)
	assert.Equal(t, "tool_error", et)
	require.NotNil(t, bash.Status)
	assert.Equal(t, 2, bash.Status.Code)
	assert.Equal(t, "exit status 1", bash.Status.Message)
	for _, s := range spans {
		_, known := byID[s.ParentSpanID]
		assert.True(t, s.ParentSpanID == "" || known, "%s's parent is a span of the run", s.Name)
	}
}
