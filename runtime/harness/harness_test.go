//go:build !wasip1

package harness_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/harness"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/model/modeltest"
	"github.com/damperdev/damper/runtime/tool"
	"github.com/damperdev/damper/sandbox"
	_ "github.com/damperdev/damper/sandbox/empty"
)

// Verdict is the typed result the tests ask for.
type Verdict struct {
	Label    string `json:"label" jsonschema:"enum=bug,enum=feature"`
	Priority int    `json:"priority" jsonschema:"minimum=1,maximum=3"`
}

// in is what the test agent ht.run is asked to do.
type in struct {
	Model     string            `json:"model"`
	Session   string            `json:"session,omitempty"`
	Prompt    string            `json:"prompt"`
	Typed     bool              `json:"typed,omitempty"`
	Number    bool              `json:"number,omitempty"` // a typed result that is not an object
	Retries   int               `json:"retries,omitempty"`
	Prompted  bool              `json:"prompted,omitempty"`
	Turns     int               `json:"turns,omitempty"`
	Window    int               `json:"window,omitempty"`
	Keep      int               `json:"keep,omitempty"`
	Compact   string            `json:"compact,omitempty"` // compact the session after the prompt, with these instructions
	Files     map[string]string `json:"files,omitempty"`   // written into the sandbox first
	Skills    bool              `json:"skills,omitempty"`
	Skill     string            `json:"skill,omitempty"` // run this skill (Skill[Verdict]) instead of the prompt
	Subagents bool              `json:"subagents,omitempty"`
	MaxDepth  int               `json:"max_depth,omitempty"`
	NoPrompt  bool              `json:"no_prompt,omitempty"`
	Delete    string            `json:"delete,omitempty"` // delete this session first
	List      bool              `json:"list,omitempty"`   // list the sessions at the end
}

type out struct {
	Text     string              `json:"text,omitempty"`
	Verdict  *Verdict            `json:"verdict,omitempty"`
	Number   *int                `json:"number,omitempty"`
	Messages []model.Message     `json:"messages"`
	Info     harness.SessionInfo `json:"info"`
	Sessions []string            `json:"sessions,omitempty"`
}

// The tools of the test agent.
var (
	runs      atomic.Int64 // calls of the tools that count themselves
	cancelRun func()       // set by a test: called by the crash tools

	addTool = tool.New("add", "Adds two numbers.", func(ctx *agent.Context, in struct {
		A int `json:"a"`
		B int `json:"b"`
	}) (int, error) {
		runs.Add(1)
		return in.A + in.B, nil
	})
	failTool = tool.New("fail", "Fails.", func(*agent.Context, struct{}) (string, error) {
		return "", errors.New("the tool broke")
	})
	panicTool = tool.New("boom", "Panics.", func(*agent.Context, struct{}) (string, error) {
		panic("kaboom")
	})
	floodTool = tool.New("flood", "Prints a lot.", func(*agent.Context, struct{}) (string, error) {
		return strings.Repeat("line of output\n", 3000), nil
	})
	// crash plays the loss of the run while the tool runs: it cancels the
	// run, so the result it returns is never stored.
	crashTool = tool.New("crash", "Charges a card.", func(*agent.Context, struct{}) (string, error) {
		runs.Add(1)
		cancelRun()
		return "charged", nil
	})
	crashIdempotent = tool.New("lookup", "Looks something up.", func(*agent.Context, struct{}) (string, error) {
		if runs.Add(1) == 1 {
			cancelRun()
		}
		return "found it", nil
	}).Idempotent()
)

var skillFS = fstest.MapFS{
	"triager/SKILL.md":     {Data: []byte("---\nname: triager\ndescription: Triages an issue into a verdict.\nmetadata:\n  author: tests\n---\nRead the issue, then call finish.\n")},
	"triager/reference.md": {Data: []byte("Bugs are priority 1.\n")},
}

