//go:build !wasip1

package modeltest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/model/modeltest"
)

var (
	weather = model.ToolSpec{Name: "weather", Description: "The weather in a city.", InputSchema: json.RawMessage(
		`{"type":"object","properties":{"city":{"type":"string","minLength":2},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city"],"additionalProperties":false}`)}
	clock  = model.ToolSpec{Name: "clock", InputSchema: json.RawMessage(`{"type":"object","properties":{"tz":{"enum":["UTC","CET"]}},"required":["tz"]}`)}
	finish = model.ToolSpec{Name: modeltest.FinishTool, InputSchema: json.RawMessage(
		`{"type":"object","properties":{"label":{"enum":["bug","feature","question"]},"priority":{"type":"integer","minimum":1,"maximum":3}},"required":["label","priority"],"additionalProperties":false}`)}
	giveUp = model.ToolSpec{Name: modeltest.GiveUpTool, InputSchema: json.RawMessage(`{"type":"object","properties":{"reason":{"type":"string"}},"required":["reason"]}`)}
)

// answer appends resp's message and a result for each of its calls.
func answer(req *model.Request, resp *model.Response) {
	req.Messages = append(req.Messages, resp.Message)
	var results []model.Part
	for _, c := range resp.Message.ToolUses() {
		results = append(results, model.ToolResult(c.ID, "ok", false))
	}
	if len(results) > 0 {
		req.Messages = append(req.Messages, model.Message{Role: model.RoleUser, Content: results})
	}
}

func TestSchemaModelCallsEachToolThenFinish(t *testing.T) {
	m := modeltest.Schema()
	req := &model.Request{Messages: []model.Message{model.UserText("Triage this.")}, Tools: []model.ToolSpec{weather, finish, giveUp, clock}}

	var deltas []model.Delta
	resp, err := m.Turn(t.Context(), req, func(d model.Delta) { deltas = append(deltas, d) })
	require.NoError(t, err)
	assert.Equal(t, model.StopToolUse, resp.StopReason)
	calls := resp.Message.ToolUses()
	require.Len(t, calls, 2, "weather and clock at once; not finish or give_up yet")
	assert.Equal(t, "weather", calls[0].Name)
	assert.JSONEq(t, `{"city":"test","days":1}`, string(calls[0].Input))
	assert.Equal(t, "clock", calls[1].Name)
	assert.JSONEq(t, `{"tz":"UTC"}`, string(calls[1].Input))
	assert.NotEqual(t, calls[0].ID, calls[1].ID)
	assert.Equal(t, []model.Delta{
		{Type: model.DeltaToolUse, Index: 0, ID: calls[0].ID, Name: "weather"},
		{Type: model.DeltaToolInput, Index: 0, Text: string(calls[0].Input)},
		{Type: model.DeltaToolUse, Index: 1, ID: calls[1].ID, Name: "clock"},
		{Type: model.DeltaToolInput, Index: 1, Text: string(calls[1].Input)},
	}, deltas)
	assert.Positive(t, resp.Usage.InputTokens)
	assert.Positive(t, resp.Usage.OutputTokens)

	answer(req, resp)
	resp, err = m.Turn(t.Context(), req, nil)
	require.NoError(t, err)
	calls = resp.Message.ToolUses()
	require.Len(t, calls, 1)
	assert.Equal(t, modeltest.FinishTool, calls[0].Name)
	assert.JSONEq(t, `{"label":"bug","priority":1}`, string(calls[0].Input))
	assert.NotEqual(t, req.Messages[1].Content[0].ID, calls[0].ID, "ids differ across turns")

	// A rejected finish is called again, as a model would retry.
	req.Messages = append(req.Messages, resp.Message, model.Message{Role: model.RoleUser,
		Content: []model.Part{model.ToolResult(calls[0].ID, "invalid", true)}})
	resp, err = m.Turn(t.Context(), req, nil)
	require.NoError(t, err)
	assert.Equal(t, modeltest.FinishTool, resp.Message.ToolUses()[0].Name)
}

