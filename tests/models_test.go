package tests

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/tests/agents"
	"github.com/damperdev/damper/tests/fakeproviders"
)

// modelFakes are the fake model APIs the hosts point the presets at.
type modelFakes struct {
	anthropic, openai, compat, workersAI *fakeproviders.Server
}

const (
	fakeAnthropicKey = "fake-anthropic-key-e2e"
	fakeOpenAIKey    = "fake-openai-key-e2e"
	fakeCompatKey    = "fake-compat-key-e2e"
)

func newModelFakes(t *testing.T) *modelFakes {
	return &modelFakes{
		anthropic: fakeproviders.NewAnthropic(t, fakeAnthropicKey),
		openai:    fakeproviders.NewOpenAI(t, fakeOpenAIKey),
		compat:    fakeproviders.NewOpenAICompatible(t, fakeCompatKey, agents.CompatPrefix),
		workersAI: fakeproviders.NewOpenAICompatible(t, fakeCompatKey, agents.CompatPrefix),
	}
}

// targets and env are what a host needs to reach the fakes with the keys.
func (f *modelFakes) targets() string {
	return "anthropic=" + f.anthropic.URL() + ",openai=" + f.openai.URL() + ",compat=" + f.compat.URL() + ",workers-ai=" + f.workersAI.URL()
}

func (f *modelFakes) secrets() map[string]string {
	return map[string]string{"ANTHROPIC_API_KEY": fakeAnthropicKey, "OPENAI_API_KEY": fakeOpenAIKey, "COMPAT_API_KEY": fakeCompatKey,
		"CLOUDFLARE_API_TOKEN": fakeCompatKey}
}

// turn runs one model turn in the module through probe.model.
func (c *client) turn(t *testing.T, id, name string, req model.Request) agents.ModelOut {
	t.Helper()
	raw, err := json.Marshal(req)
	require.NoError(t, err)
	payload, err := json.Marshal(agents.ModelIn{Model: name, Request: raw})
	require.NoError(t, err)
	r := c.post(t, "probe.model", id, string(payload))
	require.Equal(t, 200, r.status, "%s", r.body)
	var v struct {
		Result agents.ModelOut `json:"result"`
	}
	require.NoError(t, json.Unmarshal(r.body, &v), "%s", r.body)
	return v.Result
}

