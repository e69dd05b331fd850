package host

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// The host owns some tables of every agent instance's database, beside
// the guest's (docs/abi.md, "Storage: who owns which table"): the event
// log and the run ledger. They are named _damper_host_*, created by the
// host's own numbered migrations (recorded in _damper_host_migrations),
// and the guest may not name them in a statement. The Workers host runs
// the same migrations on the Durable Object's storage (worker/schema.js
// is generated from HostMigrations).

// HostTablePrefix begins the name of every table the host owns.
const HostTablePrefix = "_damper_host_"

// HostTablesMessage is the sql_error for a guest statement that names a
// host table; the Worker answers the same.
const HostTablesMessage = "tables named " + HostTablePrefix + "* belong to the host (the event log and the run ledger): a statement may not name them"

// HostMigrations are the host tables' history: never edit or reorder one
// that has shipped; append.
var HostMigrations = [][]string{
	1: {
		// The event log: one row per event, numbered 1, 2, 3, ... per agent
		// instance (seq), the oldest pruned past the retention.
		`CREATE TABLE _damper_host_events (
			seq INTEGER PRIMARY KEY,
			time INTEGER NOT NULL,
			type TEXT NOT NULL,
			run TEXT,
			session TEXT,
			turn TEXT,
			call TEXT,
			data TEXT
		)`,
		`CREATE INDEX _damper_host_events_by_run ON _damper_host_events (run, seq)`,
		// The run ledger: a run is recorded (queued) before it starts, with
		// its payload, so that a run whose process was lost starts again
		// with the same id; usage and cost are summed from its turn.finish
		// events as they are appended.
		`CREATE TABLE _damper_host_runs (
			run TEXT PRIMARY KEY,
			agent TEXT NOT NULL,
			instance TEXT NOT NULL,
			status TEXT NOT NULL,
			mode TEXT NOT NULL,
			payload TEXT NOT NULL,
			model TEXT NOT NULL DEFAULT '',
			sandbox TEXT NOT NULL DEFAULT '',
			created_at INTEGER NOT NULL,
			started_at INTEGER,
			finished_at INTEGER,
			attempts INTEGER NOT NULL DEFAULT 0,
			result TEXT,
			error TEXT,
			input_tokens INTEGER NOT NULL DEFAULT 0,
			output_tokens INTEGER NOT NULL DEFAULT 0,
			cache_read_tokens INTEGER NOT NULL DEFAULT 0,
			cache_write_tokens INTEGER NOT NULL DEFAULT 0,
			cost REAL NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX _damper_host_runs_by_created ON _damper_host_runs (created_at)`,
		`CREATE INDEX _damper_host_runs_by_status ON _damper_host_runs (status)`,
	},
}

// hostTable reports whether name is a host table's.
func hostTable(name string) bool {
	return len(name) >= len(HostTablePrefix) && strings.EqualFold(name[:len(HostTablePrefix)], HostTablePrefix)
}

// namesHostTable reports whether a guest statement mentions a host
// table: its text holds the prefix, in any case. SQLite's identifiers
// have no escapes and fold ASCII case only, so a statement that reaches
// such a table has the prefix in its text (quoting adds characters
// around a name, never inside it). It also refuses a string literal that
// holds the prefix, which no agent needs. The local host's authorizer
// checks the tables SQLite resolved as well.
func namesHostTable(stmt string) bool {
	return strings.Contains(strings.ToLower(stmt), HostTablePrefix)
}

// migrateHost brings the host tables to the latest version, in one
// transaction.
func migrateHost(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS _damper_host_migrations (
		version INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return err
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM _damper_host_migrations`).Scan(&have); err != nil {
		return err
	}
	latest := len(HostMigrations) - 1
	if have > latest {
		return fmt.Errorf("the host tables are at version %d, newer than this damper's %d", have, latest)
	}
	now := time.Now().UnixMilli()
	for v := have + 1; v <= latest; v++ {
		for _, stmt := range HostMigrations[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("host migration %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO _damper_host_migrations (version, applied_at) VALUES (?, ?)`, v, now); err != nil {
			return err
		}
	}
	return nil
}

// hasHostTables reports whether the database has the host's tables yet:
// reads of a database that has none answer nothing and create nothing.
func hasHostTables(ctx context.Context, q querier) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_damper_host_runs'`).Scan(&n)
	return n > 0, err
}
