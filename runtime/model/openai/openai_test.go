//go:build !wasip1

package openai_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/tests/agents"
	"github.com/damperdev/damper/tests/fakeproviders"
)

const fakeKey = "fake-openai-key-0123456789"

func setup(t *testing.T) (*fakeproviders.Server, *agenttest.Host) {
	fake := fakeproviders.NewOpenAI(t, fakeKey)
	h := agenttest.New()
	t.Cleanup(func() { h.Close() })
	h.HTTP = fake
	h.Secrets = map[string]string{"OPENAI_API_KEY": fakeKey}
	h.Targets = map[string]string{"openai": fake.URL()}
	return fake, h
}

func run(t *testing.T, h *agenttest.Host, name string, req model.Request) agents.ModelOut {
	t.Helper()
	raw, err := json.Marshal(req)
	require.NoError(t, err)
	out, err := h.Run(t.Context(), "probe.model", "o", agents.ModelIn{Model: name, Request: raw})
	require.NoError(t, err)
	var mo agents.ModelOut
	require.NoError(t, json.Unmarshal(out, &mo))
	return mo
}

func turn(t *testing.T, h *agenttest.Host, req model.Request) agents.ModelOut {
	t.Helper()
	return run(t, h, "openai/gpt-4.1", req)
}

func hello() model.Request {
	return model.Request{System: "Be brief.", Messages: []model.Message{model.UserText("Hello")}, MaxTokens: 256}
}

func TestTextTurn(t *testing.T) {
	fake, h := setup(t)
	fake.Push(fakeproviders.Turn{Text: "Hi! How can I help?", Model: "gpt-4.1-2025-04-14",
		Usage: fakeproviders.Usage{Input: 20, Output: 6, CacheRead: 1024}})
	out := turn(t, h, hello())
	require.Nil(t, out.Error)
	r := out.Response
	assert.Equal(t, model.Message{Role: model.RoleAssistant, Content: []model.Part{model.Text("Hi! How can I help?")}}, r.Message)
	assert.Equal(t, model.StopEndTurn, r.StopReason)
	assert.Equal(t, "stop", r.RawStopReason)
	// prompt_tokens 1044 of which 1024 cached: priced apart.
	assert.Equal(t, model.Usage{InputTokens: 20, OutputTokens: 6, CacheReadTokens: 1024}, r.Usage)
	assert.Equal(t, "openai", r.Provider)
	assert.Equal(t, "gpt-4.1-2025-04-14", r.Model)
	cost, ok := r.Cost()
	require.True(t, ok)
	assert.InDelta(t, (20*2+6*8+1024*0.5)/1e6, cost, 1e-12)
	var text strings.Builder
	for _, d := range out.Deltas {
		require.Equal(t, "text", d.Type)
		text.WriteString(d.Text)
	}
	assert.Equal(t, "Hi! How can I help?", text.String())

	rq := fake.Turns()[0]
	assert.Equal(t, "Bearer "+fakeKey, rq.Header.Get("Authorization"))
	assert.JSONEq(t, `{"model":"gpt-4.1","max_completion_tokens":256,"stream":true,"stream_options":{"include_usage":true},
		"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}]}`, string(rq.Body))
}