func init() {
	agent.Register("ht.run", func(ctx *agent.Context, in in) (out, error) {
		sb, err := sandbox.Open(ctx, sandbox.Empty())
		if err != nil {
			return out{}, err
		}
		for name, content := range in.Files {
			if err := sb.WriteFile(ctx, name, []byte(content)); err != nil {
				return out{}, err
			}
		}
		cfg := harness.Config{
			Model: in.Model, System: "You are a test.", Sandbox: sandbox.Empty(),
			Tools:      append(tool.Builtins(sandbox.Empty()), addTool, failTool, panicTool, floodTool, crashTool, crashIdempotent),
			Retries:    in.Retries,
			Prompted:   in.Prompted,
			Budget:     harness.Budget{Turns: in.Turns},
			Compaction: harness.Compaction{Window: in.Window, Keep: in.Keep, Reserve: in.Window / 4},
			MaxDepth:   in.MaxDepth,
		}
		if in.Skills {
			cfg.Skills = []harness.SkillSource{harness.SkillsFS(skillFS), harness.SandboxSkills()}
		}
		if in.Subagents {
			cfg.Subagents = []harness.Subagent{
				{Name: "helper", Description: "Answers questions.", Instructions: "You help."},
				{Name: "judge", Description: "Gives a verdict.", Instructions: "You judge.", Result: Verdict{}},
			}
		}
		h, err := harness.New(ctx, cfg)
		if err != nil {
			return out{}, err
		}
		name := in.Session
		if name == "" {
			name = "main"
		}
		s, err := h.Session(name)
		if err != nil {
			return out{}, err
		}
		var o out
		if in.Delete != "" {
			if err := h.DeleteSession(in.Delete); err != nil {
				return out{}, err
			}
		}
		switch {
		case in.NoPrompt:
		case in.Skill != "":
			v, err := harness.Skill[Verdict](ctx, s, in.Skill, map[string]string{"issue": in.Prompt})
			if err != nil {
				return out{}, err
			}
			o.Verdict = &v
		case in.Number:
			n, err := harness.Prompt[int](ctx, s, in.Prompt)
			if err != nil {
				return out{}, err
			}
			o.Number = &n
		case in.Typed:
			v, err := harness.Prompt[Verdict](ctx, s, in.Prompt)
			if err != nil {
				return out{}, err
			}
			o.Verdict = &v
		default:
			if o.Text, err = s.Prompt(ctx, in.Prompt); err != nil {
				return out{}, err
			}
		}
		if in.Compact != "" {
			if err := s.Compact(ctx, in.Compact); err != nil {
				return out{}, err
			}
		}
		if o.Messages, err = s.Messages(ctx); err != nil {
			return out{}, err
		}
		if o.Info, err = s.Info(ctx); err != nil {
			return out{}, err
		}
		if in.List {
			infos, err := h.Sessions()
			if err != nil {
				return out{}, err
			}
			for _, i := range infos {
				o.Sessions = append(o.Sessions, fmt.Sprintf("%s:%d", i.Name, i.Messages))
			}
		}
		return o, nil
	})
}

// script is a model scripted turn by turn, recording what it was asked.
type script struct {
	name  string
	mu    sync.Mutex
	turns []func(*model.Request) (*model.Response, error)
	reqs  []model.Request
}

var scripts atomic.Int64

// newScript registers a scripted model, "test/script-N".
func newScript(turns ...func(*model.Request) (*model.Response, error)) *script {
	s := &script{name: fmt.Sprintf("script-%d", scripts.Add(1)), turns: turns}
	modeltest.Register(s.name, func(req *model.Request) (*model.Response, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var copied model.Request
		b, _ := json.Marshal(req)
		_ = json.Unmarshal(b, &copied)
		s.reqs = append(s.reqs, copied)
		if len(s.turns) == 0 {
			return nil, &model.Error{Kind: model.KindInvalidRequest, Provider: "test", Message: "the script has no more turns"}
		}
		f := s.turns[0]
		s.turns = s.turns[1:]
		return f(req)
	})
	return s
}

func (s *script) model() string { return "test/" + s.name }

func (s *script) requests() []model.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]model.Request(nil), s.reqs...)
}

func text(t string) func(*model.Request) (*model.Response, error) {
	return func(*model.Request) (*model.Response, error) { return modeltest.Text(t), nil }
}

func call(name string, input any) func(*model.Request) (*model.Response, error) {
	return func(*model.Request) (*model.Response, error) { return modeltest.Call(name, input), nil }
}

// calls is a turn calling several tools at once.
func calls(cs ...[2]any) func(*model.Request) (*model.Response, error) {
	return func(*model.Request) (*model.Response, error) {
		msg := model.Message{Role: model.RoleAssistant}
		for _, c := range cs {
			msg.Content = append(msg.Content, modeltest.Call(c[0].(string), c[1]).Message.Content...)
		}
		return &model.Response{Message: msg}, nil
	}
}

func run(t *testing.T, h *agenttest.Host, id string, in in) (out, error) {
	t.Helper()
	raw, err := h.Run(t.Context(), "ht.run", id, in)
	if err != nil {
		return out{}, err
	}
	var o out
	require.NoError(t, json.Unmarshal(raw, &o))
	return o, nil
}

func mustRun(t *testing.T, h *agenttest.Host, id string, in in) out {
	t.Helper()
	o, err := run(t, h, id, in)
	require.NoError(t, err)
	return o
}

func newHost(t *testing.T) *agenttest.Host {
	h := agenttest.New()
	t.Cleanup(func() { h.Close() })
	return h
}

