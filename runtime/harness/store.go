package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/instance"
	"github.com/damperdev/damper/runtime/model"
)

// The harness's tables are created by migration 4 of runtime/internal/store:
// _damper_sessions, _damper_session_messages, _damper_session_results and
// _damper_prompts. Every change of a session is one sql batch: a model
// turn (its message, the session's usage, the prompt's counters), a tool
// result, the message answering a turn's tool calls, a compaction.

// stored is one message of a session's conversation.
type stored struct {
	seq    int64
	msg    model.Message
	tokens int
}

// sessionRow is a session's row.
type sessionRow struct {
	model string
	depth int
	usage model.Usage
	cost  float64
	turns int
}

// prompt statuses.
const (
	promptRunning = "running"
	promptDone    = "done"
	promptFailed  = "failed"
)

// promptRow is one prompt of a run, as stored.
type promptRow struct {
	digest, status string
	state          loopState
	outcome        json.RawMessage
}

func jsonOf(v any) ([]byte, error) { return json.Marshal(v) }

func now() int64 { return time.Now().UnixMilli() }

// estimate is a message's size in tokens, for compaction: a token per four
// bytes of its JSON.
func estimate(b []byte) int { return len(b)/4 + 1 }

// loadSession creates the session name (at depth, with no model of its
// own) unless it exists, and reads it whole: its row, its messages, its
// pending tool results, and the prompt (run, n) when that is stored.
func loadSession(ctx context.Context, name string, depth int, run string, n int) (*sessionRow, []stored, map[string]string, *promptRow, error) {
	t := now()
	rs, err := instance.Exec(ctx,
		wire.Statement{SQL: `INSERT INTO _damper_sessions (name, model, depth, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost, turns, created_at, updated_at)
			VALUES (?, '', ?, 0, 0, 0, 0, 0, 0, ?, ?) ON CONFLICT (name) DO NOTHING`, Args: []any{name, depth, t, t}},
		wire.Statement{SQL: `SELECT model, depth, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost, turns FROM _damper_sessions WHERE name = ?`, Args: []any{name}},
		wire.Statement{SQL: `SELECT seq, message, tokens FROM _damper_session_messages WHERE session = ? ORDER BY seq`, Args: []any{name}},
		wire.Statement{SQL: `SELECT call_id, part FROM _damper_session_results WHERE session = ?`, Args: []any{name}},
		wire.Statement{SQL: `SELECT digest, status, state, outcome FROM _damper_prompts WHERE run = ? AND session = ? AND n = ?`, Args: []any{run, name, n}},
	)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("load session %q: %w", name, err)
	}
	if len(rs[1].Rows) != 1 {
		return nil, nil, nil, nil, fmt.Errorf("load session %q: its row is missing", name)
	}
	r := rs[1].Rows[0]
	row := &sessionRow{model: str(r[0]), depth: num(r[1]), cost: float(r[6]), turns: num(r[7]),
		usage: model.Usage{InputTokens: int64(num(r[2])), OutputTokens: int64(num(r[3])), CacheReadTokens: int64(num(r[4])), CacheWriteTokens: int64(num(r[5]))}}
	msgs := make([]stored, 0, len(rs[2].Rows))
	for _, m := range rs[2].Rows {
		var msg model.Message
		if err := json.Unmarshal([]byte(str(m[1])), &msg); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("load session %q: message %v: %w", name, m[0], err)
		}
		msgs = append(msgs, stored{seq: int64(num(m[0])), msg: msg, tokens: num(m[2])})
	}
	pending := map[string]string{}
	for _, p := range rs[3].Rows {
		pending[str(p[0])] = str(p[1])
	}
	var pr *promptRow
	if len(rs[4].Rows) == 1 {
		p := rs[4].Rows[0]
		pr = &promptRow{digest: str(p[0]), status: str(p[1])}
		if err := json.Unmarshal([]byte(str(p[2])), &pr.state); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("load session %q: prompt state: %w", name, err)
		}
		if o := str(p[3]); o != "" {
			pr.outcome = json.RawMessage(o)
		}
	}
	return row, msgs, pending, pr, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

func float(v any) float64 {
	f, _ := v.(float64)
	return f
}

