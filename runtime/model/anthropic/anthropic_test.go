//go:build !wasip1

package anthropic_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/tests/agents"
	"github.com/damperdev/damper/tests/fakeproviders"
)

const fakeKey = "fake-anthropic-key-0123456789"

// setup starts the fake API and a test host whose policy preset points at
// it, holding the fake key as ANTHROPIC_API_KEY.
func setup(t *testing.T) (*fakeproviders.Server, *agenttest.Host) {
	fake := fakeproviders.NewAnthropic(t, fakeKey)
	h := agenttest.New()
	t.Cleanup(func() { h.Close() })
	h.HTTP = fake
	h.Secrets = map[string]string{"ANTHROPIC_API_KEY": fakeKey}
	h.Targets = map[string]string{"anthropic": fake.URL()}
	return fake, h
}

// turn runs one turn of anthropic/claude-sonnet-4-5 through the probe agent.
func turn(t *testing.T, h *agenttest.Host, req model.Request, maxRetries int) agents.ModelOut {
	t.Helper()
	raw, err := json.Marshal(req)
	require.NoError(t, err)
	out, err := h.Run(t.Context(), "probe.model", "a", agents.ModelIn{Model: "anthropic/claude-sonnet-4-5", Request: raw, MaxRetries: maxRetries})
	require.NoError(t, err)
	var mo agents.ModelOut
	require.NoError(t, json.Unmarshal(out, &mo))
	return mo
}

func hello() model.Request {
	return model.Request{System: "Be brief.", Messages: []model.Message{model.UserText("Hello")}}
}

func TestTextTurn(t *testing.T) {
	fake, h := setup(t)
	var fetches []string
	h.OnBatch = func(batch []agenttest.Effect) {
		for _, e := range batch {
			if e.Type == "fetch" {
				fetches = append(fetches, string(e.Args))
			}
		}
	}
	fake.Push(fakeproviders.Turn{Text: "Hello there, friend.", Model: "claude-sonnet-4-5-20250929",
		Usage: fakeproviders.Usage{Input: 12, Output: 7, CacheRead: 100, CacheWrite: 30}})

	out := turn(t, h, hello(), 0)
	require.Nil(t, out.Error)
	r := out.Response
	assert.Equal(t, model.Message{Role: model.RoleAssistant, Content: []model.Part{model.Text("Hello there, friend.")}}, r.Message)
	assert.Equal(t, model.StopEndTurn, r.StopReason)
	assert.Equal(t, "end_turn", r.RawStopReason)
	assert.Equal(t, model.Usage{InputTokens: 12, OutputTokens: 7, CacheReadTokens: 100, CacheWriteTokens: 30}, r.Usage)
	assert.Equal(t, "anthropic", r.Provider)
	assert.Equal(t, "claude-sonnet-4-5-20250929", r.Model)
	assert.Regexp(t, `^msg_fake_\d+$`, r.ID)
	cost, ok := r.Cost()
	require.True(t, ok, "the dated snapshot has its model's price")
	assert.InDelta(t, (12*3+7*15+100*0.30+30*3.75)/1e6, cost, 1e-12)

	var text strings.Builder
	for _, d := range out.Deltas {
		require.Equal(t, "text", d.Type)
		assert.Equal(t, 0, d.Index)
		text.WriteString(d.Text)
	}
	assert.Equal(t, "Hello there, friend.", text.String())
	assert.Greater(t, len(out.Deltas), 1, "streamed in several deltas")

	reqs := fake.Turns()
	require.Len(t, reqs, 1)
	rq := reqs[0]
	assert.Equal(t, "2023-06-01", rq.Header.Get("anthropic-version"))
	assert.Equal(t, fakeKey, rq.Header.Get("x-api-key"), "the host injected the key")
	assert.JSONEq(t, `{"model":"claude-sonnet-4-5","max_tokens":8192,"system":"Be brief.",
		"messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}],"stream":true}`, string(rq.Body))
	require.Len(t, fetches, 1)
	assert.NotContains(t, fetches[0], fakeKey, "the module never held the key")
	assert.Contains(t, fetches[0], "${secret:ANTHROPIC_API_KEY}")
}

