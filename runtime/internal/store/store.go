// Package store owns the schema of an agent instance's database and the
// harness's tables in it, reached through sql effects. The schema changes
// only by numbered migrations, recorded in _damper_migrations from the
// first version, and applied in one atomic batch the first time a module
// instance touches an agent instance.
//
// Statements follow the Durable Object's rules, which both hosts enforce: no
// BEGIN, COMMIT or SAVEPOINT (a batch is one transaction already), and no
// integer beyond ±(2^53-1) (such values are stored as text).
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/internal/sched"
)

// migrations are the schema's history. Never edit or reorder one that has
// shipped: append a new one.
var migrations = [][]string{
	1: {
		`CREATE TABLE _damper_state (
			key TEXT PRIMARY KEY,
			value TEXT NOT NULL,
			updated_at INTEGER NOT NULL
		)`,
		`CREATE TABLE _damper_runs (
			run TEXT PRIMARY KEY,
			agent TEXT NOT NULL,
			status TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			finished_at INTEGER,
			result TEXT,
			error TEXT
		)`,
	},
	2: {
		// How many requests each limited policy rule has let through in
		// this agent instance, by rule id (policy.Decision.Counter).
		`CREATE TABLE _damper_policy_counters (
			rule TEXT PRIMARY KEY,
			used INTEGER NOT NULL,
			updated_at INTEGER NOT NULL
		)`,
	},
	3: {
		// The files of the agent instance's empty-kind sandbox
		// (sandbox/empty), by path relative to its working directory. A
		// file's content is in pieces (part 0, 1, ...) so that no row
		// nears the Durable Object's 2 MB row limit; a directory is one
		// row of part 0 with no data. A piece that is UTF-8 text is stored
		// as it is, anything else as base64 (b64 = 1): sql arguments are
		// JSON values, which carry no bytes.
		`CREATE TABLE _damper_sandbox_files (
			path TEXT NOT NULL,
			part INTEGER NOT NULL,
			dir INTEGER NOT NULL,
			mode INTEGER NOT NULL,
			mtime INTEGER NOT NULL,
			data TEXT NOT NULL,
			b64 INTEGER NOT NULL,
			PRIMARY KEY (path, part)
		)`,
		// Who may write the files: the module instance that loaded them
		// last (owner), and the sequence number of the last batch written
		// (seq), so that a module instance holding a stale copy, or a
		// batch overtaken by a later one, fails instead of writing.
		`CREATE TABLE _damper_sandbox_owner (
			id INTEGER PRIMARY KEY,
			owner TEXT NOT NULL,
			seq INTEGER NOT NULL
		)`,
		`INSERT INTO _damper_sandbox_owner (id, owner, seq) VALUES (1, '', 0)`,
	},
}

// latest is the schema version this module brings its databases to.
var latest = len(migrations) - 1

// Version is the schema version this module brings its databases to.
func Version() int { return latest }

