package harness

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/runtime/model"
)

// Compaction's defaults.
const (
	defaultKeep       = 8000
	maxDefaultReserve = 20000
	defaultWindow     = 128000
)

// windows are the context windows of known model families, in tokens, by
// the prefix of "provider/model".
var windows = []struct {
	prefix string
	tokens int
}{
	{"anthropic/", 200000},
	{"openai/gpt-4.1", 1047576},
	{"openai/gpt-5", 400000},
	{"openai/gpt-4o", 128000},
	{"openai/o", 200000},
	{"test/", 200000},
}

func (c *call) window() int {
	if w := c.h.cfg.Compaction.Window; w > 0 {
		return w
	}
	for _, w := range windows {
		if strings.HasPrefix(c.name, w.prefix) {
			return w.tokens
		}
	}
	return defaultWindow
}

func (c *call) keep() int {
	if k := c.h.cfg.Compaction.Keep; k > 0 {
		return k
	}
	return defaultKeep
}

func (c *call) reserve() int {
	if r := c.h.cfg.Compaction.Reserve; r > 0 {
		return r
	}
	return min(c.window()/4, maxDefaultReserve)
}

// size estimates the tokens of the next request: its messages, system
// prompt and tools, and what the last turn said it used, when more.
func (c *call) size() int {
	n := len(c.system) / 4
	for _, sp := range c.specs {
		n += (len(sp.Name) + len(sp.Description) + len(sp.InputSchema)) / 4
	}
	for _, m := range c.s.msgs {
		n += m.tokens
	}
	return n
}

// maybeCompact compacts the session when its next request would pass the
// window less the reserve.
func (c *call) maybeCompact(reason string) error {
	if c.h.cfg.Compaction.Off || c.size() <= c.window()-c.reserve() {
		return nil
	}
	return c.compact(reason, "", c.keep())
}

// cutPoint is the index of the first message compaction keeps: an
// assistant message (so the summary, a user message, comes before it),
// with about keep tokens from it to the end. 0 when there is nothing to
// summarise.
func cutPoint(msgs []stored, keep int) int {
	acc, i := 0, len(msgs)
	for i > 0 && acc < keep {
		i--
		acc += msgs[i].tokens
	}
	for j := i; j < len(msgs); j++ {
		if msgs[j].msg.Role == model.RoleAssistant && j > 0 {
			return j
		}
	}
	for j := i - 1; j > 0; j-- {
		if msgs[j].msg.Role == model.RoleAssistant {
			return j
		}
	}
	return 0
}

const summarySystem = "You write the summary of a conversation between a user and an AI agent that is working with tools. The agent will continue the work from your summary alone, with only the most recent messages kept, so keep everything it needs: the task and its constraints, decisions and their reasons, what was done and found (file names, commands, results, errors), and what is left to do. Write it as notes, not as a reply to the user."

// compact replaces the session's older messages with a summary the model
// writes, keeping the most recent (about keep tokens) as they are.
func (c *call) compact(reason, instructions string, keep int) error {
	s := c.s
	cut := cutPoint(s.msgs, keep)
	if cut == 0 {
		return nil
	}
	before := 0
	for _, m := range s.msgs[:cut] {
		before += m.tokens
	}
	began, total := time.Now(), c.size()
	emit(c.ctx, s.name, turnID(c.st.Turns), "", event.CompactionStart{Tokens: int64(total)})
	msgs := make([]model.Message, cut)
	for i, m := range s.msgs[:cut] {
		msgs[i] = m.msg
	}
	ask := "Summarise the conversation so far, as your instructions say."
	if instructions != "" {
		ask += "\n\nAlso: " + instructions
	}
	last := msgs[cut-1]
	last.Content = append(append([]model.Part(nil), last.Content...), model.Text(ask))
	msgs[cut-1] = last
	resp, err := c.model.Turn(c.ctx, &model.Request{System: summarySystem, Messages: msgs, Tools: c.specs,
		ToolChoice: model.ToolChoice{Mode: model.ToolNone}, MaxTokens: c.h.cfg.MaxTokens}, nil)
	if err != nil {
		return fmt.Errorf("session %q: compact: %w", s.name, err)
	}
	summary := strings.TrimSpace(resp.Message.Text())
	if summary == "" {
		return fmt.Errorf("session %q: compact: the model wrote an empty summary", s.name)
	}
	cost, _ := resp.Cost()
	c.st.Usage.Add(resp.Usage)
	c.st.Cost += cost
	s.row.usage.Add(resp.Usage)
	s.row.cost += cost

	msg := model.Message{Role: model.RoleUser, Content: []model.Part{model.Text("[A summary of the conversation before this point]\n\n" + summary)}}
	seq := s.msgs[cut].seq - 1
	ins, tokens, err := insertMessage(s.name, seq, msg)
	if err != nil {
		return err
	}
	up, err := updatePrompt(c.run, s.name, c.n, promptRunning, &c.st, nil)
	if err != nil {
		return err
	}
	stmts := []wire.Statement{
		{SQL: `DELETE FROM _damper_session_messages WHERE session = ? AND seq < ?`, Args: []any{s.name, s.msgs[cut].seq}},
		ins, updateSession(s.name, s.row), up,
	}
	if err := s.exec(c.ctx, stmts); err != nil {
		return err
	}
	s.msgs = append([]stored{{seq: seq, msg: msg, tokens: tokens}}, s.msgs[cut:]...)
	emit(c.ctx, s.name, turnID(c.st.Turns), "", event.CompactionFinish{TokensBefore: int64(total), TokensAfter: int64(c.size()), DurationMs: sinceMs(began)})
	return nil
}

// Compact summarises the session's older turns now, keeping the most
// recent ones, with instructions for the summary (what to keep, say) when
// not empty.
func (s *Session) Compact(ctx context.Context, instructions string, opts ...Option) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	var o options
	for _, f := range opts {
		f(&o)
	}
	if err := s.h.context(ctx); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if _, err := s.load(ctx, 0); err != nil {
		return err
	}
	c := &call{s: s, h: s.h, ctx: ctx, run: runID(ctx), opts: o}
	if err := c.setup(); err != nil {
		return err
	}
	return c.compact("request", instructions, c.keep())
}