// A turn with thinking and parallel tool calls, then the conversation sent
// back: the fake checks that every tool_use has its tool_result and that
// the thinking block came back with its signature.
func TestToolUseRoundTrip(t *testing.T) {
	fake, h := setup(t)
	fake.Push(fakeproviders.Turn{
		Thinking: "The user wants the weather in two cities.",
		Text:     "Looking both up.",
		ToolCalls: []fakeproviders.ToolCall{
			{ID: "toolu_1", Name: "weather", Input: `{"city":"Lisbon"}`},
			{ID: "toolu_2", Name: "weather", Input: `{"city": "Oslo", "units": ["c"]}`},
		},
	}, fakeproviders.Turn{Text: "Sunny in Lisbon, snow in Oslo."})

	tools := []model.ToolSpec{{Name: "weather", Description: "Weather of a city.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}}
	req := model.Request{Messages: []model.Message{model.UserText("Weather in Lisbon and Oslo?")}, Tools: tools,
		Temperature: new(0.5), StopSequences: []string{"###"}, MaxTokens: 1000, ToolChoice: model.ToolChoice{Mode: model.ToolAny}}
	out := turn(t, h, req, 0)
	require.Nil(t, out.Error)
	r := out.Response
	assert.Equal(t, model.StopToolUse, r.StopReason)
	require.Len(t, r.Message.Content, 4)
	thinking := r.Message.Content[0]
	assert.Equal(t, model.PartThinking, thinking.Type)
	assert.Equal(t, "The user wants the weather in two cities.", thinking.Text)
	assert.Equal(t, fakeproviders.Signature(thinking.Text), thinking.Signature)
	assert.Equal(t, model.Text("Looking both up."), r.Message.Content[1])
	calls := r.Message.ToolUses()
	require.Len(t, calls, 2)
	assert.Equal(t, "toolu_1", calls[0].ID)
	assert.Equal(t, "weather", calls[0].Name)
	assert.JSONEq(t, `{"city":"Lisbon"}`, string(calls[0].Input))
	assert.JSONEq(t, `{"city":"Oslo","units":["c"]}`, string(calls[1].Input))

	// Deltas, in order: thinking, text, each call's start then its input.
	var kinds []string
	input := map[int]string{}
	for _, d := range out.Deltas {
		if len(kinds) == 0 || kinds[len(kinds)-1] != d.Type {
			kinds = append(kinds, d.Type)
		}
		if d.Type == "tool_use" {
			assert.Equal(t, "weather", d.Name)
		}
		if d.Type == "tool_input" {
			input[d.Index] += d.Text
		}
	}
	assert.Equal(t, []string{"thinking", "text", "tool_use", "tool_input", "tool_use", "tool_input"}, kinds)
	assert.Equal(t, map[int]string{2: `{"city":"Lisbon"}`, 3: `{"city": "Oslo", "units": ["c"]}`}, input)

	req.Messages = append(req.Messages, r.Message, model.Message{Role: model.RoleUser, Content: []model.Part{
		model.ToolResult("toolu_1", "sunny", false),
		model.ToolResult("toolu_2", "no such units: c", true),
	}})
	req.ToolChoice = model.ToolChoice{Mode: model.ToolName, Name: "weather"}
	out = turn(t, h, req, 0)
	require.Nil(t, out.Error, "the fake accepted the conversation")
	assert.Equal(t, "Sunny in Lisbon, snow in Oslo.", out.Response.Message.Text())

	reqs := fake.Turns()
	require.Len(t, reqs, 2)
	assert.JSONEq(t, `{
		"model":"claude-sonnet-4-5","max_tokens":1000,"temperature":0.5,"stop_sequences":["###"],"stream":true,
		"tool_choice":{"type":"tool","name":"weather"},
		"tools":[{"name":"weather","description":"Weather of a city.","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],
		"messages":[
			{"role":"user","content":[{"type":"text","text":"Weather in Lisbon and Oslo?"}]},
			{"role":"assistant","content":[
				{"type":"thinking","thinking":"The user wants the weather in two cities.","signature":"`+thinking.Signature+`"},
				{"type":"text","text":"Looking both up."},
				{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Lisbon"}},
				{"type":"tool_use","id":"toolu_2","name":"weather","input":{"city":"Oslo","units":["c"]}}]},
			{"role":"user","content":[
				{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"},
				{"type":"tool_result","tool_use_id":"toolu_2","content":"no such units: c","is_error":true}]}]}`,
		string(reqs[1].Body))
	assert.Contains(t, string(reqs[0].Body), `"tool_choice":{"type":"any"}`)
}

// A thinking block whose signature changed is refused by the API: the
// fake checks it as Anthropic does, so the round trip above means
// something.
func TestChangedSignatureIsRefused(t *testing.T) {
	fake, h := setup(t)
	fake.Push(fakeproviders.Turn{Text: "unused"})
	req := model.Request{Messages: []model.Message{
		model.UserText("Hi"),
		{Role: model.RoleAssistant, Content: []model.Part{{Type: model.PartThinking, Text: "hmm", Signature: "sig_forged"}, model.Text("Hello")}},
		model.UserText("Again"),
	}}
	out := turn(t, h, req, 0)
	require.NotNil(t, out.Error)
	assert.Equal(t, "invalid_request", out.Error.Kind)
	assert.Contains(t, out.Error.Message, "signature")
	assert.Equal(t, 1, fake.Pending(), "a refused request takes no turn")
}

func TestCacheBreakpointsAndExtra(t *testing.T) {
	fake, h := setup(t)
	fake.Push(fakeproviders.Turn{Text: "ok"})
	req := hello()
	req.Cache = true
	req.Tools = []model.ToolSpec{{Name: "a", InputSchema: json.RawMessage(`{"type":"object"}`)}}
	req.Extra = map[string]json.RawMessage{"thinking": json.RawMessage(`{"type":"enabled","budget_tokens":2048}`), "max_tokens": json.RawMessage(`4096`)}
	out := turn(t, h, req, 0)
	require.Nil(t, out.Error)
	assert.JSONEq(t, `{"model":"claude-sonnet-4-5","max_tokens":4096,"stream":true,
		"thinking":{"type":"enabled","budget_tokens":2048},
		"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
		"tools":[{"name":"a","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}],
		"messages":[{"role":"user","content":[{"type":"text","text":"Hello","cache_control":{"type":"ephemeral"}}]}]}`,
		string(fake.Turns()[0].Body))
}

func TestCRLFFraming(t *testing.T) {
	fake, h := setup(t)
	fake.Push(fakeproviders.Turn{Text: "framed with CRLF", CRLF: true, ToolCalls: []fakeproviders.ToolCall{{ID: "t1", Name: "x", Input: `{"a":1}`}}})
	out := turn(t, h, hello(), 0)
	require.Nil(t, out.Error)
	assert.Equal(t, "framed with CRLF", out.Response.Message.Text())
	assert.JSONEq(t, `{"a":1}`, string(out.Response.Message.ToolUses()[0].Input))
}

// Arguments the model wrote that are not JSON stay in the message as a
// JSON string (the harness answers them with an error), and the message
// can still be sent back.
func TestToolInputThatIsNotJSON(t *testing.T) {
	fake, h := setup(t)
	fake.Push(fakeproviders.Turn{ToolCalls: []fakeproviders.ToolCall{{ID: "t1", Name: "x", Input: `{"a":`}}}, fakeproviders.Turn{Text: "sorry"})
	req := hello()
	req.Tools = []model.ToolSpec{{Name: "x", InputSchema: json.RawMessage(`{"type":"object"}`)}}
	out := turn(t, h, req, 0)
	require.Nil(t, out.Error)
	call := out.Response.Message.ToolUses()[0]
	assert.JSONEq(t, `"{\"a\":"`, string(call.Input))

	req.Messages = append(req.Messages, out.Response.Message, model.Message{Role: model.RoleUser, Content: []model.Part{model.ToolResult("t1", "arguments are not JSON", true)}})
	out = turn(t, h, req, 0)
	require.Nil(t, out.Error)
	assert.Contains(t, string(fake.Turns()[1].Body), `{"type":"tool_use","id":"t1","name":"x","input":{}}`)
}

func TestStopReasons(t *testing.T) {
	for raw, want := range map[string]model.StopReason{
		"end_turn": model.StopEndTurn, "max_tokens": model.StopMaxTokens, "tool_use": model.StopToolUse,
		"pause_turn": model.StopPauseTurn, "refusal": model.StopRefusal, "stop_sequence": model.StopSequence,
		"model_context_window_exceeded": model.StopMaxTokens, "something_new": model.StopOther,
	} {
		t.Run(raw, func(t *testing.T) {
			fake, h := setup(t)
			fake.Push(fakeproviders.Turn{Text: "x", StopReason: raw})
			out := turn(t, h, hello(), 0)
			require.Nil(t, out.Error)
			assert.Equal(t, want, out.Response.StopReason)
			assert.Equal(t, raw, out.Response.RawStopReason)
		})
	}
}

// Failures: each ends as the error kind callers branch on, transient ones
// retried (each wait a sleep of the host) until the scripted success.
func TestErrors(t *testing.T) {
	ok := fakeproviders.Turn{Text: "recovered"}
	tests := []struct {
		name      string
		turns     []fakeproviders.Turn
		kind      string // "" for the final success
		status    int
		typ       string
		attempts  int
		minSlept  time.Duration
		retryWait int64 // the retry delta's wait, ms, when exact
	}{
		{"429 with retry-after", []fakeproviders.Turn{{Status: 429, ErrorType: "rate_limit_error", Message: "slow down", RetryAfter: "7"}, ok},
			"", 0, "", 2, 7 * time.Second, 7000},
		{"529 overloaded", []fakeproviders.Turn{{Status: 529, ErrorType: "overloaded_error", Message: "Overloaded"}, ok},
			"", 0, "", 2, 2 * time.Second, 0},
		{"500 then 504 then ok", []fakeproviders.Turn{{Status: 500, ErrorType: "api_error", Message: "boom"}, {Status: 504, ErrorType: "timeout_error", Message: "late"}, ok},
			"", 0, "", 3, 6 * time.Second, 0},
		{"overloaded mid-stream", []fakeproviders.Turn{{Text: "partial", StreamError: "overloaded_error", Message: "Overloaded"}, ok},
			"", 0, "", 2, 2 * time.Second, 0},
		{"truncated stream", []fakeproviders.Turn{{Text: "partial", Truncate: true}, ok}, "", 0, "", 2, 2 * time.Second, 0},
		{"html 502", []fakeproviders.Turn{{Raw: "<html><body>502 Bad Gateway</body></html>", RawStatus: 502, RawContentType: "text/html"}, ok},
			"", 0, "", 2, 2 * time.Second, 0},
		{"retries exhausted", []fakeproviders.Turn{{Status: 529, ErrorType: "overloaded_error"}, {Status: 529, ErrorType: "overloaded_error"},
			{Status: 529, ErrorType: "overloaded_error"}, {Status: 529, ErrorType: "overloaded_error", Message: "still"}},
			"overloaded", 529, "overloaded_error", 4, 14 * time.Second, 0},
		{"prompt too long", []fakeproviders.Turn{{Status: 400, ErrorType: "invalid_request_error", Message: "prompt is too long: 210000 tokens > 200000 maximum"}},
			"context_overflow", 400, "invalid_request_error", 1, 0, 0},
		{"request too large", []fakeproviders.Turn{{Status: 413, ErrorType: "request_too_large", Message: "Request exceeds the maximum size"}},
			"context_overflow", 413, "request_too_large", 1, 0, 0},
		{"invalid request", []fakeproviders.Turn{{Status: 400, ErrorType: "invalid_request_error", Message: "tools.0.name: bad"}},
			"invalid_request", 400, "invalid_request_error", 1, 0, 0},
		{"unknown model", []fakeproviders.Turn{{Status: 404, ErrorType: "not_found_error", Message: "model: claude-x"}},
			"invalid_request", 404, "not_found_error", 1, 0, 0},
		{"permission", []fakeproviders.Turn{{Status: 403, ErrorType: "permission_error", Message: "no"}}, "auth", 403, "permission_error", 1, 0, 0},
		{"200 with an error body", []fakeproviders.Turn{{Raw: `{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}`, RawContentType: "application/json"}},
			"invalid_request", 200, "invalid_request_error", 1, 0, 0},
		{"200 with an overloaded body", []fakeproviders.Turn{{Raw: `{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`, RawContentType: "application/json"}, ok},
			"", 0, "", 2, 2 * time.Second, 0},
		{"event data not JSON", []fakeproviders.Turn{{Text: "x", BadEvent: "{not json"}, ok}, "", 0, "", 2, 2 * time.Second, 0},
		{"garbage body", []fakeproviders.Turn{{Raw: "\x00\x01garbage", RawContentType: "application/octet-stream"}, ok}, "", 0, "", 2, 2 * time.Second, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, h := setup(t)
			fake.Push(tc.turns...)
			out := turn(t, h, hello(), 0)
			assert.Len(t, fake.Turns(), tc.attempts, "attempts")
			assert.GreaterOrEqual(t, h.Slept(), tc.minSlept)
			retries := 0
			for _, d := range out.Deltas {
				if d.Type == "retry" {
					retries++
					assert.Equal(t, retries+1, d.Attempt)
					assert.NotEmpty(t, d.Err)
					if tc.retryWait != 0 {
						assert.Equal(t, tc.retryWait, d.WaitMs)
					}
				}
			}
			assert.Equal(t, tc.attempts-1, retries, "one retry delta per retry")
			if tc.kind == "" {
				require.Nil(t, out.Error)
				assert.Equal(t, "recovered", out.Response.Message.Text())
				return
			}
			require.NotNil(t, out.Error)
			e := out.Error
			assert.Equal(t, tc.kind, e.Kind, e.Text)
			assert.Equal(t, tc.status, e.Status)
			assert.Equal(t, tc.typ, e.Type)
			assert.Equal(t, "anthropic", e.Provider)
			assert.Regexp(t, `^req_fake_\d+$`, e.RequestID)
		})
	}
}

// The backoff without retry-after grows from 2 s, with at most 25% jitter.
func TestBackoffWaits(t *testing.T) {
	fake, h := setup(t)
	for range 3 {
		fake.Push(fakeproviders.Turn{Status: 500, ErrorType: "api_error"})
	}
	fake.Push(fakeproviders.Turn{Text: "ok"})
	out := turn(t, h, hello(), 0)
	require.Nil(t, out.Error)
	var waits []int64
	for _, d := range out.Deltas {
		if d.Type == "retry" {
			waits = append(waits, d.WaitMs)
		}
	}
	require.Len(t, waits, 3)
	for i, base := range []int64{2000, 4000, 8000} {
		assert.GreaterOrEqual(t, waits[i], base)
		assert.LessOrEqual(t, waits[i], base*5/4)
	}
	assert.Equal(t, time.Duration(waits[0]+waits[1]+waits[2])*time.Millisecond, h.Slept().Truncate(time.Millisecond))
}

func TestNoRetryWhenAsked(t *testing.T) {
	fake, h := setup(t)
	fake.Push(fakeproviders.Turn{Status: 529, ErrorType: "overloaded_error"}, fakeproviders.Turn{Text: "unused"})
	out := turn(t, h, hello(), -1)
	require.NotNil(t, out.Error)
	assert.Equal(t, "overloaded", out.Error.Kind)
	assert.True(t, out.Error.Retryable)
	assert.Len(t, fake.Turns(), 1)
	assert.Zero(t, h.Slept())
}

func TestWrongKeyIsAuthAndNotRetried(t *testing.T) {
	fake, h := setup(t)
	h.Secrets = map[string]string{"ANTHROPIC_API_KEY": "fake-anthropic-key-wrong"}
	fake.Push(fakeproviders.Turn{Text: "unused"})
	out := turn(t, h, hello(), 0)
	require.NotNil(t, out.Error)
	assert.Equal(t, "auth", out.Error.Kind)
	assert.Equal(t, 401, out.Error.Status)
	assert.Equal(t, "authentication_error", out.Error.Type)
	assert.False(t, out.Error.Retryable)
	assert.Len(t, fake.Requests(), 1)
	assert.Equal(t, 1, fake.Pending())
}

// A retry-after beyond the turn's wait budget ends the turn at once with
// the error, RetryAfter set for the caller.
func TestRetryAfterBeyondBudget(t *testing.T) {
	fake, h := setup(t)
	fake.Push(fakeproviders.Turn{Status: 429, ErrorType: "rate_limit_error", RetryAfter: "3600"}, fakeproviders.Turn{Text: "unused"})
	out := turn(t, h, hello(), 0)
	require.NotNil(t, out.Error)
	assert.Equal(t, "rate_limited", out.Error.Kind)
	assert.Equal(t, int64(3600_000), out.Error.RetryAfterMs)
	assert.Zero(t, h.Slept())
}

func TestPolicyDenialIsNotSent(t *testing.T) {
	fake, h := setup(t)
	raw, err := json.Marshal(hello())
	require.NoError(t, err)
	res, err := h.Run(t.Context(), "probe.model.nopolicy", "a", agents.ModelIn{Model: "anthropic/claude-sonnet-4-5", Request: raw})
	require.NoError(t, err)
	var out agents.ModelOut
	require.NoError(t, json.Unmarshal(res, &out))
	require.NotNil(t, out.Error)
	assert.Equal(t, "denied", out.Error.Kind)
	assert.False(t, out.Error.Retryable)
	assert.Empty(t, fake.Requests())
}
