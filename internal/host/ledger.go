package host

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
)

// Run statuses in the ledger, as GET …/runs/{run} answers them.
const (
	RunQueued   = "queued"   // recorded, waiting for its agent instance
	RunRunning  = "running"  // started (again, after an interruption, with a greater attempt)
	RunDone     = "done"     // ended with a result
	RunFailed   = "failed"   // ended with an error
	RunCanceled = "canceled" // canceled: DELETE, its timeout, its caller gone, an interrupt
)

// Run modes: how the run was asked for.
const (
	ModeSync       = "sync"       // POST answered with the result JSON
	ModeStream     = "stream"     // POST answered with the run's events as SSE
	ModeBackground = "background" // POST answered 202 at once
	ModeCLI        = "cli"        // damper run
)

// keepRuns is how many finished runs the ledger keeps per agent instance
// (the newest); older ones are pruned as runs finish.
const keepRuns = 1000

// Run is one run as the ledger records it, and as GET …/runs/{run}
// answers it.
type Run struct {
	ID       string
	Agent    string
	Instance string
	Status   string // Run...
	Mode     string // Mode...
	Model    string // the host's model choice, passed in its start
	Sandbox  string // the host's sandbox choice
	Payload  json.RawMessage
	Created  time.Time
	Started  time.Time // zero until it starts
	Finished time.Time // zero until it ends
	// Attempts counts its starts: more than one when it was interrupted
	// (its module instance trapped, its process was lost) and resumed.
	Attempts int
	Result   json.RawMessage // when done
	Error    *wire.Error     // when failed or canceled
	Usage    event.Usage     // summed from its turn.finish events
	Cost     float64         // US dollars, likewise
}

// Finished reports whether status ends a run.
func Finished(status string) bool {
	return status == RunDone || status == RunFailed || status == RunCanceled
}

// runJSON is Run as the HTTP API writes it (both hosts).
type runJSON struct {
	ID       string          `json:"run"`
	Agent    string          `json:"agent"`
	Instance string          `json:"instance"`
	Status   string          `json:"status"`
	Mode     string          `json:"mode"`
	Model    string          `json:"model,omitempty"`
	Sandbox  string          `json:"sandbox,omitempty"`
	Created  string          `json:"created"`
	Started  string          `json:"started,omitempty"`
	Finished string          `json:"finished,omitempty"`
	Attempts int             `json:"attempts"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *runError       `json:"error,omitempty"`
	Usage    event.Usage     `json:"usage"`
	Cost     float64         `json:"cost"`
}

type runError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

const jsonTime = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(jsonTime)
}

// MarshalJSON writes the run as the HTTP API answers it: times in RFC
// 3339 (UTC, milliseconds), the payload left out.
func (r Run) MarshalJSON() ([]byte, error) {
	v := runJSON{ID: r.ID, Agent: r.Agent, Instance: r.Instance, Status: r.Status, Mode: r.Mode, Model: r.Model, Sandbox: r.Sandbox,
		Created: formatTime(r.Created), Started: formatTime(r.Started), Finished: formatTime(r.Finished),
		Attempts: r.Attempts, Result: r.Result, Usage: r.Usage, Cost: r.Cost}
	if r.Error != nil {
		v.Error = &runError{Type: r.Error.Type, Message: r.Error.Message}
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads what MarshalJSON writes (the CLI reads runs of a
// host over HTTP).
func (r *Run) UnmarshalJSON(b []byte) error {
	var v runJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	parse := func(s string) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		return time.Parse(time.RFC3339Nano, s)
	}
	var err1, err2, err3 error
	*r = Run{ID: v.ID, Agent: v.Agent, Instance: v.Instance, Status: v.Status, Mode: v.Mode, Model: v.Model, Sandbox: v.Sandbox,
		Attempts: v.Attempts, Result: v.Result, Usage: v.Usage, Cost: v.Cost}
	r.Created, err1 = parse(v.Created)
	r.Started, err2 = parse(v.Started)
	r.Finished, err3 = parse(v.Finished)
	if v.Error != nil {
		r.Error = &wire.Error{Type: v.Error.Type, Message: v.Error.Message}
	}
	return errors.Join(err1, err2, err3)
}

const runColumns = `run, agent, instance, status, mode, payload, model, sandbox, created_at, started_at, finished_at,
	attempts, result, error, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost`

func scanRun(row interface{ Scan(...any) error }) (Run, error) {
	var (
		r                  Run
		payload            string
		created            int64
		started, finished  sql.NullInt64
		result, errText    sql.NullString
		in, out, cr, cw    int64
		cost               float64
		agent, inst, model string
	)
	err := row.Scan(&r.ID, &agent, &inst, &r.Status, &r.Mode, &payload, &model, &r.Sandbox, &created, &started, &finished,
		&r.Attempts, &result, &errText, &in, &out, &cr, &cw, &cost)
	if err != nil {
		return Run{}, err
	}
	r.Agent, r.Instance, r.Model = agent, inst, model
	r.Payload = json.RawMessage(payload)
	r.Created = time.UnixMilli(created)
	if started.Valid {
		r.Started = time.UnixMilli(started.Int64)
	}
	if finished.Valid {
		r.Finished = time.UnixMilli(finished.Int64)
	}
	if result.Valid {
		r.Result = json.RawMessage(result.String)
	}
	if errText.Valid {
		var e wire.Error
		if json.Unmarshal([]byte(errText.String), &e) == nil {
			r.Error = &e
		}
	}
	r.Usage = event.Usage{InputTokens: in, OutputTokens: out, CacheReadTokens: cr, CacheWriteTokens: cw}
	r.Cost = cost
	return r, nil
}

// RecordRun records r as queued, before anything of it runs: a run the
// host accepted is in the ledger even if the process is lost at once.
func (i *Instance) RecordRun(ctx context.Context, r *Run) error {
	s, err := i.hostStore(ctx)
	if err != nil {
		return err
	}
	if r.Created.IsZero() {
		r.Created = time.UnixMilli(time.Now().UnixMilli())
	}
	r.Status, r.Agent, r.Instance = RunQueued, i.Agent, i.ID
	err = s.host(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO _damper_host_runs (run, agent, instance, status, mode, payload, model, sandbox, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Agent, r.Instance, r.Status, r.Mode, string(r.Payload), r.Model, r.Sandbox, r.Created.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("record run %s: %w", r.ID, err)
	}
	return nil
}

// StartRun marks a run running and counts the attempt; it returns the
// run as it now is.
func (i *Instance) StartRun(ctx context.Context, run string) (Run, error) {
	return i.updateRun(ctx, run, `UPDATE _damper_host_runs SET status = ?, attempts = attempts + 1, started_at = COALESCE(started_at, ?)
		WHERE run = ? RETURNING `+runColumns, RunRunning, time.Now().UnixMilli(), run)
}

// FinishRun records how a run ended (status done with result, or failed
// or canceled with e) and returns the run with its totals.
func (i *Instance) FinishRun(ctx context.Context, run, status string, result json.RawMessage, e *wire.Error) (Run, error) {
	// The totals are summed as turn.finish events are committed.
	_ = i.Flush(ctx)
	var res, errText any
	if result != nil {
		res = string(result)
	}
	if e != nil {
		b, err := json.Marshal(e)
		if err != nil {
			return Run{}, err
		}
		errText = string(b)
	}
	r, err := i.updateRun(ctx, run, `UPDATE _damper_host_runs SET status = ?, finished_at = ?, result = ?, error = ?
		WHERE run = ? RETURNING `+runColumns, status, time.Now().UnixMilli(), res, errText, run)
	if err != nil {
		return r, err
	}
	i.finishes++
	if i.finishes%32 == 0 {
		i.pruneRuns(ctx)
	}
	return r, nil
}

func (i *Instance) updateRun(ctx context.Context, run, query string, args ...any) (Run, error) {
	s, err := i.hostStore(ctx)
	if err != nil {
		return Run{}, err
	}
	var r Run
	err = s.host(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		var err error
		r, err = scanRun(tx.QueryRowContext(ctx, query, args...))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("run %s is not in the ledger of %s/%s", run, i.Agent, i.ID)
	}
	if err != nil {
		return Run{}, fmt.Errorf("update run %s: %w", run, err)
	}
	return r, nil
}

// pruneRuns drops the oldest finished runs beyond keepRuns. Best effort.
func (i *Instance) pruneRuns(ctx context.Context) {
	s, err := i.hostStore(ctx)
	if err != nil {
		return
	}
	_ = s.host(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM _damper_host_runs WHERE status IN (?, ?, ?) AND run NOT IN
			(SELECT run FROM _damper_host_runs ORDER BY created_at DESC LIMIT ?)`, RunDone, RunFailed, RunCanceled, keepRuns)
		return err
	})
}