func TestSchemaModelWithoutFinishAnswersText(t *testing.T) {
	m := modeltest.Schema()
	req := &model.Request{Messages: []model.Message{model.UserText("Go.")}, Tools: []model.ToolSpec{weather}}
	resp, err := m.Turn(t.Context(), req, nil)
	require.NoError(t, err)
	answer(req, resp)
	resp, err = m.Turn(t.Context(), req, nil)
	require.NoError(t, err)
	assert.Equal(t, model.StopEndTurn, resp.StopReason)
	assert.Equal(t, "test/schema called: weather", resp.Message.Text())

	resp, err = m.Turn(t.Context(), &model.Request{Messages: []model.Message{model.UserText("Hi")}}, nil)
	require.NoError(t, err)
	assert.Equal(t, "test/schema answered", resp.Message.Text())
}

func TestSchemaModelObeysToolChoice(t *testing.T) {
	m := modeltest.Schema()
	tools := []model.ToolSpec{weather, finish}
	resp, err := m.Turn(t.Context(), &model.Request{Messages: []model.Message{model.UserText("x")}, Tools: tools,
		ToolChoice: model.ToolChoice{Mode: model.ToolName, Name: modeltest.FinishTool}}, nil)
	require.NoError(t, err)
	assert.Equal(t, modeltest.FinishTool, resp.Message.ToolUses()[0].Name)

	resp, err = m.Turn(t.Context(), &model.Request{Messages: []model.Message{model.UserText("x")}, Tools: tools,
		ToolChoice: model.ToolChoice{Mode: model.ToolNone}}, nil)
	require.NoError(t, err)
	assert.Empty(t, resp.Message.ToolUses())

	_, err = m.Turn(t.Context(), &model.Request{Messages: []model.Message{model.UserText("x")}, Tools: tools,
		ToolChoice: model.ToolChoice{Mode: model.ToolName, Name: "nope"}}, nil)
	var me *model.Error
	require.ErrorAs(t, err, &me)
	assert.Equal(t, model.KindInvalidRequest, me.Kind)
}

func TestSchemaModelRefusesAnUnsatisfiableSchema(t *testing.T) {
	bad := model.ToolSpec{Name: "bad", InputSchema: json.RawMessage(`{"type":"integer","minimum":3,"maximum":2}`)}
	_, err := modeltest.Schema().Turn(t.Context(), &model.Request{Messages: []model.Message{model.UserText("x")}, Tools: []model.ToolSpec{bad}}, nil)
	var me *model.Error
	require.ErrorAs(t, err, &me)
	assert.Equal(t, model.KindInvalidRequest, me.Kind)
	assert.Contains(t, me.Error(), "tool bad")
}

var scriptCalls int

func init() {
	// A script that is rate limited once, then calls a tool, then answers.
	modeltest.Register("flaky", func(req *model.Request) (*model.Response, error) {
		scriptCalls++
		switch {
		case scriptCalls == 1:
			return nil, &model.Error{Kind: model.KindRateLimited, Provider: "test", RetryAfter: 3 * time.Second}
		case len(req.Messages) == 1:
			return modeltest.Call("weather", map[string]string{"city": "Oslo"}), nil
		}
		return modeltest.Text("Snow in Oslo."), nil
	})
	agent.Register("modeltest.loop", func(ctx *agent.Context, name string) ([]string, error) {
		m, err := model.Open(name, ctx)
		if err != nil {
			return nil, err
		}
		req := &model.Request{Messages: []model.Message{model.UserText("Weather?")}, Tools: []model.ToolSpec{weather}}
		var log []string
		for range 4 {
			resp, err := m.Turn(ctx, req, func(d model.Delta) {
				if d.Type == model.DeltaRetry {
					log = append(log, fmt.Sprintf("retry after %v", d.Wait))
				}
			})
			if err != nil {
				return nil, err
			}
			for _, c := range resp.Message.ToolUses() {
				log = append(log, fmt.Sprintf("%s %s", c.Name, c.Input))
			}
			if resp.StopReason != model.StopToolUse {
				return append(log, resp.Message.Text()), nil
			}
			answer(req, resp)
		}
		return nil, errors.New("no end")
	})
}

