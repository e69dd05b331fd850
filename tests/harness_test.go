package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/tests/fakeproviders"
)

// hostModel is the host's default model in the e2e suite (DAMPER_MODEL):
// the triage agent runs on it, against the fake Anthropic API.
const hostModel = "anthropic/claude-sonnet-4-5"

const issue = `{"title":"Saving crashes the app","body":"Since 2.3, pressing Save quits the app."}`

var callIDs atomic.Int64

// toolCall is a scripted call with an id of its own, as real models give.
func toolCall(name, input string) fakeproviders.ToolCall {
	return fakeproviders.ToolCall{ID: fmt.Sprintf("toolu_e2e_%d", callIDs.Add(1)), Name: name, Input: input}
}

func finish(input string) fakeproviders.Turn {
	return fakeproviders.Turn{ToolCalls: []fakeproviders.ToolCall{toolCall("finish", input)}}
}

const validTriage = `{"label":"bug","priority":1,"summary":"Saving crashes the app."}`

// turnsSince returns the bodies of the turns the fake answered after the
// first n.
func turnsSince(s *fakeproviders.Server, n int) []string {
	var out []string
	for _, r := range s.Turns()[n:] {
		out = append(out, string(r.Body))
	}
	return out
}

// testHarness runs the triage example (and probe.harness for what triage
// does not do) on the fake model APIs: typed results, retries with the
// problems, give_up, transient errors, parallel tool calls, sessions across
// requests, a module instance lost mid-run, and bad model output.
func testHarness(t *testing.T, c *client, f *modelFakes) {
	fa := f.anthropic
	triage := func(t *testing.T, id string, turns ...fakeproviders.Turn) (reply, []string) {
		t.Helper()
		n := len(fa.Turns())
		fa.Push(turns...)
		r := c.post(t, "triage", id, issue)
		assert.Zero(t, fa.Pending(), "every scripted turn was asked for")
		return r, turnsSince(fa, n)
	}
	ok := func(t *testing.T, r reply) map[string]any {
		t.Helper()
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		return r.json(t)["result"].(map[string]any)
	}
	resultError := func(t *testing.T, r reply) map[string]any {
		t.Helper()
		require.Equal(t, http.StatusInternalServerError, r.status, "%s", r.body)
		e := r.json(t)["error"].(map[string]any)
		require.Equal(t, "result_error", e["type"], "%s", r.body)
		return e["details"].(map[string]any)
	}

	t.Run("valid_first_try", func(t *testing.T) {
		r, bodies := triage(t, "h-valid", finish(validTriage))
		assert.Equal(t, map[string]any{"label": "bug", "priority": 1.0, "summary": "Saving crashes the app."}, ok(t, r))
		require.Len(t, bodies, 1)
		assert.Contains(t, bodies[0], `"name":"finish"`, "the finish tool is offered")
		assert.Contains(t, bodies[0], `"enum":["bug","feature","question"]`, "with the result's schema")
		assert.Contains(t, bodies[0], `"name":"past"`, "with the custom tool")
	})
	t.Run("invalid_then_valid", func(t *testing.T) {
		r, bodies := triage(t, "h-retry", finish(`{"label":"crash","priority":0,"summary":"x","extra":1}`), finish(validTriage))
		ok(t, r)
		require.Len(t, bodies, 2, "one retry")
		for _, want := range []string{`/label: want one of \"bug\", \"feature\", \"question\"`, `/priority: want at least 1, got 0`, `/extra: unknown member`} {
			assert.Contains(t, bodies[1], want, "the model saw the problems")
		}
		assert.Contains(t, bodies[1], `"is_error":true`)
	})
	t.Run("never_complies", func(t *testing.T) {
		bad := finish(`{"label":"nope","priority":1,"summary":"x"}`)
		r, bodies := triage(t, "h-never", bad, bad, bad)
		d := resultError(t, r)
		assert.Equal(t, "invalid", d["reason"])
		assert.EqualValues(t, 3, d["attempts"])
		assert.Equal(t, `{"label":"nope","priority":1,"summary":"x"}`, d["raw"])
		problems := d["problems"].([]any)
		require.Len(t, problems, 1)
		assert.Equal(t, "/label", problems[0].(map[string]any)["pointer"])
		assert.Len(t, bodies, 3, "the default budget: 2 retries")
	})
	t.Run("give_up", func(t *testing.T) {
		r, _ := triage(t, "h-giveup", fakeproviders.Turn{ToolCalls: []fakeproviders.ToolCall{toolCall("give_up", `{"reason":"the body is empty"}`)}})
		d := resultError(t, r)
		assert.Equal(t, "gave_up", d["reason"])
		assert.Equal(t, "the body is empty", d["message"])
	})
	t.Run("429_and_529_then_success", func(t *testing.T) {
		r, bodies := triage(t, "h-transient",
			fakeproviders.Turn{Status: 429, ErrorType: "rate_limit_error", Message: "slow down", RetryAfter: "1"},
			fakeproviders.Turn{Status: 529, ErrorType: "overloaded_error", Message: "overloaded", RetryAfter: "1"},
			finish(validTriage))
		ok(t, r)
		assert.Len(t, bodies, 3)
		assert.Equal(t, bodies[0], bodies[2], "the same request, sent again")
	})
	t.Run("parallel_tool_calls", func(t *testing.T) {
		r, bodies := triage(t, "h-parallel",
			fakeproviders.Turn{ToolCalls: []fakeproviders.ToolCall{{ID: "toolu_p1", Name: "past", Input: `{"query":"crash"}`}, {ID: "toolu_p2", Name: "past", Input: `{"query":"save"}`}}},
			finish(validTriage))
		ok(t, r)
		require.Len(t, bodies, 2)
		var req struct {
			Messages []struct {
				Role    string            `json:"role"`
				Content []json.RawMessage `json:"content"`
			} `json:"messages"`
		}
		require.NoError(t, json.Unmarshal([]byte(bodies[1]), &req))
		last := req.Messages[len(req.Messages)-1]
		assert.Equal(t, "user", last.Role)
		require.Len(t, last.Content, 2, "both results in one message")
		assert.Contains(t, string(last.Content[0]), `"tool_use_id":"toolu_p1"`)
		assert.Contains(t, string(last.Content[1]), `"tool_use_id":"toolu_p2"`)
	})
	t.Run("session_across_requests", func(t *testing.T) {
		_, first := triage(t, "h-session", finish(validTriage))
		n := len(fa.Turns())
		fa.Push(finish(`{"label":"feature","priority":3,"summary":"Dark mode."}`))
		r := c.post(t, "triage", "h-session", `{"title":"Dark mode","body":"Please add one."}`)
		assert.Equal(t, "feature", ok(t, r)["label"])
		second := turnsSince(fa, n)
		require.Len(t, second, 1)
		assert.Contains(t, second[0], "Saving crashes the app", "the second request carries the first conversation")
		assert.Contains(t, second[0], "Dark mode")
		assert.NotContains(t, first[0], "Dark mode")
		assert.Contains(t, second[0], `"content":"accepted"`, "the first finish call was answered")
		// The past tool reads the instance's history: the first triage.
		n = len(fa.Turns())
		fa.Push(fakeproviders.Turn{ToolCalls: []fakeproviders.ToolCall{toolCall("past", `{"query":"saving"}`)}}, finish(validTriage))
		ok(t, c.post(t, "triage", "h-session", issue))
		assert.Contains(t, turnsSince(fa, n)[1], `Saving crashes the app\": bug, priority 1`)
	})
	t.Run("events_of_a_triage_run", func(t *testing.T) {
		// The real harness's events, streamed as SSE: each model turn and
		// tool call in order, correlated by session, turn and call id,
		// with the usage the provider reported summed in run.finish.
		fa.Push(fakeproviders.Turn{Text: "Let me look at similar issues first.", ToolCalls: []fakeproviders.ToolCall{{ID: "toolu_ev_past", Name: "past", Input: `{"query":"saving"}`}},
			Usage: fakeproviders.Usage{Input: 100, Output: 20}},
			fakeproviders.Turn{ToolCalls: []fakeproviders.ToolCall{{ID: "toolu_fin", Name: "finish", Input: validTriage}}, Usage: fakeproviders.Usage{Input: 150, Output: 30}})
		s := c.stream(t, http.MethodPost, "/agents/triage/h-events", strings.NewReader(issue), nil)
		evs := s.all(t)
		require.NotEmpty(t, evs)
		run := evs[0].env.Run
		checkWellFormed(t, evs, "triage", "h-events", run)
		var got []event.Type
		for _, e := range evs {
			if n := len(got); e.env.Type == event.TypeTextDelta && n > 0 && got[n-1] == event.TypeTextDelta {
				continue // the text arrives in pieces
			}
			got = append(got, e.env.Type)
		}
		// Each model call is a fetch the policy allowed.
		assert.Equal(t, []event.Type{event.TypeRunStart,
			event.TypeTurnStart, event.TypePolicyAllow, event.TypeTextDelta, event.TypeTurnFinish, event.TypeToolStart, event.TypeToolFinish,
			event.TypeTurnStart, event.TypePolicyAllow, event.TypeTurnFinish, event.TypeRunFinish}, got)
		var text strings.Builder
		for _, e := range evs[1 : len(evs)-1] {
			if e.env.Type == event.TypePolicyAllow {
				continue // the runtime's, not the session's
			}
			assert.Equal(t, "default", e.env.Session, "%s", e.env.Type)
			assert.NotEmpty(t, e.env.Turn, "%s", e.env.Type)
			p, err := e.env.Payload()
			require.NoError(t, err)
			switch p := p.(type) {
			case event.TextDelta:
				text.WriteString(p.Text)
			case event.ToolStart:
				assert.Equal(t, "past", p.Tool)
				assert.JSONEq(t, `{"query":"saving"}`, string(p.Args))
				assert.Equal(t, "toolu_ev_past", e.env.Call)
			case event.ToolFinish:
				assert.Equal(t, "toolu_ev_past", e.env.Call)
			case event.TurnFinish:
				assert.Equal(t, "anthropic", p.Provider)
				assert.NotZero(t, p.Usage.InputTokens)
			}
		}
		assert.Equal(t, "Let me look at similar issues first.", text.String())
		fin, err := evs[len(evs)-1].env.Payload()
		require.NoError(t, err)
		assert.JSONEq(t, validTriage, string(fin.(event.RunFinish).Result))
		assert.Equal(t, event.Usage{InputTokens: 250, OutputTokens: 50}, fin.(event.RunFinish).Usage)
	})
	t.Run("module_instance_lost_mid_run", func(t *testing.T) {
		n := len(fa.Turns())
		fa.Push(fakeproviders.Turn{Text: "Checking.", ToolCalls: []fakeproviders.ToolCall{{ID: "toolu_crash", Name: "crash", Input: `{}`}}},
			finish(validTriage))
		// The tool's call traps the module instance; the host starts the run
		// again on a new one, and the session goes on from what was stored:
		// the completed turn is not asked again, and its interrupted call is
		// not run again but said so to the model.
		r := c.post(t, "probe.harness", "h-lost", `{"session":"s","prompt":"triage the crash"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		bodies := turnsSince(fa, n)
		require.Len(t, bodies, 2, "one model turn before the trap, one after: none repeated, none lost")
		assert.Contains(t, bodies[1], "triage the crash")
		assert.Contains(t, bodies[1], `"id":"toolu_crash"`, "the completed turn, as it was")
		assert.Contains(t, bodies[1], "this tool call was interrupted: the run running it was lost before it finished")
		// The prompt, the call, its interrupted result, finish.
		assert.EqualValues(t, 4, r.json(t)["result"].(map[string]any)["messages"])
	})
	t.Run("bad_model_output", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			bad  fakeproviders.Turn
			// fed: the model's mistake goes back to it; otherwise the
			// turn is retried as transient.
			fed  string
			more int
		}{
			{name: "non_JSON_SSE_data", bad: fakeproviders.Turn{Text: "x", BadEvent: "{not json"}},
			{name: "truncated_stream", bad: fakeproviders.Turn{Text: "partial", Truncate: true}},
			{name: "HTML_error_page", bad: fakeproviders.Turn{Raw: "<html><body>502 Bad Gateway</body></html>", RawStatus: 502, RawContentType: "text/html"}},
			{name: "200_with_an_error_body", bad: fakeproviders.Turn{Raw: `{"type":"error","error":{"type":"api_error","message":"boom"}}`, RawContentType: "application/json"}},
			{name: "tool_arguments_not_JSON", bad: fakeproviders.Turn{ToolCalls: []fakeproviders.ToolCall{toolCall("past", `{query: crash`)}}, fed: "the arguments are not a JSON object"},
			{name: "unknown_tool", bad: fakeproviders.Turn{ToolCalls: []fakeproviders.ToolCall{toolCall("delete_everything", `{}`)}}, fed: `there is no tool \"delete_everything\"`},
			{name: "finish_with_extra_fields", bad: finish(`{"label":"bug","priority":1,"summary":"s","confidence":0.9}`), fed: "/confidence: unknown member"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := "h-bad-" + strings.ToLower(tc.name)
				r, bodies := triage(t, id, tc.bad, finish(validTriage))
				ok(t, r)
				require.Len(t, bodies, 2)
				if tc.fed != "" {
					assert.Contains(t, bodies[1], tc.fed, "the model's mistake went back to it")
				} else {
					assert.Equal(t, bodies[0], bodies[1], "a broken answer is retried with the same request")
				}
				// The session kept every good turn: the next request carries it.
				n := len(fa.Turns())
				fa.Push(finish(validTriage))
				ok(t, c.post(t, "triage", id, issue))
				next := turnsSince(fa, n)[0]
				assert.Equal(t, 2, strings.Count(next, "Since 2.3, pressing Save quits the app."), "both prompts are in the session")
				if tc.fed != "" {
					assert.Contains(t, next, tc.fed)
				}
			})
		}
	})
	t.Run("openai", func(t *testing.T) {
		fo := f.openai
		n := len(fo.Turns())
		fo.Push(fakeproviders.Turn{ToolCalls: []fakeproviders.ToolCall{toolCall("finish", `{"label":"question","priority":3,"summary":"How?"}`)}})
		r := c.post(t, "probe.harness", "h-openai", fmt.Sprintf(`{"model":"openai/gpt-4.1","session":"s","prompt":%q}`, "How do I save?"))
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, "question", r.json(t)["result"].(map[string]any)["result"].(map[string]any)["label"])
		assert.Len(t, fo.Turns()[n:], 1)
	})
}