// insertMessage is the statement storing msg at seq of session. The
// primary key makes a second writer of the same position fail the batch.
func insertMessage(session string, seq int64, msg model.Message) (wire.Statement, int, error) {
	b, err := jsonOf(msg)
	if err != nil {
		return wire.Statement{}, 0, fmt.Errorf("encode a message: %w", err)
	}
	tokens := estimate(b)
	return wire.Statement{SQL: `INSERT INTO _damper_session_messages (session, seq, message, tokens) VALUES (?, ?, ?, ?)`,
		Args: []any{session, seq, string(b), tokens}}, tokens, nil
}

func updatePrompt(run, session string, n int, status string, st *loopState, outcome json.RawMessage) (wire.Statement, error) {
	b, err := jsonOf(st)
	if err != nil {
		return wire.Statement{}, fmt.Errorf("encode the prompt's state: %w", err)
	}
	var o any
	if outcome != nil {
		o = string(outcome)
	}
	return wire.Statement{SQL: `UPDATE _damper_prompts SET status = ?, state = ?, outcome = ?, updated_at = ? WHERE run = ? AND session = ? AND n = ?`,
		Args: []any{status, string(b), o, now(), run, session, n}}, nil
}

func updateSession(name string, row *sessionRow) wire.Statement {
	return wire.Statement{SQL: `UPDATE _damper_sessions SET model = ?, input_tokens = ?, output_tokens = ?, cache_read_tokens = ?, cache_write_tokens = ?, cost = ?, turns = ?, updated_at = ? WHERE name = ?`,
		Args: []any{row.model, row.usage.InputTokens, row.usage.OutputTokens, row.usage.CacheReadTokens, row.usage.CacheWriteTokens, row.cost, row.turns, now(), name}}
}

func clearResults(session string) wire.Statement {
	return wire.Statement{SQL: `DELETE FROM _damper_session_results WHERE session = ?`, Args: []any{session}}
}

func putResult(session, callID, part string) wire.Statement {
	return wire.Statement{SQL: `INSERT INTO _damper_session_results (session, call_id, part) VALUES (?, ?, ?)
		ON CONFLICT (session, call_id) DO UPDATE SET part = excluded.part`, Args: []any{session, callID, part}}
}

// listSessions reads every session's row but the subagents' own.
func listSessions(ctx context.Context) ([]SessionInfo, error) {
	rs, err := instance.Exec(ctx, wire.Statement{SQL: `SELECT s.name, s.model, s.input_tokens, s.output_tokens, s.cache_read_tokens, s.cache_write_tokens, s.cost, s.turns,
		s.created_at, s.updated_at, (SELECT COUNT(*) FROM _damper_session_messages m WHERE m.session = s.name)
		FROM _damper_sessions s WHERE s.depth = 0 ORDER BY s.name`})
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	out := make([]SessionInfo, 0, len(rs[0].Rows))
	for _, r := range rs[0].Rows {
		out = append(out, SessionInfo{
			Name: str(r[0]), Model: str(r[1]), Cost: float(r[6]), Turns: num(r[7]),
			Usage:    model.Usage{InputTokens: int64(num(r[2])), OutputTokens: int64(num(r[3])), CacheReadTokens: int64(num(r[4])), CacheWriteTokens: int64(num(r[5]))},
			Created:  time.UnixMilli(int64(num(r[8]))),
			Updated:  time.UnixMilli(int64(num(r[9]))),
			Messages: num(r[10]),
		})
	}
	return out, nil
}

// deleteSession removes a session and its subagents' sessions, whose names
// extend its own with "/".
func deleteSession(ctx context.Context, name string) error {
	child := name + "/"
	match := `(session = ? OR substr(session, 1, ?) = ?)`
	args := []any{name, len(child), child}
	_, err := instance.Exec(ctx,
		wire.Statement{SQL: `DELETE FROM _damper_session_messages WHERE ` + match, Args: args},
		wire.Statement{SQL: `DELETE FROM _damper_session_results WHERE ` + match, Args: args},
		wire.Statement{SQL: `DELETE FROM _damper_prompts WHERE ` + match, Args: args},
		wire.Statement{SQL: `DELETE FROM _damper_sessions WHERE name = ? OR substr(name, 1, ?) = ?`, Args: args},
	)
	if err != nil {
		return fmt.Errorf("delete session %q: %w", name, err)
	}
	return nil
}