// lastUser is the last user message of a request.
func lastUser(req model.Request) model.Message {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == model.RoleUser {
			return req.Messages[i]
		}
	}
	return model.Message{}
}

func results(m model.Message) []model.Part {
	var ps []model.Part
	for _, p := range m.Content {
		if p.Type == model.PartToolResult {
			ps = append(ps, p)
		}
	}
	return ps
}

func TestTextPromptAndToolCalls(t *testing.T) {
	h := newHost(t)
	sc := newScript(
		calls([2]any{"add", map[string]int{"a": 2, "b": 3}}, [2]any{"add", map[string]int{"a": 4, "b": 5}}),
		text("5 and 9"),
	)
	var batches [][]agenttest.Effect
	h.OnBatch = func(b []agenttest.Effect) { batches = append(batches, b) }
	o := mustRun(t, h, "text", in{Model: sc.model(), Prompt: "add things"})
	assert.Equal(t, "5 and 9", o.Text)
	reqs := sc.requests()
	require.Len(t, reqs, 2)
	assert.Contains(t, reqs[0].System, "You are a test.")
	rs := results(lastUser(reqs[1]))
	require.Len(t, rs, 2, "both results in the next user message")
	assert.Equal(t, "5", rs[0].Text)
	assert.Equal(t, "9", rs[1].Text)
	assert.Len(t, o.Messages, 4, "prompt, calls, results, answer")
	assert.Equal(t, 2, o.Info.Turns)

	// The two calls ran in parallel: their results were stored in one
	// batch of two sql effects.
	parallel := false
	for _, b := range batches {
		n := 0
		for _, e := range b {
			if e.Type == "sql" && strings.Contains(string(e.Args), "_damper_session_results") && strings.Contains(string(e.Args), `"tool_result`) {
				n++
			}
		}
		parallel = parallel || n == 2
	}
	assert.True(t, parallel, "the two tool results were written by concurrent goroutines")
}

func TestSessionContinuesAcrossRuns(t *testing.T) {
	h := newHost(t)
	sc := newScript(text("Hi Ada."), text("Your name is Ada."))
	mustRun(t, h, "cont", in{Model: sc.model(), Prompt: "I am Ada."})
	agenttest.Restart() // a new module instance: nothing in memory
	o := mustRun(t, h, "cont", in{Model: sc.model(), Prompt: "What is my name?"})
	assert.Equal(t, "Your name is Ada.", o.Text)
	second := sc.requests()[1]
	require.Len(t, second.Messages, 3)
	assert.Equal(t, "I am Ada.", second.Messages[0].Text())
	assert.Equal(t, "Hi Ada.", second.Messages[1].Text())

	// Another session of the same instance starts empty.
	sc2 := newScript(text("Who?"))
	o = mustRun(t, h, "cont", in{Model: sc2.model(), Session: "other", Prompt: "What is my name?"})
	assert.Len(t, sc2.requests()[0].Messages, 1)
	assert.Len(t, o.Messages, 2)
}

