package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/runtime/instance"
	"github.com/damperdev/damper/runtime/internal/sched"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/tool"
)

// loopState is a prompt's counters, stored with each of its writes, so
// that a resumed prompt decides as the lost one would have.
type loopState struct {
	Turns     int         `json:"turns"`
	Invalid   int         `json:"invalid,omitempty"`
	FollowUps int         `json:"follow_ups,omitempty"`
	Usage     model.Usage `json:"usage"`
	Cost      float64     `json:"cost,omitempty"`
	Started   int64       `json:"started"`
	LastStop  string      `json:"last_stop,omitempty"`
	// Raw is the last result the model offered (finish's arguments, or
	// its text), and Problems what was wrong with it.
	Raw      string    `json:"raw,omitempty"`
	Problems []Problem `json:"problems,omitempty"`
}

// Option changes one prompt.
type Option func(*options)

type options struct {
	model  string
	budget *Budget
	// skill is the skill a Skill call runs: its allowed-tools bound the
	// tools offered.
	skill *skillEntry
}

// WithModel makes the prompt use the model name ("provider/model"), over
// the session's, the agent's and the host's.
func WithModel(name string) Option { return func(o *options) { o.model = name } }

// WithBudget bounds the prompt by b instead of Config.Budget.
func WithBudget(b Budget) Option { return func(o *options) { o.budget = &b } }

func runTask(ctx context.Context) *sched.Task { return sched.FromContext(ctx) }

// call is one prompt of a session.
type call struct {
	s       *Session
	h       *Harness
	ctx     context.Context
	run     string
	n       int
	result  *resultSpec // nil for a text prompt
	opts    options
	st      loopState
	model   model.Model
	name    string // the model's name
	tools   map[string]tool.Tool
	specs   []model.ToolSpec
	system  string
	resumed bool
	// turnStart is when the model turn in flight began.
	turnStart time.Time
	// lost are the tool calls a lost run of this prompt started and did
	// not finish: marked started, with no result, when the prompt resumed.
	lost map[string]bool
}

// prompt runs one prompt: text, with a typed result when spec is set.
// It returns the result as JSON: finish's arguments, or the final text as
// a JSON string.
func (s *Session) prompt(ctx context.Context, text string, spec *resultSpec, opts []Option) (json.RawMessage, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	var o options
	for _, f := range opts {
		f(&o)
	}
	h := s.h
	if err := h.context(ctx); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	s.rs.mu.Lock()
	s.rs.prompts[s.name]++
	n := s.rs.prompts[s.name]
	s.rs.mu.Unlock()

	pr, err := s.load(ctx, n)
	if err != nil {
		return nil, err
	}
	c := &call{s: s, h: h, ctx: ctx, run: runID(ctx), n: n, result: spec, opts: o}
	kind := "text"
	if spec != nil {
		kind = spec.digest
	}
	d := digest(kind, text, o.model)
	if pr != nil {
		if pr.digest != d {
			return nil, fmt.Errorf("session %q: run %s started again, but its prompt %d asks something else than when it first ran: a handler must ask the same prompts in the same order to resume", s.name, c.run, n)
		}
		if pr.status != promptRunning {
			var out outcome
			if err := json.Unmarshal(pr.outcome, &out); err != nil {
				return nil, fmt.Errorf("session %q: decode the stored outcome of prompt %d: %w", s.name, n, err)
			}
			return out.Result, out.err()
		}
		c.st, c.resumed = pr.state, true
		c.lost = map[string]bool{}
		for id, part := range s.pending {
			if part == "" {
				c.lost[id] = true
			}
		}
	}
	if err := c.setup(); err != nil {
		return nil, err
	}
	if !c.resumed {
		if err := c.begin(text, d); err != nil {
			return nil, err
		}
	}
	return c.loop()
}

