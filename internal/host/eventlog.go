package host

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
)

// DefaultEventRetention is how many events an agent instance's log keeps
// (the newest); older ones are pruned as new ones are appended.
const DefaultEventRetention = 10_000

// pruneEvery is how many appends pass between two prunes of the log.
const pruneEvery = 64

// eventLog is an Instance's side of its log: the next numbers, and the
// events numbered but not yet written, which one writer at a time commits
// together (a group commit), so an emit effect never waits for the disk.
type eventLog struct {
	mu       sync.Mutex
	loaded   bool  // lastSeq is read from the database
	lastSeq  int64 // the last number given
	pending  []event.Envelope
	writing  bool          // a writer goroutine is committing
	written  chan struct{} // closed when the writer has nothing left; nil when idle
	hurry    chan struct{} // a Flush waits: the writer commits without lingering
	failures int           // commits that failed in a row
}

// linger is how long the writer waits for more events before a commit:
// a commit costs a few hundred microseconds here, a fetch round trip about
// a hundred, so committing each round trip's policy event alone would
// triple it (measured: BenchmarkEffectRoundTrip). Streams see an event at
// most about this much later.
const linger = 5 * time.Millisecond

// lingerBatch is how many pending events make the writer commit at once.
const lingerBatch = 256

// AppendEvents appends evs, events of run (host-written ones included),
// to the instance's event log, numbering them, and returns their
// envelopes. The events are committed to the database soon after, many
// appends in one transaction, by a writer of their own; only once
// committed are they handed to OnAppend (in sequence order), with the
// usage and cost of turn.finish events added to the run's ledger row in
// the same transaction. So a stream never shows an event that a crash
// could take back and give another number. Flush waits for the commit.
// Appending is not cut short by ctx.
func (i *Instance) AppendEvents(ctx context.Context, run string, evs []wire.Event) ([]event.Envelope, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	ctx = context.WithoutCancel(ctx)
	s, err := i.hostStore(ctx)
	if err != nil {
		return nil, err
	}
	l := &i.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.loaded {
		var last int64
		if err := s.read(func(q querier) error {
			return q.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM _damper_host_events`).Scan(&last)
		}); err != nil {
			return nil, fmt.Errorf("event log of %s/%s: %w", i.Agent, i.ID, err)
		}
		l.lastSeq, l.loaded = last, true
	}
	now := time.UnixMilli(time.Now().UnixMilli())
	envs := make([]event.Envelope, len(evs))
	for k, ev := range evs {
		l.lastSeq++
		envs[k] = event.Envelope{Seq: l.lastSeq, Time: now, Type: event.Type(ev.Type), Agent: i.Agent, Instance: i.ID, Run: run,
			Session: ev.Session, Turn: ev.Turn, Call: ev.Call, Data: ev.Data}
	}
	l.pending = append(l.pending, envs...)
	if !l.writing {
		l.writing = true
		l.written, l.hurry = make(chan struct{}), make(chan struct{})
		go i.writeEvents(s, l.written, l.hurry)
	}
	return envs, nil
}

// writeEvents commits what is pending, again and again until nothing is,
// then closes done.
func (i *Instance) writeEvents(s *Store, done, hurry chan struct{}) {
	l := &i.log
	ctx := context.Background()
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for {
		l.mu.Lock()
		n := len(l.pending)
		l.mu.Unlock()
		if n > 0 && n < lingerBatch {
			timer.Reset(linger)
			select {
			case <-timer.C:
			case <-hurry:
			}
		}
		l.mu.Lock()
		batch := l.pending
		l.pending = nil
		if len(batch) == 0 {
			l.writing, l.written, l.hurry = false, nil, nil
			l.mu.Unlock()
			close(done)
			return
		}
		l.mu.Unlock()
		var err error
		if !i.core.discard {
			err = s.host(ctx, func(tx *sql.Tx) error { return i.commitEvents(ctx, tx, batch) })
		}
		if err != nil {
			l.mu.Lock()
			l.failures++
			if l.failures < 3 {
				// Tried again with what came since, in order.
				l.pending = append(batch, l.pending...)
				l.mu.Unlock()
				time.Sleep(10 * time.Millisecond)
				continue
			}
			l.failures = 0
			l.mu.Unlock()
			i.logger().Error("events lost: the event log could not be written", "agent", i.Agent, "instance", i.ID, "events", len(batch), "err", err)
			continue
		}
		l.mu.Lock()
		l.failures = 0
		l.mu.Unlock()
		if f := i.onAppend.Load(); f != nil {
			(*f)(batch)
		}
	}
}

// commitEvents writes a batch of numbered events in tx, up to insertRows
// a statement (each statement costs its parse and its call into SQLite).
func (i *Instance) commitEvents(ctx context.Context, tx *sql.Tx, batch []event.Envelope) error {
	for rest := batch; len(rest) > 0; {
		chunk := rest[:min(len(rest), insertRows)]
		rest = rest[len(chunk):]
		var q strings.Builder
		q.WriteString(`INSERT INTO _damper_host_events (seq, time, type, run, session, turn, call, data) VALUES `)
		args := make([]any, 0, 8*len(chunk))
		for k, e := range chunk {
			if k > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
			var data any
			if len(e.Data) > 0 {
				data = string(e.Data)
			}
			args = append(args, e.Seq, e.Time.UnixMilli(), string(e.Type), orNull(e.Run), orNull(e.Session), orNull(e.Turn), orNull(e.Call), data)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("append %d events: %w", len(chunk), err)
		}
	}
	// The turns' usage, summed per run: one update a run, not a turn.
	var spends map[string]*spend
	for _, e := range batch {
		if e.Type == event.TypeTurnFinish && e.Run != "" {
			var tf spend
			if json.Unmarshal(e.Data, &tf) != nil {
				continue // the guest's encoder writes it; nothing to add from a bad one
			}
			if spends == nil {
				spends = map[string]*spend{}
			}
			if sum := spends[e.Run]; sum != nil {
				sum.Usage.Add(tf.Usage)
				sum.Cost += tf.Cost
			} else {
				spends[e.Run] = &tf
			}
		}
	}
	for run, sum := range spends {
		if err := addSpend(ctx, tx, run, sum); err != nil {
			return err
		}
	}
	first, last := batch[0].Seq, batch[len(batch)-1].Seq
	if (first-1)/pruneEvery != last/pruneEvery && last > int64(i.retention) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM _damper_host_events WHERE seq <= ?`, last-int64(i.retention)); err != nil {
			return fmt.Errorf("prune the event log: %w", err)
		}
	}
	return nil
}

// insertRows is how many events one INSERT writes (8 arguments each, far
// below SQLite's limit on a statement's arguments).
const insertRows = 128

// Flush waits until every event appended so far is committed (or lost,
// logged), or ctx ends.
func (i *Instance) Flush(ctx context.Context) error {
	i.log.mu.Lock()
	done, hurry := i.log.written, i.log.hurry
	if hurry != nil {
		select {
		case <-hurry:
		default:
			close(hurry) // the writer stops lingering, for good
		}
	}
	i.log.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetOnAppend makes f see every batch of events committed to the log, in
// sequence order (the local host's SSE streams and run listeners); nil
// for none. f must not block for long: the next commit waits for it.
func (i *Instance) SetOnAppend(f func([]event.Envelope)) {
	if f == nil {
		i.onAppend.Store(nil)
		return
	}
	i.onAppend.Store(&f)
}

// spend is what turn.finish events tell of usage and cost.
type spend struct {
	Usage event.Usage `json:"usage"`
	Cost  float64     `json:"cost"`
}

// addSpend adds turns' usage and cost to their run's row.
func addSpend(ctx context.Context, tx *sql.Tx, run string, s *spend) error {
	u := s.Usage
	_, err := tx.ExecContext(ctx, `UPDATE _damper_host_runs SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ?,
		cache_read_tokens = cache_read_tokens + ?, cache_write_tokens = cache_write_tokens + ?, cost = cost + ? WHERE run = ?`,
		u.InputTokens, u.OutputTokens, u.CacheReadTokens, u.CacheWriteTokens, s.Cost, run)
	if err != nil {
		return fmt.Errorf("add the usage of turns to run %s: %w", run, err)
	}
	return nil
}

// ReadEvents returns up to limit events of the log after seq after, in
// order: only run's when run is set. An instance without a log has none.
func (i *Instance) ReadEvents(ctx context.Context, after int64, run string, limit int) ([]event.Envelope, error) {
	if err := i.Flush(ctx); err != nil {
		return nil, err
	}
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
	if err := i.Flush(ctx); err != nil {
		return 0, err
	}
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

// logger is where the log's writer reports what it loses.
func (i *Instance) logger() *slog.Logger { return i.core.logger }