func TestTypedResults(t *testing.T) {
	valid := map[string]any{"label": "bug", "priority": 1}
	for _, tc := range []struct {
		name     string
		turns    []func(*model.Request) (*model.Response, error)
		retries  int
		want     *Verdict
		reason   harness.Reason
		problems int
		requests int
	}{
		{name: "valid at once", turns: []func(*model.Request) (*model.Response, error){call("finish", valid)}, want: &Verdict{"bug", 1}, requests: 1},
		{name: "invalid then valid", turns: []func(*model.Request) (*model.Response, error){
			call("finish", map[string]any{"label": "chore", "priority": 9}), call("finish", valid)}, want: &Verdict{"bug", 1}, requests: 2},
		{name: "never complies", turns: []func(*model.Request) (*model.Response, error){
			call("finish", map[string]any{"label": "x"}), call("finish", map[string]any{"label": "y"}), call("finish", map[string]any{"label": "z"})},
			reason: harness.ReasonInvalid, problems: 2, requests: 3},
		{name: "retries count", retries: -1, turns: []func(*model.Request) (*model.Response, error){call("finish", map[string]any{"label": "x", "priority": 1})},
			reason: harness.ReasonInvalid, problems: 1, requests: 1},
		{name: "gives up", turns: []func(*model.Request) (*model.Response, error){call("give_up", map[string]string{"reason": "no idea"})},
			reason: harness.ReasonGaveUp, requests: 1},
		{name: "one follow-up", turns: []func(*model.Request) (*model.Response, error){text("hmm"), call("finish", valid)}, want: &Verdict{"bug", 1}, requests: 2},
		{name: "no result", turns: []func(*model.Request) (*model.Response, error){text("hmm"), text("still thinking")}, reason: harness.ReasonNoResult, requests: 2},
		{name: "extra fields", turns: []func(*model.Request) (*model.Response, error){
			call("finish", map[string]any{"label": "bug", "priority": 1, "why": "because"}), call("finish", valid)}, want: &Verdict{"bug", 1}, requests: 2},
		{name: "arguments not JSON", turns: []func(*model.Request) (*model.Response, error){
			call("finish", json.RawMessage(`"{label: bug"`)), call("finish", valid)}, want: &Verdict{"bug", 1}, requests: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			sc := newScript(tc.turns...)
			o, err := run(t, h, "typed", in{Model: sc.model(), Prompt: "judge", Typed: true, Retries: tc.retries})
			reqs := sc.requests()
			assert.Len(t, reqs, tc.requests)
			if tc.want != nil {
				require.NoError(t, err)
				assert.Equal(t, tc.want, o.Verdict)
				if len(reqs) > 1 {
					feedback := lastUser(reqs[1])
					if rs := results(feedback); len(rs) > 0 {
						assert.True(t, rs[0].IsError, "the model saw its mistake as an error")
						assert.Contains(t, rs[0].Text, "does not fit")
					} else {
						assert.Contains(t, textOf(feedback), "without calling finish")
					}
				}
				return
			}
			var ae *agenttest.Error
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, "result_error", ae.Type)
			assert.Equal(t, 500, ae.Status)
			var details harness.ResultError
			require.NoError(t, json.Unmarshal(ae.Details, &details), "%s", ae.Details)
			assert.Equal(t, tc.reason, details.Reason)
			assert.Len(t, details.Problems, tc.problems)
			assert.NotEmpty(t, details.Raw)
			for _, p := range details.Problems {
				assert.True(t, strings.HasPrefix(p.Pointer, "/") || p.Pointer == "", "a JSON pointer: %q", p.Pointer)
			}
		})
	}
}

func TestTheFeedbackListsEveryProblem(t *testing.T) {
	h := newHost(t)
	sc := newScript(call("finish", map[string]any{"label": "chore", "priority": 0, "x": 1}), call("finish", map[string]any{"label": "bug", "priority": 2}))
	mustRun(t, h, "problems", in{Model: sc.model(), Prompt: "judge", Typed: true})
	fb := results(lastUser(sc.requests()[1]))[0].Text
	for _, want := range []string{`/label: want one of "bug", "feature"`, "/priority: want at least 1, got 0", "/x: unknown member"} {
		assert.Contains(t, fb, want)
	}
	// The finish tool's schema is the result type's.
	var finish *model.ToolSpec
	for i, sp := range sc.requests()[0].Tools {
		if sp.Name == "finish" {
			finish = &sc.requests()[0].Tools[i]
		}
	}
	require.NotNil(t, finish)
	assert.JSONEq(t, `{"type":"object","additionalProperties":false,"required":["label","priority"],
		"properties":{"label":{"type":"string","enum":["bug","feature"]},"priority":{"type":"integer","minimum":1,"maximum":3}}}`, string(finish.InputSchema))
}

func TestANonObjectResultIsWrapped(t *testing.T) {
	h := newHost(t)
	sc := newScript(call("finish", map[string]any{"result": 42}))
	o := mustRun(t, h, "number", in{Model: sc.model(), Prompt: "a number", Number: true})
	assert.Equal(t, 42, *o.Number)
}

func TestBadModelOutputIsFedBack(t *testing.T) {
	h := newHost(t)
	sc := newScript(
		calls([2]any{"nope", map[string]int{}}, [2]any{"add", json.RawMessage(`"{a: 1"`)}, [2]any{"fail", map[string]int{}},
			[2]any{"boom", map[string]int{}}, [2]any{"add", map[string]any{"a": 1, "b": 2, "c": 3}}, [2]any{"flood", map[string]int{}}),
		text("done"),
	)
	o := mustRun(t, h, "bad", in{Model: sc.model(), Prompt: "go"})
	assert.Equal(t, "done", o.Text)
	rs := results(lastUser(sc.requests()[1]))
	require.Len(t, rs, 6)
	for i, want := range []string{`there is no tool "nope"; the tools are:`, "the arguments are not a JSON object", "the tool broke", "the tool failed: kaboom", `/c: unknown member`} {
		assert.True(t, rs[i].IsError, "%d", i)
		assert.Contains(t, rs[i].Text, want)
	}
	assert.False(t, rs[5].IsError)
	assert.Contains(t, rs[5].Text, "[output cut:")
	assert.Contains(t, rs[5].Text, "capped at 2000 lines or 50 KB")
	assert.LessOrEqual(t, strings.Count(rs[5].Text, "\n"), harness.MaxResultLines+1)
}