// ForgetRun removes a run that left nothing else behind: a synchronous
// run whose payload the guest refused, so that bad input changes no
// stored state.
func (i *Instance) ForgetRun(ctx context.Context, run string) error {
	s, err := i.hostStore(ctx)
	if err != nil {
		return err
	}
	return s.host(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM _damper_host_runs WHERE run = ?`, run)
		return err
	})
}

// GetRun returns the ledger's row of run, and whether it has one.
func (i *Instance) GetRun(ctx context.Context, run string) (Run, bool, error) {
	_ = i.Flush(ctx)
	var (
		r     Run
		found bool
	)
	err := i.readHost(ctx, func(q querier) error {
		var err error
		r, err = scanRun(q.QueryRowContext(ctx, `SELECT `+runColumns+` FROM _damper_host_runs WHERE run = ?`, run))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	return r, found, err
}

// Runs returns up to limit runs, the newest first.
func (i *Instance) Runs(ctx context.Context, limit int) ([]Run, error) {
	return i.queryRuns(ctx, `SELECT `+runColumns+` FROM _damper_host_runs ORDER BY created_at DESC, rowid DESC LIMIT ?`, limit)
}

// Unfinished returns the runs that are queued or running, the oldest
// first: after a restart, those the host must start again.
func (i *Instance) Unfinished(ctx context.Context) ([]Run, error) {
	return i.queryRuns(ctx, `SELECT `+runColumns+` FROM _damper_host_runs WHERE status IN (?, ?) ORDER BY created_at, rowid`, RunQueued, RunRunning)
}

func (i *Instance) queryRuns(ctx context.Context, query string, args ...any) ([]Run, error) {
	_ = i.Flush(ctx)
	var out []Run
	err := i.readHost(ctx, func(q querier) error {
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read the runs of %s/%s: %w", i.Agent, i.ID, err)
	}
	return out, nil
}

// MaxAttempts is how many times a run is started at most: a run whose
// module instance trapped, or whose process was lost, starts again with
// the same id until then, and then fails with interrupted.
const MaxAttempts = 3
