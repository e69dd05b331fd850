//go:build !wasip1

package triage_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/examples/triage"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	_ "github.com/damperdev/damper/runtime/model/modeltest"
	"github.com/damperdev/damper/tests/fakeproviders"
)

var issue = triage.Issue{Title: "Crash when saving", Body: "The app quits when I press save."}

// TestTriageOnTheTestModel runs the agent on test/schema, as make run does
// with no key: it calls the past tool, then finish with a made-up result
// that fits the schema.
func TestTriageOnTheTestModel(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	h.Model = "test/schema" // linked by the test binary: modeltest is imported below
	out, err := h.Run(t.Context(), "triage", "t1", issue)
	require.NoError(t, err)
	var got triage.Triage
	require.NoError(t, json.Unmarshal(out, &got))
	assert.Contains(t, []string{"bug", "feature", "question"}, got.Label)
	assert.GreaterOrEqual(t, got.Priority, 1)
	assert.LessOrEqual(t, got.Priority, 3)
	assert.NotEmpty(t, got.Summary)
}

// TestTriageOnAnthropic runs the agent against the fake Anthropic API: the
// model looks at past issues, gives an invalid result, reads the problems
// and corrects it.
func TestTriageOnAnthropic(t *testing.T) {
	fake := fakeproviders.NewAnthropic(t, "fake-anthropic-key")
	h := agenttest.New()
	defer h.Close()
	h.HTTP, h.Model = fake, "anthropic/claude-sonnet-4-5"
	h.Targets = map[string]string{"anthropic": fake.URL()}
	h.Secrets = map[string]string{"ANTHROPIC_API_KEY": "fake-anthropic-key"}
	fake.Push(
		fakeproviders.Turn{Text: "Let me look.", ToolCalls: []fakeproviders.ToolCall{{ID: "toolu_1", Name: "past", Input: `{"query":"crash save"}`}}},
		fakeproviders.Turn{ToolCalls: []fakeproviders.ToolCall{{ID: "toolu_2", Name: "finish", Input: `{"label":"crash","priority":0,"summary":"x"}`}}},
		fakeproviders.Turn{ToolCalls: []fakeproviders.ToolCall{{ID: "toolu_3", Name: "finish", Input: `{"label":"bug","priority":1,"summary":"Saving crashes the app."}`}}},
	)
	out, err := h.Run(t.Context(), "triage", "t2", issue)
	require.NoError(t, err)
	assert.JSONEq(t, `{"label":"bug","priority":1,"summary":"Saving crashes the app."}`, string(out))

	turns := fake.Turns()
	require.Len(t, turns, 3)
	third := string(turns[2].Body)
	assert.Contains(t, third, `/label: want one of \"bug\", \"feature\", \"question\"`)
	assert.Contains(t, third, `/priority: want at least 1, got 0`)
	assert.Contains(t, string(turns[1].Body), "no similar issue was triaged before")
}
