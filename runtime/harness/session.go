package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/instance"
	"github.com/damperdev/damper/runtime/model"
)

// Session is a named conversation of the agent instance, kept in its
// storage. Use it from the run that made it.
type Session struct {
	h     *Harness
	name  string
	depth int
	rs    *runState

	mu   sync.Mutex // one prompt at a time
	busy bool

	// What the current prompt loaded, kept up to date by its writes.
	row     *sessionRow
	msgs    []stored
	pending map[string]string // call id → tool_result part JSON, "" while the call runs
}

// Name is the session's name.
func (s *Session) Name() string { return s.name }

// Messages returns the session's conversation as stored (a summary first,
// once compaction has run).
func (s *Session) Messages(ctx context.Context) ([]model.Message, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	if _, err := s.load(ctx, 0); err != nil {
		return nil, err
	}
	out := make([]model.Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = m.msg
	}
	return out, nil
}

// Info describes the session as stored.
func (s *Session) Info(ctx context.Context) (SessionInfo, error) {
	if err := s.acquire(); err != nil {
		return SessionInfo{}, err
	}
	defer s.release()
	if _, err := s.load(ctx, 0); err != nil {
		return SessionInfo{}, err
	}
	return SessionInfo{Name: s.name, Model: s.row.model, Messages: len(s.msgs), Turns: s.row.turns, Usage: s.row.usage, Cost: s.row.cost}, nil
}

// SetModel makes name ("provider/model") the session's model, for its
// prompts that name none of their own; "" goes back to the agent's.
func (s *Session) SetModel(ctx context.Context, name string) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if _, err := s.load(ctx, 0); err != nil {
		return err
	}
	s.row.model = name
	if _, err := instance.Exec(ctx, updateSession(s.name, s.row)); err != nil {
		return fmt.Errorf("session %q: set its model: %w", s.name, err)
	}
	return nil
}

var errBusy = errors.New("the session is running another prompt")

func (s *Session) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy {
		return fmt.Errorf("session %q: %w", s.name, errBusy)
	}
	s.busy = true
	return nil
}

func (s *Session) release() {
	s.mu.Lock()
	s.busy = false
	s.mu.Unlock()
}

// load reads the session from storage, and the record of prompt n of this
// run (0: none).
func (s *Session) load(ctx context.Context, n int) (*promptRow, error) {
	row, msgs, pending, pr, err := loadSession(ctx, s.name, s.depth, runID(ctx), n)
	if err != nil {
		return nil, err
	}
	s.row, s.msgs, s.pending = row, msgs, pending
	return pr, nil
}

func runID(ctx context.Context) string {
	if t := runTask(ctx); t != nil {
		return t.Start().Run
	}
	return ""
}

func (s *Session) nextSeq() int64 {
	if len(s.msgs) == 0 {
		return 1
	}
	return s.msgs[len(s.msgs)-1].seq + 1
}

// last is the session's last message, nil when it has none.
func (s *Session) last() *model.Message {
	if len(s.msgs) == 0 {
		return nil
	}
	return &s.msgs[len(s.msgs)-1].msg
}

// exec runs stmts and, once they committed, appends the messages they
// stored to the session in memory.
func (s *Session) exec(ctx context.Context, stmts []wire.Statement, added ...stored) error {
	if _, err := instance.Exec(ctx, stmts...); err != nil {
		return fmt.Errorf("session %q: store: %w", s.name, err)
	}
	s.msgs = append(s.msgs, added...)
	return nil
}

// digest identifies what a prompt asked, so that a run started again whose
// handler asks something else at the same place fails rather than takes
// another prompt's answer.
func digest(parts ...string) string {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// outcome is how a prompt ended, as stored: its result (the finish
// arguments, or the text), or its failure.
type outcome struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *storedError    `json:"error,omitempty"`
}

type storedError struct {
	Result *ResultError `json:"result,omitempty"`
	Budget *BudgetError `json:"budget,omitempty"`
}

func (o *outcome) err() error {
	switch {
	case o.Error == nil:
		return nil
	case o.Error.Result != nil:
		return o.Error.Result
	case o.Error.Budget != nil:
		return o.Error.Budget
	}
	return errors.New("the prompt failed")
}