func TestParallelToolCallsRoundTrip(t *testing.T) {
	fake, h := setup(t)
	fake.Push(fakeproviders.Turn{Text: "Checking.", ToolCalls: []fakeproviders.ToolCall{
		{ID: "call_a", Name: "weather", Input: `{"city":"Lisbon"}`},
		{ID: "call_b", Name: "time", Input: `{"tz":"Europe/Oslo"}`},
	}}, fakeproviders.Turn{Text: "Done."})
	tools := []model.ToolSpec{
		{Name: "weather", Description: "Weather.", InputSchema: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)},
		{Name: "time", InputSchema: json.RawMessage(`{"type":"object"}`)},
	}
	req := model.Request{Messages: []model.Message{model.UserText("Weather in Lisbon, time in Oslo?")}, Tools: tools,
		ToolChoice: model.ToolChoice{Mode: model.ToolAny}, Temperature: new(0.0), StopSequences: []string{"END"}}
	out := turn(t, h, req)
	require.Nil(t, out.Error)
	r := out.Response
	assert.Equal(t, model.StopToolUse, r.StopReason)
	assert.Equal(t, []model.Part{
		model.Text("Checking."),
		model.ToolUse("call_a", "weather", json.RawMessage(`{"city":"Lisbon"}`)),
		model.ToolUse("call_b", "time", json.RawMessage(`{"tz":"Europe/Oslo"}`)),
	}, r.Message.Content)
	args := map[int]string{}
	for _, d := range out.Deltas {
		if d.Type == "tool_input" {
			args[d.Index] += d.Text
		}
	}
	assert.Equal(t, map[int]string{1: `{"city":"Lisbon"}`, 2: `{"tz":"Europe/Oslo"}`}, args)

	req.Messages = append(req.Messages,
		model.Message{Role: model.RoleAssistant, Content: append([]model.Part{{Type: model.PartThinking, Text: "dropped"}}, r.Message.Content...)},
		model.Message{Role: model.RoleUser, Content: []model.Part{
			model.ToolResult("call_a", "sunny", false),
			model.ToolResult("call_b", "unknown zone", true),
			model.Text("Also: be quick."),
		}})
	req.ToolChoice = model.ToolChoice{Mode: model.ToolName, Name: "time"}
	out = turn(t, h, req)
	require.Nil(t, out.Error, "the fake accepted the conversation")
	assert.JSONEq(t, `{"model":"gpt-4.1","stream":true,"stream_options":{"include_usage":true},"temperature":0,"stop":["END"],
		"tool_choice":{"type":"function","function":{"name":"time"}},
		"tools":[{"type":"function","function":{"name":"weather","description":"Weather.","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
			{"type":"function","function":{"name":"time","parameters":{"type":"object"}}}],
		"messages":[
			{"role":"user","content":"Weather in Lisbon, time in Oslo?"},
			{"role":"assistant","content":"Checking.","tool_calls":[
				{"id":"call_a","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Lisbon\"}"}},
				{"id":"call_b","type":"function","function":{"name":"time","arguments":"{\"tz\":\"Europe/Oslo\"}"}}]},
			{"role":"tool","tool_call_id":"call_a","content":"sunny"},
			{"role":"tool","tool_call_id":"call_b","content":"Error: unknown zone"},
			{"role":"user","content":"Also: be quick."}]}`, string(fake.Turns()[1].Body))
	assert.Contains(t, string(fake.Turns()[0].Body), `"tool_choice":"required"`)
}

func TestFinishReasons(t *testing.T) {
	for raw, want := range map[string]model.StopReason{
		"stop": model.StopEndTurn, "length": model.StopMaxTokens, "tool_calls": model.StopToolUse,
		"content_filter": model.StopContentFilter, "eos": model.StopOther,
	} {
		t.Run(raw, func(t *testing.T) {
			fake, h := setup(t)
			fake.Push(fakeproviders.Turn{Text: "x", StopReason: raw, CRLF: raw == "length"})
			out := turn(t, h, hello())
			require.Nil(t, out.Error)
			assert.Equal(t, want, out.Response.StopReason)
			assert.Equal(t, raw, out.Response.RawStopReason)
		})
	}
}