// testModels runs the providers inside the module on the host: requests
// through the policy and the host's fetch (the key added by the host),
// streamed bodies read chunk by chunk through read effects, retries
// waiting with the host's sleep.
func testModels(t *testing.T, c *client, f *modelFakes) {
	tools := []model.ToolSpec{{Name: "lookup", InputSchema: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`)}}
	long := fmt.Sprintf("%0800d", 7) // a long text: many pieces, many reads

	t.Run("anthropic", func(t *testing.T) {
		f.anthropic.Push(fakeproviders.Turn{Thinking: "think", Text: long, ToolCalls: []fakeproviders.ToolCall{{ID: "toolu_1", Name: "lookup", Input: `{"q":"damper"}`}},
			Usage: fakeproviders.Usage{Input: 10, Output: 20, CacheRead: 30, CacheWrite: 40}})
		req := model.Request{System: "sys", Messages: []model.Message{model.UserText("hi")}, Tools: tools}
		out := c.turn(t, "m-anthropic", "anthropic/claude-sonnet-4-5", req)
		require.Nil(t, out.Error)
		r := out.Response
		assert.Equal(t, model.StopToolUse, r.StopReason)
		assert.Equal(t, long, r.Message.Text())
		assert.Equal(t, model.Usage{InputTokens: 10, OutputTokens: 20, CacheReadTokens: 30, CacheWriteTokens: 40}, r.Usage)
		require.Len(t, r.Message.Content, 3)
		assert.Equal(t, fakeproviders.Signature("think"), r.Message.Content[0].Signature)
		assert.JSONEq(t, `{"q":"damper"}`, string(r.Message.ToolUses()[0].Input))
		assert.Greater(t, len(out.Deltas), 5)

		// The conversation goes back with the signed thinking block and
		// the tool's result; the fake checks both.
		f.anthropic.Push(fakeproviders.Turn{Text: "done"})
		req.Messages = append(req.Messages, r.Message, model.Message{Role: model.RoleUser, Content: []model.Part{model.ToolResult("toolu_1", "found", false)}})
		out = c.turn(t, "m-anthropic", "anthropic/claude-sonnet-4-5", req)
		require.Nil(t, out.Error)
		assert.Equal(t, "done", out.Response.Message.Text())
		last := f.anthropic.Turns()
		assert.Equal(t, fakeAnthropicKey, last[len(last)-1].Header.Get("x-api-key"))
	})

	t.Run("openai_crlf", func(t *testing.T) {
		f.openai.Push(fakeproviders.Turn{Text: long, CRLF: true, ToolCalls: []fakeproviders.ToolCall{
			{ID: "call_1", Name: "lookup", Input: `{"q":"a"}`}, {ID: "call_2", Name: "lookup", Input: `{"q":"b"}`}},
			Usage: fakeproviders.Usage{Input: 5, Output: 6, CacheRead: 7}})
		out := c.turn(t, "m-openai", "openai/gpt-4.1", model.Request{Messages: []model.Message{model.UserText("hi")}, Tools: tools})
		require.Nil(t, out.Error)
		r := out.Response
		assert.Equal(t, model.StopToolUse, r.StopReason)
		assert.Equal(t, long, r.Message.Text())
		require.Len(t, r.Message.ToolUses(), 2)
		assert.JSONEq(t, `{"q":"b"}`, string(r.Message.ToolUses()[1].Input))
		assert.Equal(t, model.Usage{InputTokens: 5, OutputTokens: 6, CacheReadTokens: 7}, r.Usage)
	})

	t.Run("compatible", func(t *testing.T) {
		f.compat.Push(fakeproviders.Turn{Text: "compatible"})
		out := c.turn(t, "m-compat", "compat/some-model", model.Request{Messages: []model.Message{model.UserText("hi")}})
		require.Nil(t, out.Error)
		assert.Equal(t, "compatible", out.Response.Message.Text())
		last := f.compat.Turns()
		assert.Equal(t, "Bearer "+fakeCompatKey, last[len(last)-1].Header.Get("Authorization"))
	})

	// Workers AI is a binding effect: under wrangler dev, which binds no AI,
	// the Worker sends it to the REST API, as the local host does (the AI
	// binding itself: worker/effects.test.mjs).
	t.Run("workers_ai_rest_fallback", func(t *testing.T) {
		f.workersAI.Push(fakeproviders.Turn{Text: "from workers ai"})
		out := c.turn(t, "m-workers-ai", "workers-ai/@cf/meta/llama-3.3-70b-instruct-fp8-fast", model.Request{Messages: []model.Message{model.UserText("hi")}})
		require.Nil(t, out.Error)
		assert.Equal(t, "from workers ai", out.Response.Message.Text())
		last := f.workersAI.Turns()
		assert.Equal(t, "Bearer "+fakeCompatKey, last[len(last)-1].Header.Get("Authorization"))
		assert.Equal(t, "@cf/meta/llama-3.3-70b-instruct-fp8-fast", last[len(last)-1].JSON()["model"])
	})

	t.Run("rate_limited_then_ok", func(t *testing.T) {
		before := len(f.anthropic.Turns())
		f.anthropic.Push(fakeproviders.Turn{Status: 429, ErrorType: "rate_limit_error", Message: "slow down", RetryAfter: "1"}, fakeproviders.Turn{Text: "ok"})
		out := c.turn(t, "m-retry", "anthropic/claude-sonnet-4-5", model.Request{Messages: []model.Message{model.UserText("hi")}})
		require.Nil(t, out.Error)
		assert.Equal(t, "ok", out.Response.Message.Text())
		assert.Len(t, f.anthropic.Turns(), before+2)
		require.NotEmpty(t, out.Deltas)
		assert.Equal(t, "retry", out.Deltas[0].Type)
		assert.Equal(t, int64(1000), out.Deltas[0].WaitMs)
	})

	t.Run("bad_answers_are_clear_errors", func(t *testing.T) {
		for _, tc := range []struct {
			turn fakeproviders.Turn
			kind string
		}{
			{fakeproviders.Turn{Raw: "<html><h1>Bad gateway</h1></html>", RawStatus: 502, RawContentType: "text/html"}, "server"},
			{fakeproviders.Turn{Text: "cut", Truncate: true}, "bad_response"},
			{fakeproviders.Turn{Status: 400, ErrorType: "invalid_request_error", Message: "prompt is too long: 300000 tokens > 200000 maximum"}, "context_overflow"},
		} {
			f.anthropic.Push(tc.turn)
			payload, err := json.Marshal(model.Request{Messages: []model.Message{model.UserText("hi")}})
			require.NoError(t, err)
			in, err := json.Marshal(agents.ModelIn{Model: "anthropic/claude-sonnet-4-5", Request: payload, MaxRetries: -1})
			require.NoError(t, err)
			r := c.post(t, "probe.model", "m-bad", string(in))
			require.Equal(t, 200, r.status, "%s", r.body)
			var v struct {
				Result agents.ModelOut `json:"result"`
			}
			require.NoError(t, json.Unmarshal(r.body, &v))
			require.NotNil(t, v.Result.Error, "%s", r.body)
			assert.Equal(t, tc.kind, v.Result.Error.Kind, v.Result.Error.Text)
		}
	})
}