// setup picks the model and the tools.
func (c *call) setup() error {
	name, err := c.h.modelName(c.opts.model, c.s.row.model)
	if err != nil {
		return err
	}
	m, err := model.Open(name, c.h.run)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	c.model, c.name = m, name
	c.tools = map[string]tool.Tool{}
	if !c.h.cfg.Prompted {
		for _, t := range c.h.offered(c.s, c.opts.skill) {
			c.tools[t.Name()] = t
			c.specs = append(c.specs, model.ToolSpec{Name: t.Name(), Description: t.Description(), InputSchema: t.Schema()})
		}
		if c.result != nil {
			c.specs = append(c.specs,
				model.ToolSpec{Name: finishTool, Description: finishDescription, InputSchema: c.result.schema},
				model.ToolSpec{Name: giveUpTool, Description: giveUpDescription, InputSchema: giveUpSchema})
		}
	}
	c.system = c.h.system(c.result, c.h.cfg.Prompted)
	return nil
}

// begin stores the prompt's record and its message, which answers the
// tool calls a lost run left without results.
func (c *call) begin(text, d string) error {
	s := c.s
	c.st = loopState{Started: now()}
	parts := c.danglingResults("the run ended before this tool call finished; it may or may not have taken effect")
	parts = append(parts, model.Text(text))
	msg := model.Message{Role: model.RoleUser, Content: parts}
	seq := s.nextSeq()
	ins, tokens, err := insertMessage(s.name, seq, msg)
	if err != nil {
		return err
	}
	st, err := jsonOf(&c.st)
	if err != nil {
		return err
	}
	return s.exec(c.ctx, []wire.Statement{
		// The records of runs that ended are no longer needed.
		{SQL: `DELETE FROM _damper_prompts WHERE run IN (SELECT run FROM _damper_runs WHERE status != 'running')`},
		{SQL: `INSERT INTO _damper_prompts (run, session, n, digest, status, state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			Args: []any{c.run, s.name, c.n, d, promptRunning, string(st), now()}},
		ins, clearResults(s.name),
	}, stored{seq: seq, msg: msg, tokens: tokens})
}

// danglingResults answers the tool calls of the session's last message,
// when it is the assistant's: with the results stored for them, and
// interrupted for the others.
func (c *call) danglingResults(interrupted string) []model.Part {
	last := c.s.last()
	if last == nil || last.Role != model.RoleAssistant {
		return nil
	}
	var parts []model.Part
	for _, u := range last.ToolUses() {
		if p, ok := c.storedResult(u.ID); ok {
			parts = append(parts, p)
			continue
		}
		parts = append(parts, model.ToolResult(u.ID, interrupted, true))
	}
	return parts
}

func (c *call) storedResult(id string) (model.Part, bool) {
	raw := c.s.pending[id]
	if raw == "" {
		return model.Part{}, false
	}
	var p model.Part
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return model.Part{}, false
	}
	return p, true
}

// loop runs the prompt from where its conversation stands.
func (c *call) loop() (json.RawMessage, error) {
	for {
		last := c.s.last()
		switch {
		case last == nil || last.Role == model.RoleUser || c.st.LastStop == string(model.StopPauseTurn):
			if err := c.turn(); err != nil {
				return nil, err
			}
		case len(last.ToolUses()) > 0:
			out, done, err := c.answer(last)
			if done || err != nil {
				return out, err
			}
		default:
			out, done, err := c.decide(last.Text())
			if done || err != nil {
				return out, err
			}
		}
	}
}

func (c *call) budget() Budget {
	if c.opts.budget != nil {
		return *c.opts.budget
	}
	return c.h.cfg.Budget
}

// checkBudget fails the prompt when its next turn would pass a bound.
func (c *call) checkBudget() error {
	b := c.budget()
	turns := b.Turns
	if turns <= 0 {
		turns = DefaultTurns
	}
	var be *BudgetError
	used := c.st.Usage.PromptTokens() + c.st.Usage.OutputTokens
	switch elapsed := time.Duration(now()-c.st.Started) * time.Millisecond; {
	case c.st.Turns >= turns:
		be = &BudgetError{Budget: "turns", Limit: float64(turns), Used: float64(c.st.Turns)}
	case b.Tokens > 0 && used >= b.Tokens:
		be = &BudgetError{Budget: "tokens", Limit: float64(b.Tokens), Used: float64(used)}
	case b.Cost > 0 && c.st.Cost >= b.Cost:
		be = &BudgetError{Budget: "cost", Limit: b.Cost, Used: c.st.Cost}
	case b.Duration > 0 && elapsed >= b.Duration:
		be = &BudgetError{Budget: "duration", Limit: b.Duration.Seconds(), Used: elapsed.Seconds()}
	}
	if be == nil {
		return nil
	}
	return c.fail(&storedError{Budget: be})
}

// fail stores the prompt's failure, so a run started again gets it too,
// and returns it.
func (c *call) fail(se *storedError) error {
	o, err := jsonOf(outcome{Error: se})
	if err != nil {
		return err
	}
	up, err := updatePrompt(c.run, c.s.name, c.n, promptFailed, &c.st, o)
	if err != nil {
		return err
	}
	stmts := []wire.Statement{up}
	if len(c.s.pending) > 0 {
		stmts = append(stmts, c.pendingStatements()...)
	}
	if err := c.s.exec(c.ctx, stmts); err != nil {
		return err
	}
	return (&outcome{Error: se}).err()
}

// succeed stores the prompt's result.
func (c *call) succeed(result json.RawMessage) (json.RawMessage, error) {
	o, err := jsonOf(outcome{Result: result})
	if err != nil {
		return nil, err
	}
	up, err := updatePrompt(c.run, c.s.name, c.n, promptDone, &c.st, o)
	if err != nil {
		return nil, err
	}
	stmts := append([]wire.Statement{up}, c.pendingStatements()...)
	if err := c.s.exec(c.ctx, stmts); err != nil {
		return nil, err
	}
	return result, nil
}

// pendingStatements store the results in c.s.pending, for the next
// prompt's message to carry.
func (c *call) pendingStatements() []wire.Statement {
	var stmts []wire.Statement
	for id, part := range c.s.pending {
		stmts = append(stmts, putResult(c.s.name, id, part))
	}
	return stmts
}

// turn runs one model turn and stores it, with a start marker for each
// tool call it makes.
func (c *call) turn() error {
	if err := c.checkBudget(); err != nil {
		return err
	}
	if err := c.maybeCompact("window"); err != nil {
		return err
	}
	compacted := false
	for {
		resp, err := c.send()
		var me *model.Error
		if errors.As(err, &me) && me.Kind == model.KindContextOverflow && !compacted && !c.h.cfg.Compaction.Off {
			compacted = true
			if cerr := c.compact("overflow", "", c.keep()/2); cerr != nil {
				return errors.Join(err, cerr)
			}
			continue
		}
		if err != nil {
			return err
		}
		return c.store(resp)
	}
}

// send asks the model for the next message.
func (c *call) send() (*model.Response, error) {
	s := c.s
	req := &model.Request{System: c.system, Tools: c.specs, MaxTokens: c.h.cfg.MaxTokens, Cache: true,
		Messages: make([]model.Message, len(s.msgs))}
	for i, m := range s.msgs {
		req.Messages[i] = m.msg
	}
	turn := turnID(c.st.Turns + 1)
	emit(c.ctx, s.name, turn, "", event.TurnStart{Provider: provider(c.name), Model: c.name})
	c.turnStart = time.Now()
	resp, err := c.model.Turn(c.ctx, req, c.onDelta)
	if err != nil {
		ev := event.TurnFinish{Provider: provider(c.name), Model: c.name, DurationMs: sinceMs(c.turnStart), Error: err.Error()}
		var me *model.Error
		if errors.As(err, &me) {
			ev.ErrorType = string(me.Kind)
		}
		emit(c.ctx, s.name, turn, "", ev)
		return nil, fmt.Errorf("session %q: model %s: %w", s.name, c.name, err)
	}
	return resp, nil
}

func (c *call) onDelta(d model.Delta) {
	turn := turnID(c.st.Turns + 1)
	switch d.Type {
	case model.DeltaText:
		for _, p := range deltaPieces(d.Text) {
			emit(c.ctx, c.s.name, turn, "", event.TextDelta{Text: p})
		}
	case model.DeltaThinking:
		for _, p := range deltaPieces(d.Text) {
			emit(c.ctx, c.s.name, turn, "", event.ThinkingDelta{Text: p})
		}
	case model.DeltaRetry:
		// What the attempt streamed is void: listeners start the message again.
		msg := ""
		if d.Err != nil {
			msg = d.Err.Error()
		}
		emit(c.ctx, c.s.name, turn, "", event.ModelRetry{Attempt: d.Attempt, WaitMs: d.Wait.Milliseconds(), Error: msg})
	}
}

// maxDeltaEvent bounds the text of one delta event, well under
// wire.MaxEventData once JSON escapes it (at most 6 bytes a byte).
const maxDeltaEvent = 32 << 10

// deltaPieces cuts a model's delta into pieces of at most maxDeltaEvent
// bytes, at character boundaries. A provider (or one in between) may send
// a delta of any size in one event; the host refuses an event over
// wire.MaxEventData, and the model's text would be missing from the log.
// Deltas concatenate, so pieces of one mean the same.
func deltaPieces(s string) []string {
	var out []string
	for len(s) > maxDeltaEvent {
		i := maxDeltaEvent
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return append(out, s)
}

// store writes the turn's message, what it used, and a start marker for
// each of its tool calls, in one batch.
func (c *call) store(resp *model.Response) error {
	s := c.s
	msg := resp.Message
	msg.Role = model.RoleAssistant
	if !hasContent(msg) {
		// A provider takes no empty message back: say what it was.
		msg.Content = []model.Part{model.Text("(no answer)")}
	}
	cost, _ := resp.Cost()
	c.st.Turns++
	c.st.Usage.Add(resp.Usage)
	c.st.Cost += cost
	c.st.LastStop = string(resp.StopReason)
	s.row.turns++
	s.row.usage.Add(resp.Usage)
	s.row.cost += cost

	seq := s.nextSeq()
	ins, tokens, err := insertMessage(s.name, seq, msg)
	if err != nil {
		return err
	}
	up, err := updatePrompt(c.run, s.name, c.n, promptRunning, &c.st, nil)
	if err != nil {
		return err
	}
	stmts := []wire.Statement{ins, updateSession(s.name, s.row), up, clearResults(s.name)}
	clear(s.pending)
	for _, u := range msg.ToolUses() {
		stmts = append(stmts, putResult(s.name, u.ID, ""))
		s.pending[u.ID] = ""
	}
	if err := s.exec(c.ctx, stmts, stored{seq: seq, msg: msg, tokens: tokens}); err != nil {
		return err
	}
	emit(c.ctx, s.name, turnID(c.st.Turns), "", event.TurnFinish{Provider: provider(c.name), Model: c.name, ResponseModel: resp.Model,
		StopReason: string(resp.StopReason), Usage: usageOf(resp.Usage), Cost: cost, DurationMs: sinceMs(c.turnStart)})
	return nil
}

func hasContent(m model.Message) bool {
	for _, p := range m.Content {
		if p.Type != model.PartText || p.Text != "" {
			return true
		}
	}
	return false
}

// answer runs the tool calls of the last message, in parallel, and ends
// the prompt when one of them is a valid finish (or a give_up). Calls that
// have a stored result keep it; a call marked started but without a
// result was interrupted by the loss of its run: an idempotent tool runs
// again, any other is answered as interrupted.
func (c *call) answer(last *model.Message) (json.RawMessage, bool, error) {
	uses := last.ToolUses()
	results := make([]model.Part, len(uses))
	done := make([]bool, len(uses))
	g := c.h.run.Group()
	for i, u := range uses {
		if p, ok := c.storedResult(u.ID); ok {
			results[i], done[i] = p, true
			continue
		}
		if u.Name == finishTool || u.Name == giveUpTool {
			continue // decided below, once the other calls ended
		}
		t, known := c.tools[u.Name]
		// A subagent's task resumes its child session, so it runs again.
		if c.lost[u.ID] && !(known && t.IsIdempotent()) && u.Name != taskTool {
			results[i], done[i] = model.ToolResult(u.ID, "this tool call was interrupted: the run running it was lost before it finished, so it may or may not have taken effect; check before calling it again", true), true
			continue
		}
		g.Go(func() error {
			results[i] = c.callTool(u, t, known)
			done[i] = true
			part, err := jsonOf(results[i])
			if err != nil {
				return err
			}
			// Not s.exec: goroutines of the call must not touch the
			// session's messages.
			_, err = instance.Exec(c.ctx, putResult(c.s.name, u.ID, string(part)))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, false, fmt.Errorf("session %q: store a tool result: %w", c.s.name, err)
	}
	for i := range uses {
		if done[i] {
			if b, err := jsonOf(results[i]); err == nil {
				c.s.pending[uses[i].ID] = string(b)
			}
		}
	}

	// The result tools, in the order the model called them: the first
	// valid finish or give_up ends the prompt.
	var outcomeRaw json.RawMessage
	var gaveUp *ResultError
	var problems []Problem
	for i, u := range uses {
		if done[i] || (u.Name != finishTool && u.Name != giveUpTool) {
			continue
		}
		switch {
		case outcomeRaw != nil || gaveUp != nil:
			results[i] = model.ToolResult(u.ID, "ignored: the result was already given", false)
		case c.result == nil:
			// Neither finish nor give_up is offered in a text prompt: a
			// call of one is refused, never obeyed (give_up would end
			// the prompt with an error the agent did not offer).
			results[i] = model.ToolResult(u.ID, "there is no result to give in this prompt: answer in text", true)
		case u.Name == giveUpTool:
			reason := giveUpReason(u.Input)
			gaveUp = &ResultError{Reason: ReasonGaveUp, Message: reason, Raw: string(u.Input), Attempts: c.st.Invalid + 1}
			results[i] = model.ToolResult(u.ID, "understood: the prompt ends without a result", false)
		default:
			raw, ps := c.result.check(u.Input)
			c.st.Raw = string(u.Input)
			if len(ps) == 0 {
				outcomeRaw = raw
				results[i] = model.ToolResult(u.ID, "accepted", false)
			} else {
				problems = ps
				results[i] = model.ToolResult(u.ID, problemText(ps), true)
			}
		}
		done[i] = true
		if b, err := jsonOf(results[i]); err == nil {
			c.s.pending[u.ID] = string(b)
		}
	}
	switch {
	case outcomeRaw != nil:
		c.st.Problems = nil
		out, err := c.succeed(outcomeRaw)
		return out, true, err
	case gaveUp != nil:
		gaveUp.Problems = c.st.Problems
		return nil, true, c.fail(&storedError{Result: gaveUp})
	case problems != nil:
		c.st.Invalid++
		c.st.Problems = problems
		emit(c.ctx, c.s.name, turnID(c.st.Turns), "", event.ResultRetry{Attempt: c.st.Invalid, Problems: problemStrings(problems)})
		if c.st.Invalid > c.h.retries() {
			return nil, true, c.fail(&storedError{Result: &ResultError{Reason: ReasonInvalid, Raw: c.st.Raw, Problems: problems, Attempts: c.st.Invalid,
				Message: fmt.Sprintf("the model's result was invalid %d times", c.st.Invalid)}})
		}
	}
	return nil, false, c.writeUser(results, "")
}

// callTool runs one tool call and returns its result part, capped.
func (c *call) callTool(u model.Part, t tool.Tool, known bool) model.Part {
	s := c.s
	turn, began := turnID(c.st.Turns), time.Now()
	emit(c.ctx, s.name, turn, u.ID, event.ToolStart{Tool: u.Name, Args: u.Input})
	if !known {
		names := make([]string, 0, len(c.tools))
		for _, sp := range c.specs {
			names = append(names, sp.Name)
		}
		msg := fmt.Sprintf("there is no tool %q; the tools are: %s", u.Name, strings.Join(names, ", "))
		emit(c.ctx, s.name, turn, u.ID, event.ToolError{Tool: u.Name, DurationMs: sinceMs(began), Message: msg})
		return model.ToolResult(u.ID, msg, true)
	}
	out, err := c.runTool(t, u)
	if err != nil {
		msg := err.Error()
		emit(c.ctx, s.name, turn, u.ID, event.ToolError{Tool: u.Name, DurationMs: sinceMs(began), Message: msg})
		text, _ := capResult(msg)
		return model.ToolResult(u.ID, text, true)
	}
	text, cut := capResult(out)
	emit(c.ctx, s.name, turn, u.ID, event.ToolFinish{Tool: u.Name, DurationMs: sinceMs(began), Output: text, Truncated: cut})
	if text == "" {
		text = "(no output)"
	}
	return model.ToolResult(u.ID, text, false)
}

// runTool calls t, turning a panic into its error: a tool's failure goes
// to the model, never ends the run.
func (c *call) runTool(t tool.Tool, u model.Part) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the tool failed: %v", r)
		}
	}()
	if inner, ok := c.h.internal(c, t.Name()); ok {
		return inner(u)
	}
	return t.Call(c.h.run, u.Input)
}

// capResult cuts a tool's output to MaxResultLines lines and
// MaxResultBytes bytes, saying so at the end.
func capResult(s string) (string, bool) {
	lines := strings.Count(s, "\n")
	if len(s) <= MaxResultBytes && lines <= MaxResultLines {
		return s, false
	}
	cut := s
	if lines > MaxResultLines {
		i, n := 0, 0
		for ; n < MaxResultLines; n++ {
			i += strings.IndexByte(cut[i:], '\n') + 1
		}
		cut = cut[:i]
	}
	if len(cut) > MaxResultBytes {
		cut = cut[:MaxResultBytes]
		for len(cut) > 0 && cut[len(cut)-1]&0xC0 == 0x80 { // not in the middle of a character
			cut = cut[:len(cut)-1]
		}
		if len(cut) > 0 && cut[len(cut)-1] >= 0xC0 {
			cut = cut[:len(cut)-1]
		}
	}
	return fmt.Sprintf("%s\n[output cut: %d of %d bytes, %d of %d lines shown; a result is capped at %d lines or %d KB: narrow the command or read a range]",
		cut, len(cut), len(s), strings.Count(cut, "\n"), lines+1, MaxResultLines, MaxResultBytes>>10), true
}

// decide ends a turn that called no tool: a text prompt has its answer, a
// typed one gets one follow-up (or, prompted, its fenced result checked).
func (c *call) decide(text string) (json.RawMessage, bool, error) {
	if c.result == nil {
		raw, err := jsonOf(text)
		if err != nil {
			return nil, true, err
		}
		out, err := c.succeed(raw)
		return out, true, err
	}
	if c.h.cfg.Prompted {
		return c.decidePrompted(text)
	}
	c.st.Raw = text
	if c.st.LastStop == string(model.StopRefusal) || c.st.FollowUps >= 1 {
		return nil, true, c.fail(&storedError{Result: &ResultError{Reason: ReasonNoResult, Raw: text, Problems: c.st.Problems, Attempts: c.st.Invalid + 1,
			Message: "the model ended its turn without calling finish or give_up, after a reminder"}})
	}
	c.st.FollowUps++
	return nil, false, c.writeUser(nil, followUp)
}

// decidePrompted checks the fenced result of a prompted-mode answer.
func (c *call) decidePrompted(text string) (json.RawMessage, bool, error) {
	c.st.Raw = text
	block, lang, found := lastFence(text)
	switch {
	case found && lang == giveUpTool:
		return nil, true, c.fail(&storedError{Result: &ResultError{Reason: ReasonGaveUp, Message: strings.TrimSpace(block), Raw: text, Attempts: c.st.Invalid + 1, Problems: c.st.Problems}})
	case !found:
		if c.st.FollowUps >= 1 || c.st.LastStop == string(model.StopRefusal) {
			return nil, true, c.fail(&storedError{Result: &ResultError{Reason: ReasonNoResult, Raw: text, Problems: c.st.Problems, Attempts: c.st.Invalid + 1,
				Message: "the model's answer held no fenced JSON result, after a reminder"}})
		}
		c.st.FollowUps++
		return nil, false, c.writeUser(nil, promptedFollowUp)
	}
	raw, ps := c.result.check(json.RawMessage(block))
	if len(ps) == 0 {
		c.st.Problems = nil
		out, err := c.succeed(raw)
		return out, true, err
	}
	c.st.Invalid++
	c.st.Problems = ps
	emit(c.ctx, c.s.name, turnID(c.st.Turns), "", event.ResultRetry{Attempt: c.st.Invalid, Problems: problemStrings(ps)})
	if c.st.Invalid > c.h.retries() {
		return nil, true, c.fail(&storedError{Result: &ResultError{Reason: ReasonInvalid, Raw: block, Problems: ps, Attempts: c.st.Invalid,
			Message: fmt.Sprintf("the model's result was invalid %d times", c.st.Invalid)}})
	}
	return nil, false, c.writeUser(nil, problemText(ps)+"\nAnswer again with the whole corrected result in one fenced ```json block.")
}

// writeUser stores the user message answering the last turn: its tool
// results in order, then text.
func (c *call) writeUser(results []model.Part, text string) error {
	s := c.s
	parts := results
	if text != "" {
		parts = append(parts, model.Text(text))
	}
	msg := model.Message{Role: model.RoleUser, Content: parts}
	seq := s.nextSeq()
	ins, tokens, err := insertMessage(s.name, seq, msg)
	if err != nil {
		return err
	}
	c.st.LastStop = ""
	up, err := updatePrompt(c.run, s.name, c.n, promptRunning, &c.st, nil)
	if err != nil {
		return err
	}
	clear(s.pending)
	return s.exec(c.ctx, []wire.Statement{ins, up, clearResults(s.name)}, stored{seq: seq, msg: msg, tokens: tokens})
}

// lastFence finds the last fenced block of text: its content and its
// info string.
func lastFence(text string) (string, string, bool) {
	end := strings.LastIndex(text, "```")
	if end < 0 {
		return "", "", false
	}
	start := strings.LastIndex(text[:end], "```")
	if start < 0 {
		return "", "", false
	}
	body := text[start+3 : end]
	lang, rest, ok := strings.Cut(body, "\n")
	if !ok {
		return "", "", false
	}
	lang = strings.TrimSpace(lang)
	if lang != "" && lang != "json" && lang != giveUpTool {
		return "", "", false
	}
	return strings.TrimSpace(rest), lang, true
}

func problemText(ps []Problem) string {
	var b bytes.Buffer
	b.WriteString("The result does not fit its schema:\n")
	for _, p := range ps {
		b.WriteString("- ")
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	b.WriteString("Fix every problem and give the whole result again.")
	return b.String()
}

const (
	followUp         = "You ended your turn without calling finish or give_up. Call finish now with the result, or give_up with the reason you cannot give it."
	promptedFollowUp = "Your answer has no result. Answer with the result as JSON in one fenced ```json block, or with a fenced ```give_up block saying why you cannot."
)