// A FunctionModel registered by name runs in an agent like any model,
// retries included (each wait a sleep of the host).
func TestFunctionModelThroughOpen(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	scriptCalls = 0
	out, err := h.Run(t.Context(), "modeltest.loop", "x", "test/flaky")
	require.NoError(t, err)
	assert.JSONEq(t, `["retry after 3s","weather {\"city\":\"Oslo\"}","Snow in Oslo."]`, string(out))
	assert.Equal(t, 3*time.Second, h.Slept())
	assert.Equal(t, 3, scriptCalls)
}

func TestOpenUnknownTestModel(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	_, err := h.Run(t.Context(), "modeltest.loop", "x", "test/nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `no test model "nope"`)
}

func TestFunctionModelFillsDefaults(t *testing.T) {
	f := modeltest.FunctionModel(func(*model.Request) (*model.Response, error) {
		return modeltest.Call("finish", json.RawMessage(`{"ok":true}`)), nil
	})
	resp, err := f.Turn(t.Context(), &model.Request{}, nil)
	require.NoError(t, err)
	assert.Equal(t, model.StopToolUse, resp.StopReason)
	assert.Equal(t, "test", resp.Provider)
	assert.Equal(t, "function", resp.Model)
	assert.Equal(t, model.RoleAssistant, resp.Message.Role)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = f.Turn(ctx, &model.Request{}, nil)
	var me *model.Error
	require.ErrorAs(t, err, &me)
	assert.Equal(t, model.KindCanceled, me.Kind)
}

func init() {
	agent.Register("example.triage", func(ctx *agent.Context, issue string) (string, error) {
		m, err := model.Open("test/schema", ctx)
		if err != nil {
			return "", err
		}
		req := &model.Request{Messages: []model.Message{model.UserText("Triage: " + issue)}, Tools: []model.ToolSpec{finish}}
		resp, err := m.Turn(ctx, req, nil)
		if err != nil {
			return "", err
		}
		call := resp.Message.ToolUses()[0]
		return call.Name + " " + string(call.Input), nil
	})
}

// The schema model makes an agent's plumbing testable with no key: here
// it calls the result tool finish with a value its schema accepts.
func ExampleSchema() {
	h := agenttest.New()
	defer h.Close()
	out, err := h.Run(context.Background(), "example.triage", "demo", "The app crashes on start")
	fmt.Println(string(out), err)
	// Output: "finish {\"label\":\"bug\",\"priority\":1}" <nil>
}

// A FunctionModel plays the model turn by turn.
func ExampleFunctionModel() {
	m := modeltest.FunctionModel(func(req *model.Request) (*model.Response, error) {
		if len(req.Messages) == 1 {
			return modeltest.Call("weather", map[string]string{"city": "Lisbon"}), nil
		}
		return modeltest.Text("Sunny."), nil
	})
	req := &model.Request{Messages: []model.Message{model.UserText("Weather in Lisbon?")}, Tools: []model.ToolSpec{weather}}
	resp, _ := m.Turn(context.Background(), req, nil)
	fmt.Println(resp.StopReason, resp.Message.ToolUses()[0].Name, string(resp.Message.ToolUses()[0].Input))
	answer(req, resp)
	resp, _ = m.Turn(context.Background(), req, nil)
	fmt.Println(resp.StopReason, resp.Message.Text())
	// Output:
	// tool_use weather {"city":"Lisbon"}
	// end_turn Sunny.
}

func ExampleValue() {
	v, err := modeltest.Value(json.RawMessage(`{"type":"object","properties":{
		"when":{"type":"string","format":"date-time"},
		"tags":{"type":"array","items":{"type":"string","pattern":"^[a-z]{3}$"},"minItems":2,"uniqueItems":true}},
		"required":["when","tags"]}`))
	fmt.Println(string(v), err)
	// Output: {"tags":["aaa","bbb"],"when":"2024-01-02T03:04:05Z"} <nil>
}
