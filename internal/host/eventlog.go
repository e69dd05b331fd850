package host

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
)

// DefaultEventRetention is how many events an agent instance's log keeps
// (the newest); older ones are pruned as new ones are appended.
const DefaultEventRetention = 10_000

// pruneEvery is how many appends pass between two prunes of the log.
const pruneEvery = 64

// insertEvent appends one event with the next sequence number. MAX(seq)
// of an INTEGER PRIMARY KEY is a lookup, and inside the batch's write
// transaction no other writer (another process on the same data
// directory included) can take the same number. Pruning always leaves
// the newest event, so the numbers never go back.
const insertEvent = `INSERT INTO _damper_host_events (seq, time, type, run, session, turn, call, data)
	SELECT COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ? FROM _damper_host_events RETURNING seq`

// AppendEvents appends evs, events of run (host-written ones included),
// to the instance's event log in one transaction, numbering them, adds
// the usage and cost of turn.finish events to the run's ledger row, and
// hands the envelopes to OnAppend. Appending is not cut short by ctx: an
// event of a canceled run is recorded too.
func (i *Instance) AppendEvents(ctx context.Context, run string, evs []wire.Event) ([]event.Envelope, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	ctx = context.WithoutCancel(ctx)
	s, err := i.hostStore(ctx)
	if err != nil {
		return nil, err
	}
	i.appendMu.Lock()
	defer i.appendMu.Unlock()
	now := time.UnixMilli(time.Now().UnixMilli())
	envs := make([]event.Envelope, len(evs))
	err = s.host(ctx, func(tx *sql.Tx) error {
		for k, ev := range evs {
			var seq int64
			err := tx.QueryRowContext(ctx, insertEvent, now.UnixMilli(), ev.Type, orNull(run), orNull(ev.Session), orNull(ev.Turn), orNull(ev.Call), orNull(string(ev.Data))).Scan(&seq)
			if err != nil {
				return fmt.Errorf("append a %s event: %w", ev.Type, err)
			}
			envs[k] = event.Envelope{Seq: seq, Time: now, Type: event.Type(ev.Type), Agent: i.Agent, Instance: i.ID, Run: run,
				Session: ev.Session, Turn: ev.Turn, Call: ev.Call, Data: ev.Data}
			if ev.Type == string(event.TypeTurnFinish) && run != "" {
				if err := addSpend(ctx, tx, run, ev.Data); err != nil {
					return err
				}
			}
		}
		first, last := envs[0].Seq, envs[len(envs)-1].Seq
		if (first-1)/pruneEvery != last/pruneEvery && last > int64(i.retention) {
			if _, err := tx.ExecContext(ctx, `DELETE FROM _damper_host_events WHERE seq <= ?`, last-int64(i.retention)); err != nil {
				return fmt.Errorf("prune the event log: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("event log of %s/%s: %w", i.Agent, i.ID, err)
	}
	if f := i.onAppend.Load(); f != nil {
		(*f)(envs)
	}
	return envs, nil
}

// SetOnAppend makes f see every batch of events appended to the log, in
// sequence order, before AppendEvents returns (the local host's SSE
// streams); nil for none. f must not block.
func (i *Instance) SetOnAppend(f func([]event.Envelope)) {
	if f == nil {
		i.onAppend.Store(nil)
		return
	}
	i.onAppend.Store(&f)
}

// addSpend adds a turn.finish event's usage and cost to its run's row.
func addSpend(ctx context.Context, tx *sql.Tx, run string, data json.RawMessage) error {
	var tf struct {
		Usage event.Usage `json:"usage"`
		Cost  float64     `json:"cost"`
	}
	if json.Unmarshal(data, &tf) != nil {
		return nil // the guest's encoder writes it; nothing to add from a bad one
	}
	u := tf.Usage
	_, err := tx.ExecContext(ctx, `UPDATE _damper_host_runs SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ?,
		cache_read_tokens = cache_read_tokens + ?, cache_write_tokens = cache_write_tokens + ?, cost = cost + ? WHERE run = ?`,
		u.InputTokens, u.OutputTokens, u.CacheReadTokens, u.CacheWriteTokens, tf.Cost, run)
	if err != nil {
		return fmt.Errorf("add the usage of a turn to run %s: %w", run, err)
	}
	return nil
}

// ReadEvents returns up to limit events of the log after seq after, in
// order: only run's when run is set. An instance without a log has none.
func (i *Instance) ReadEvents(ctx context.Context, after int64, run string, limit int) ([]event.Envelope, error) {
	var out []event.Envelope
	err := i.readHost(ctx, func(q querier) error {
		query := `SELECT seq, time, type, run, session, turn, call, data FROM _damper_host_events WHERE seq > ? ORDER BY seq LIMIT ?`
		args := []any{after, limit}
		if run != "" {
			query = `SELECT seq, time, type, run, session, turn, call, data FROM _damper_host_events WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?`
			args = []any{run, after, limit}
		}
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e                              event.Envelope
				ms                             int64
				typ                            string
				run, session, turn, call, data sql.NullString
			)
			if err := rows.Scan(&e.Seq, &ms, &typ, &run, &session, &turn, &call, &data); err != nil {
				return err
			}
			e.Time, e.Type, e.Agent, e.Instance = time.UnixMilli(ms), event.Type(typ), i.Agent, i.ID
			e.Run, e.Session, e.Turn, e.Call = run.String, session.String, turn.String, call.String
			if data.Valid {
				e.Data = json.RawMessage(data.String)
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read the event log of %s/%s: %w", i.Agent, i.ID, err)
	}
	return out, nil
}

// LastSeq is the sequence number of the newest event, 0 for none.
func (i *Instance) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := i.readHost(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM _damper_host_events`).Scan(&seq)
	})
	return seq, err
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}