// Run statuses in _damper_runs.
const (
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

var (
	mu sync.Mutex
	// current holds the agent instances ("agent/id") whose schema this
	// module instance has brought to the latest version. It lives as long as the
	// module instance: a new one checks again.
	current = map[string]bool{}
	// forgetters drop what other packages keep of databases (OnForget).
	forgetters []func()
)

// Forget drops what this module instance knows about databases, as a new
// module instance starts knowing nothing. Tests use it to play a restart.
func Forget() {
	mu.Lock()
	clear(current)
	fs := append([]func(){}, forgetters...)
	mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// OnForget makes Forget call f, for a package that keeps a copy of what an
// agent instance stored (the empty sandbox's files): a restart must drop it
// as a new module instance would not have it.
func OnForget(f func()) {
	mu.Lock()
	defer mu.Unlock()
	forgetters = append(forgetters, f)
}

// Exec runs statements as one atomic batch against the database of ctx's
// agent instance, once its schema is current.
func Exec(ctx context.Context, stmts ...wire.Statement) ([]wire.StatementResult, error) {
	if err := migrate(ctx); err != nil {
		return nil, err
	}
	return exec(ctx, stmts)
}

func exec(ctx context.Context, stmts []wire.Statement) ([]wire.StatementResult, error) {
	var v wire.SQLValue
	if err := sched.Perform(ctx, wire.EffectSQL, wire.SQLArgs{Statements: stmts}, &v); err != nil {
		return nil, err
	}
	if len(v.Results) != len(stmts) {
		return nil, fmt.Errorf("sql: %d results for %d statements", len(v.Results), len(stmts))
	}
	return v.Results, nil
}

// migrate brings the schema of ctx's agent instance to the latest version, unless
// this module instance did already.
func migrate(ctx context.Context) error {
	t := sched.FromContext(ctx)
	if t == nil {
		return errors.New("sql: not called inside a run")
	}
	key := t.Start().Agent + "/" + t.Start().Instance
	mu.Lock()
	done := current[key]
	mu.Unlock()
	if done {
		return nil
	}

	// Two tasks of one agent instance may both find it behind. The second
	// batch to commit then fails on the versions' primary key and rolls
	// back; it looks again and finds the schema current.
	for attempt := 1; ; attempt++ {
		have, err := schemaVersion(ctx)
		if err != nil {
			return err
		}
		if have > latest {
			return fmt.Errorf("migrate %s: the database is at schema version %d, newer than this module's %d", key, have, latest)
		}
		if have < latest {
			err = apply(ctx, have)
		}
		if err == nil {
			mu.Lock()
			current[key] = true
			mu.Unlock()
			return nil
		}
		var ee *sched.EffectError
		if attempt == 2 || !errors.As(err, &ee) || ee.Type != wire.ErrSQL {
			return fmt.Errorf("migrate %s from schema version %d to %d: %w", key, have, latest, err)
		}
	}
}

func schemaVersion(ctx context.Context) (int, error) {
	rs, err := exec(ctx, []wire.Statement{
		{SQL: `CREATE TABLE IF NOT EXISTS _damper_migrations (
			version INTEGER PRIMARY KEY,
			applied_at INTEGER NOT NULL
		)`},
		{SQL: `SELECT COALESCE(MAX(version), 0) FROM _damper_migrations`},
	})
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if len(rs[1].Rows) != 1 || len(rs[1].Rows[0]) != 1 {
		return 0, fmt.Errorf("read schema version: want one value, got %v", rs[1].Rows)
	}
	v, ok := rs[1].Rows[0][0].(float64)
	if !ok {
		return 0, fmt.Errorf("read schema version: want a number, got %v", rs[1].Rows[0][0])
	}
	return int(v), nil
}

// apply runs every migration after version have, and records each, in one
// batch: all of them commit or none does.
func apply(ctx context.Context, have int) error {
	now := time.Now().UnixMilli()
	var batch []wire.Statement
	for v := have + 1; v <= latest; v++ {
		for _, s := range migrations[v] {
			batch = append(batch, wire.Statement{SQL: s})
		}
		batch = append(batch, wire.Statement{SQL: `INSERT INTO _damper_migrations (version, applied_at) VALUES (?, ?)`, Args: []any{v, now}})
	}
	_, err := exec(ctx, batch)
	return err
}

// BeginRun records ctx's run as running. It is called once the payload has
// decoded: a payload that does not fit changes no stored state.
func BeginRun(ctx context.Context) error {
	s := sched.FromContext(ctx).Start()
	_, err := Exec(ctx, wire.Statement{
		SQL: `INSERT INTO _damper_runs (run, agent, status, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (run) DO UPDATE SET status = excluded.status, finished_at = NULL, result = NULL, error = NULL`,
		Args: []any{s.Run, s.Agent, StatusRunning, time.Now().UnixMilli()},
	})
	if err != nil {
		return fmt.Errorf("record run %s: %w", s.Run, err)
	}
	return nil
}

// FinishRun records how ctx's run ended: its result, or failure.
func FinishRun(ctx context.Context, result json.RawMessage, failure *wire.Error) error {
	s := sched.FromContext(ctx).Start()
	status, res, errText := StatusSucceeded, any(string(result)), any(nil)
	if failure != nil {
		b, err := json.Marshal(failure)
		if err != nil {
			return fmt.Errorf("record the end of run %s: encode its error: %w", s.Run, err)
		}
		status, res, errText = StatusFailed, nil, string(b)
	}
	_, err := Exec(ctx, wire.Statement{
		SQL:  `UPDATE _damper_runs SET status = ?, finished_at = ?, result = ?, error = ? WHERE run = ?`,
		Args: []any{status, time.Now().UnixMilli(), res, errText, s.Run},
	})
	if err != nil {
		return fmt.Errorf("record the end of run %s: %w", s.Run, err)
	}
	return nil
}

// Get returns the JSON value stored under key in ctx's agent instance's
// state, and whether there is one.
func Get(ctx context.Context, key string) (json.RawMessage, bool, error) {
	rs, err := Exec(ctx, wire.Statement{SQL: `SELECT value FROM _damper_state WHERE key = ?`, Args: []any{key}})
	if err != nil {
		return nil, false, err
	}
	if len(rs[0].Rows) == 0 {
		return nil, false, nil
	}
	s, ok := rs[0].Rows[0][0].(string)
	if !ok {
		return nil, false, fmt.Errorf("stored value is %T, not JSON text", rs[0].Rows[0][0])
	}
	return json.RawMessage(s), true, nil
}

// Set stores the JSON value under key.
func Set(ctx context.Context, key string, value json.RawMessage) error {
	_, err := Exec(ctx, wire.Statement{
		SQL: `INSERT INTO _damper_state (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		Args: []any{key, string(value), time.Now().UnixMilli()},
	})
	return err
}

// Delete removes key; removing a missing key is not an error.
func Delete(ctx context.Context, key string) error {
	_, err := Exec(ctx, wire.Statement{SQL: `DELETE FROM _damper_state WHERE key = ?`, Args: []any{key}})
	return err
}

// ReserveCount counts one more request of the limited policy rule in ctx's
// agent instance and returns the count with it. It is one atomic statement,
// so concurrent requests of a run (or of any module instance) each get
// their own count, and a caller that allows only counts up to the limit
// never lets more through, whatever the interleaving.
func ReserveCount(ctx context.Context, rule string) (int64, error) {
	rs, err := Exec(ctx, wire.Statement{
		SQL: `INSERT INTO _damper_policy_counters (rule, used, updated_at) VALUES (?, 1, ?)
			ON CONFLICT (rule) DO UPDATE SET used = used + 1, updated_at = excluded.updated_at
			RETURNING used`,
		Args: []any{rule, time.Now().UnixMilli()},
	})
	if err != nil {
		return 0, fmt.Errorf("count a request of policy rule %s: %w", rule, err)
	}
	if len(rs[0].Rows) != 1 || len(rs[0].Rows[0]) != 1 {
		return 0, fmt.Errorf("count a request of policy rule %s: want one value, got %v", rule, rs[0].Rows)
	}
	n, ok := rs[0].Rows[0][0].(float64)
	if !ok {
		return 0, fmt.Errorf("count a request of policy rule %s: want a number, got %v", rule, rs[0].Rows[0][0])
	}
	return int64(n), nil
}

// ReleaseCount takes back a count ReserveCount took for a request that
// was then not sent.
func ReleaseCount(ctx context.Context, rule string) error {
	_, err := Exec(ctx, wire.Statement{
		SQL:  `UPDATE _damper_policy_counters SET used = used - 1, updated_at = ? WHERE rule = ? AND used > 0`,
		Args: []any{time.Now().UnixMilli(), rule},
	})
	if err != nil {
		return fmt.Errorf("take back a count of policy rule %s: %w", rule, err)
	}
	return nil
}