func TestErrors(t *testing.T) {
	ok := fakeproviders.Turn{Text: "recovered"}
	tests := []struct {
		name     string
		turns    []fakeproviders.Turn
		kind     string
		status   int
		attempts int
	}{
		{"429 rate limit", []fakeproviders.Turn{{Status: 429, ErrorType: "requests", ErrorCode: "rate_limit_exceeded", Message: "Rate limit reached", RetryAfter: "1"}, ok}, "", 0, 2},
		{"429 quota is not retried", []fakeproviders.Turn{{Status: 429, ErrorType: "insufficient_quota", ErrorCode: "insufficient_quota", Message: "You exceeded your current quota"}}, "auth", 429, 1},
		{"503 then 502", []fakeproviders.Turn{{Status: 503, ErrorType: "server_error", Message: "overloaded"}, {Status: 502, Raw: "<html>bad gateway</html>", RawStatus: 502, RawContentType: "text/html"}, ok}, "", 0, 3},
		{"context length", []fakeproviders.Turn{{Status: 400, ErrorType: "invalid_request_error", ErrorCode: "context_length_exceeded", Message: "This model's maximum context length is 128000 tokens."}}, "context_overflow", 400, 1},
		{"bad request", []fakeproviders.Turn{{Status: 400, ErrorType: "invalid_request_error", Message: "Invalid 'tools[0].function.name'"}}, "invalid_request", 400, 1},
		{"error mid-stream", []fakeproviders.Turn{{Text: "par", StreamError: "server_error", Message: "The server had an error"}, ok}, "", 0, 2},
		{"truncated before finish", []fakeproviders.Turn{{Text: "par", Truncate: true}, ok}, "", 0, 2},
		{"data not JSON", []fakeproviders.Turn{{Text: "x", BadEvent: "<html>"}, ok}, "", 0, 2},
		{"200 with an error body", []fakeproviders.Turn{{Raw: `{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, RawContentType: "application/json"}}, "auth", 200, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, h := setup(t)
			fake.Push(tc.turns...)
			out := turn(t, h, hello())
			assert.Len(t, fake.Turns(), tc.attempts)
			if tc.kind == "" {
				require.Nil(t, out.Error)
				assert.Equal(t, "recovered", out.Response.Message.Text())
				return
			}
			require.NotNil(t, out.Error)
			assert.Equal(t, tc.kind, out.Error.Kind, out.Error.Text)
			assert.Equal(t, tc.status, out.Error.Status)
			assert.Equal(t, "openai", out.Error.Provider)
		})
	}
}

func TestWrongKey(t *testing.T) {
	fake, h := setup(t)
	h.Secrets = map[string]string{"OPENAI_API_KEY": "fake-openai-key-wrong"}
	fake.Push(fakeproviders.Turn{Text: "unused"})
	out := turn(t, h, hello())
	require.NotNil(t, out.Error)
	assert.Equal(t, "auth", out.Error.Kind)
	assert.Equal(t, 401, out.Error.Status)
	assert.Equal(t, 1, fake.Pending())
}

// An OpenAI-compatible service under a path prefix, declared in the
// agent's policy with its own credential: the output cap goes as
// max_tokens.
func TestCompatibleService(t *testing.T) {
	fake := fakeproviders.NewOpenAICompatible(t, "fake-compat-key-1", agents.CompatPrefix)
	h := agenttest.New()
	t.Cleanup(func() { h.Close() })
	h.HTTP = fake
	h.Secrets = map[string]string{"COMPAT_API_KEY": "fake-compat-key-1"}
	h.Targets = map[string]string{"compat": fake.URL()}
	fake.Push(fakeproviders.Turn{Text: "from a compatible server"})

	out := run(t, h, "compat/@cf/meta/llama-3.3-70b-instruct-fp8-fast", hello())
	require.Nil(t, out.Error)
	assert.Equal(t, "from a compatible server", out.Response.Message.Text())
	assert.Equal(t, "compat", out.Response.Provider)
	_, priced := out.Response.Cost()
	assert.False(t, priced, "no price for an unknown service's model")
	rq := fake.Turns()[0]
	assert.Equal(t, agents.CompatPrefix+"/chat/completions", rq.Path)
	assert.Equal(t, "Bearer fake-compat-key-1", rq.Header.Get("Authorization"))
	body := rq.JSON()
	assert.Equal(t, "@cf/meta/llama-3.3-70b-instruct-fp8-fast", body["model"])
	assert.EqualValues(t, 256, body["max_tokens"])
	assert.NotContains(t, body, "max_completion_tokens")
}