func TestAFailedTurnLosesNothing(t *testing.T) {
	h := newHost(t)
	sc := newScript(call("add", map[string]int{"a": 1, "b": 1}), func(*model.Request) (*model.Response, error) {
		return nil, &model.Error{Kind: model.KindAuth, Provider: "test", Message: "bad key"}
	})
	_, err := run(t, h, "fails", in{Model: sc.model(), Prompt: "go"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad key")
	// What was stored up to the failure is there for the next prompt.
	sc2 := newScript(text("ok"))
	o := mustRun(t, h, "fails", in{Model: sc2.model(), Prompt: "again"})
	msgs := sc2.requests()[0].Messages
	require.Len(t, msgs, 4, "prompt, the call, its result, the new prompt")
	assert.Equal(t, "2", results(msgs[2])[0].Text)
	assert.Equal(t, "again", msgs[3].Text())
	assert.Len(t, o.Messages, 5)
}

func TestBudgets(t *testing.T) {
	h := newHost(t)
	sc := newScript(call("add", map[string]int{"a": 1, "b": 1}), call("add", map[string]int{"a": 1, "b": 1}), call("add", map[string]int{"a": 1, "b": 1}))
	_, err := run(t, h, "budget", in{Model: sc.model(), Prompt: "loop", Turns: 2})
	var ae *agenttest.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "budget_exceeded", ae.Type)
	assert.JSONEq(t, `{"budget":"turns","limit":2,"used":2}`, string(ae.Details))
	assert.Len(t, sc.requests(), 2)
}

// TestResumeAfterTheRunIsLost plays a host losing a run while a tool runs
// and starting it again with the same run id: the completed model turn is
// not sent again, the interrupted call is reported as interrupted.
func TestResumeAfterTheRunIsLost(t *testing.T) {
	h := newHost(t)
	sc := newScript(call("crash", map[string]any{}), call("finish", map[string]any{"label": "bug", "priority": 2}))
	h.RunID = "r_lost_1"
	ctx, cancel := contextWithCancel(t)
	cancelRun = cancel
	runs.Store(0)
	_, err := h.Run(ctx, "ht.run", "resume", in{Model: sc.model(), Prompt: "charge", Typed: true})
	require.Error(t, err, "the run was lost")
	require.Len(t, sc.requests(), 1)

	agenttest.Restart()
	o := mustRun(t, h, "resume", in{Model: sc.model(), Prompt: "charge", Typed: true})
	assert.Equal(t, &Verdict{"bug", 2}, o.Verdict)
	reqs := sc.requests()
	require.Len(t, reqs, 2, "the completed turn was not asked again")
	rs := results(lastUser(reqs[1]))
	require.Len(t, rs, 1)
	assert.True(t, rs[0].IsError)
	assert.Contains(t, rs[0].Text, "interrupted")
	assert.Equal(t, int64(1), runs.Load(), "the interrupted tool did not run again")

	// The run is done: starting it again gives the stored result, asking nothing.
	agenttest.Restart()
	o = mustRun(t, h, "resume", in{Model: sc.model(), Prompt: "charge", Typed: true})
	assert.Equal(t, &Verdict{"bug", 2}, o.Verdict)
	assert.Len(t, sc.requests(), 2)

	// A handler that asks something else at the same place fails clearly.
	_, err = run(t, h, "resume", in{Model: sc.model(), Prompt: "something else", Typed: true})
	assert.ErrorContains(t, err, "asks something else than when it first ran")
}

func TestResumeRunsAnIdempotentToolAgain(t *testing.T) {
	h := newHost(t)
	sc := newScript(call("lookup", map[string]any{}), text("found"))
	h.RunID = "r_lost_2"
	ctx, cancel := contextWithCancel(t)
	cancelRun = cancel
	runs.Store(0)
	_, err := h.Run(ctx, "ht.run", "resume2", in{Model: sc.model(), Prompt: "look"})
	require.Error(t, err)
	agenttest.Restart()
	o := mustRun(t, h, "resume2", in{Model: sc.model(), Prompt: "look"})
	assert.Equal(t, "found", o.Text)
	require.Len(t, sc.requests(), 2)
	rs := results(lastUser(sc.requests()[1]))
	assert.Equal(t, "found it", rs[0].Text)
	assert.False(t, rs[0].IsError)
	assert.Equal(t, int64(2), runs.Load())
}

func TestANewRunAnswersWhatALostOneLeft(t *testing.T) {
	h := newHost(t)
	sc := newScript(call("crash", map[string]any{}))
	h.RunID = "r_lost_3"
	ctx, cancel := contextWithCancel(t)
	cancelRun = cancel
	_, err := h.Run(ctx, "ht.run", "fresh", in{Model: sc.model(), Prompt: "charge"})
	require.Error(t, err)
	h.RunID = "" // not started again: a new run on the same session
	agenttest.Restart()
	sc2 := newScript(text("ok"))
	mustRun(t, h, "fresh", in{Model: sc2.model(), Prompt: "next"})
	first := sc2.requests()[0]
	last := first.Messages[len(first.Messages)-1]
	require.Len(t, results(last), 1)
	assert.Contains(t, results(last)[0].Text, "the run ended before this tool call finished")
	assert.Equal(t, "next", last.Content[len(last.Content)-1].Text)
}

func TestPromptedMode(t *testing.T) {
	h := newHost(t)
	sc := newScript(
		text("Here:\n```json\n{\"label\":\"chore\",\"priority\":1}\n```"),
		text("Fixed:\n```json\n{\"label\":\"feature\",\"priority\":3}\n```"),
	)
	o := mustRun(t, h, "prompted", in{Model: sc.model(), Prompt: "judge", Typed: true, Prompted: true})
	assert.Equal(t, &Verdict{"feature", 3}, o.Verdict)
	reqs := sc.requests()
	assert.Empty(t, reqs[0].Tools, "no tools for a model without tool use")
	assert.Contains(t, reqs[0].System, "```json")
	assert.Contains(t, textOf(lastUser(reqs[1])), `/label: want one of "bug", "feature"`)

	sc = newScript(text("```give_up\nnot enough information\n```"))
	_, err := run(t, h, "prompted2", in{Model: sc.model(), Prompt: "judge", Typed: true, Prompted: true})
	var re *agenttest.Error
	require.ErrorAs(t, err, &re)
	assert.Contains(t, string(re.Details), `"reason":"gave_up"`)
	assert.Contains(t, string(re.Details), "not enough information")
}

func TestAgentsMDAndSkills(t *testing.T) {
	h := newHost(t)
	sc := newScript(
		calls([2]any{"activate_skill", map[string]string{"name": "triager"}}, [2]any{"read_skill_resource", map[string]string{"skill": "triager", "path": "reference.md"}},
			[2]any{"activate_skill", map[string]string{"name": "local"}}, [2]any{"read_skill_resource", map[string]string{"skill": "triager", "path": "../../etc"}}),
		text("ok"),
	)
	files := map[string]string{
		"AGENTS.md":                           "Always answer in French.",
		".agents/skills/local/SKILL.md":       "---\nname: local\ndescription: A skill of the repository.\n---\nLocal steps.",
		".agents/skills/local/notes.txt":      "notes",
		".agents/skills/broken/SKILL.md":      "---\nname: wrong-name\ndescription: x\n---\n",
		".agents/skills/noformat/SKILL.md":    "no frontmatter",
		".agents/skills/triager/SKILL.md":     "---\nname: triager\ndescription: shadowed by the agent's own\n---\n",
		".agents/skills/missing/readme.md":    "no SKILL.md here",
		".agents/skills/local/sub/script.sh":  "echo hi",
		".agents/skills/local/sub/more/x.txt": "x",
	}
	mustRun(t, h, "skills", in{Model: sc.model(), Prompt: "go", Skills: true, Files: files})
	first := sc.requests()[0]
	assert.Contains(t, first.System, "Always answer in French.")
	assert.Contains(t, first.System, "- triager: Triages an issue into a verdict.")
	assert.Contains(t, first.System, "- local: A skill of the repository.")
	assert.NotContains(t, first.System, "wrong-name")
	assert.NotContains(t, first.System, "shadowed")
	assert.NotContains(t, first.System, "Read the issue", "only the catalogue goes into the system prompt")
	rs := results(lastUser(sc.requests()[1]))
	assert.Contains(t, rs[0].Text, "Read the issue, then call finish.")
	assert.Contains(t, rs[0].Text, "- reference.md")
	assert.Equal(t, "Bugs are priority 1.\n", rs[1].Text)
	assert.Contains(t, rs[2].Text, "Local steps.")
	assert.Contains(t, rs[2].Text, "- notes.txt\n- sub/more/x.txt\n- sub/script.sh")
	assert.True(t, rs[3].IsError)
	assert.Contains(t, rs[3].Text, "inside the skill's directory")
}

func TestSkillCall(t *testing.T) {
	h := newHost(t)
	sc := newScript(call("finish", map[string]any{"label": "bug", "priority": 1}))
	o := mustRun(t, h, "skillcall", in{Model: sc.model(), Prompt: "it crashes", Skills: true, Skill: "triager"})
	assert.Equal(t, &Verdict{"bug", 1}, o.Verdict)
	msg := sc.requests()[0].Messages[0].Text()
	assert.Contains(t, msg, `Run the skill "triager"`)
	assert.Contains(t, msg, "```json\n{\"issue\":\"it crashes\"}\n```")
	assert.Contains(t, msg, "Read the issue, then call finish.")

	_, err := run(t, h, "skillcall", in{Model: sc.model(), Prompt: "x", Skills: true, Skill: "nope"})
	assert.ErrorContains(t, err, `there is no skill "nope"; the skills are: triager`)
}

func TestSkillsFSIsChecked(t *testing.T) {
	bad := fstest.MapFS{"Bad_Name/SKILL.md": {Data: []byte("---\nname: Bad_Name\ndescription: x\n---\n")}}
	_, err := harnessNewWith(t, harness.Config{Model: "test/schema", Skills: []harness.SkillSource{harness.SkillsFS(bad)}})
	assert.ErrorContains(t, err, `skill Bad_Name/SKILL.md: name "Bad_Name": want 1 to 64 of a-z 0-9 and -`)
}

// harnessNewWith runs harness.New in a run and returns its error.
func harnessNewWith(t *testing.T, cfg harness.Config) (struct{}, error) {
	name := fmt.Sprintf("ht.new-%d", scripts.Add(1))
	agent.Register(name, func(ctx *agent.Context, _ struct{}) (struct{}, error) {
		_, err := harness.New(ctx, cfg)
		return struct{}{}, err
	})
	_, err := newHost(t).Run(t.Context(), name, "x", nil)
	return struct{}{}, err
}

func TestSubagents(t *testing.T) {
	h := newHost(t)
	var parent, child *script
	child = newScript(text("the capital is Paris"))
	judge := newScript(call("finish", map[string]any{"label": "feature", "priority": 2}))
	parent = newScript(
		calls([2]any{"task", map[string]string{"subagent": "helper", "prompt": "What is the capital of France?"}},
			[2]any{"task", map[string]string{"subagent": "nobody", "prompt": "x"}}),
		calls([2]any{"task", map[string]string{"subagent": "judge", "prompt": "judge it"}}),
		text("Paris; feature"),
	)
	// The children run on the parent's model unless they name one: route
	// by the system prompt.
	router := newScript()
	modeltest.Register(router.name+"-route", func(req *model.Request) (*model.Response, error) {
		switch {
		case strings.HasPrefix(req.System, "You help."):
			return child.turnFor(req)
		case strings.HasPrefix(req.System, "You judge."):
			return judge.turnFor(req)
		}
		return parent.turnFor(req)
	})
	o := mustRun(t, h, "sub", in{Model: "test/" + router.name + "-route", Prompt: "go", Subagents: true})
	assert.Equal(t, "Paris; feature", o.Text)
	rs := results(lastUser(parent.requests()[1]))
	assert.Equal(t, "the capital is Paris", rs[0].Text)
	assert.Contains(t, rs[1].Text, `there is no subagent "nobody"; the subagents are: helper, judge`)
	rs = results(lastUser(parent.requests()[2]))
	assert.JSONEq(t, `{"label":"feature","priority":2}`, rs[0].Text)
	assert.Equal(t, "What is the capital of France?", child.requests()[0].Messages[0].Text())
	assert.Contains(t, parent.requests()[0].Tools[len(parent.requests()[0].Tools)-1].Description, "- judge: Gives a verdict.")
}

func TestSubagentDepth(t *testing.T) {
	h := newHost(t)
	// Every level asks its helper to go deeper; the one at the cap is refused.
	var mu sync.Mutex
	var seen []string
	sc := newScript()
	modeltest.Register(sc.name+"-deep", func(req *model.Request) (*model.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		last := lastUser(*req)
		if rs := results(last); len(rs) > 0 {
			seen = append(seen, rs[0].Text)
			return modeltest.Text("stopped"), nil
		}
		return modeltest.Call("task", map[string]string{"subagent": "helper", "prompt": "deeper"}), nil
	})
	o := mustRun(t, h, "deep", in{Model: "test/" + sc.name + "-deep", Prompt: "go", Subagents: true, MaxDepth: 2})
	assert.Equal(t, "stopped", o.Text)
	require.NotEmpty(t, seen)
	assert.Contains(t, seen[0], "subagents nest at most 2 deep")
	assert.Equal(t, []string{"subagents nest at most 2 deep: do this task yourself", "stopped", "stopped"}, seen)
}

func (s *script) turnFor(req *model.Request) (*model.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var copied model.Request
	b, _ := json.Marshal(req)
	_ = json.Unmarshal(b, &copied)
	s.reqs = append(s.reqs, copied)
	if len(s.turns) == 0 {
		return nil, &model.Error{Kind: model.KindInvalidRequest, Provider: "test", Message: "no more turns"}
	}
	f := s.turns[0]
	s.turns = s.turns[1:]
	return f(req)
}

func TestCompaction(t *testing.T) {
	h := newHost(t)
	long := strings.Repeat("word ", 400) // ~500 tokens a message
	var mu sync.Mutex
	var summaries []model.Request
	sc := newScript()
	name := sc.name + "-compact"
	modeltest.Register(name, func(req *model.Request) (*model.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(req.System, "You write the summary") {
			summaries = append(summaries, *req)
			return modeltest.Text("They talked at length."), nil
		}
		return modeltest.Text(long), nil
	})
	var o out
	for i := range 4 {
		o = mustRun(t, h, "compact", in{Model: "test/" + name, Prompt: fmt.Sprintf("message %d %s", i, long), Window: 4000, Keep: 1200})
	}
	require.NotEmpty(t, summaries, "the conversation passed the window less the reserve")
	assert.Equal(t, model.ToolNone, summaries[0].ToolChoice.Mode)
	assert.Contains(t, textOf(lastUser(summaries[0])), "Summarise the conversation so far")
	assert.Contains(t, o.Messages[0].Text(), "They talked at length.")
	assert.Equal(t, model.RoleAssistant, o.Messages[1].Role, "the kept part begins with the assistant")
	assert.Less(t, len(o.Messages), 8, "older turns were replaced by the summary")
	assert.Equal(t, long, o.Messages[len(o.Messages)-1].Text())

	// On request, with instructions.
	var asked string
	sc2 := newScript(text("a"), text("b"), func(req *model.Request) (*model.Response, error) {
		asked = textOf(lastUser(*req))
		return modeltest.Text("summary on request"), nil
	})
	mustRun(t, h, "compact2", in{Model: sc2.model(), Prompt: "one"})
	o = mustRun(t, h, "compact2", in{Model: sc2.model(), Prompt: "two", Compact: "keep the numbers", Keep: 1})
	assert.Contains(t, asked, "keep the numbers")
	assert.Contains(t, o.Messages[0].Text(), "summary on request")
}

func TestContextOverflowCompactsAndRetries(t *testing.T) {
	h := newHost(t)
	sc := newScript(text("a"), text("b"),
		func(*model.Request) (*model.Response, error) {
			return nil, &model.Error{Kind: model.KindContextOverflow, Provider: "test", Message: "prompt is too long"}
		},
		text("the summary"), text("after compaction"))
	mustRun(t, h, "overflow", in{Model: sc.model(), Prompt: "one"})
	mustRun(t, h, "overflow", in{Model: sc.model(), Prompt: "two"})
	o := mustRun(t, h, "overflow", in{Model: sc.model(), Prompt: "three", Keep: 1})
	assert.Equal(t, "after compaction", o.Text)
	assert.Contains(t, o.Messages[0].Text(), "the summary")
}

func TestSessionsListAndDelete(t *testing.T) {
	h := newHost(t)
	sc := newScript(text("a"), text("b"))
	mustRun(t, h, "list", in{Model: sc.model(), Prompt: "x", Session: "one"})
	o := mustRun(t, h, "list", in{Model: sc.model(), Prompt: "y", Session: "two", List: true})
	assert.Equal(t, []string{"one:2", "two:2"}, o.Sessions)
	o = mustRun(t, h, "list", in{Model: sc.model(), Session: "two", Delete: "one", List: true, NoPrompt: true})
	assert.Equal(t, []string{"two:2"}, o.Sessions)
	_, err := run(t, h, "list", in{Model: sc.model(), Delete: "../x", NoPrompt: true})
	assert.ErrorContains(t, err, `session name "../x"`)
}

func TestNoModel(t *testing.T) {
	h := newHost(t)
	_, err := run(t, h, "nomodel", in{Prompt: "x"})
	assert.ErrorContains(t, err, "no model: set Config.Model, or DAMPER_MODEL")
	h.Model = "test/schema" // the host's default
	o := mustRun(t, h, "nomodel", in{Prompt: "x", Typed: true})
	assert.NotNil(t, o.Verdict)
}

var _ fs.FS = skillFS

func contextWithCancel(t *testing.T) (context.Context, func()) {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	return ctx, cancel
}

func textOf(m model.Message) string { return m.Text() }

func TestTheNextPromptAnswersFinish(t *testing.T) {
	h := newHost(t)
	sc := newScript(call("finish", map[string]any{"label": "bug", "priority": 1}), text("ok"))
	mustRun(t, h, "next", in{Model: sc.model(), Prompt: "judge", Typed: true})
	mustRun(t, h, "next", in{Model: sc.model(), Prompt: "thanks"})
	last := lastUser(sc.requests()[1])
	require.Len(t, results(last), 1)
	assert.Equal(t, "accepted", results(last)[0].Text)
	assert.False(t, results(last)[0].IsError)
}
