// The host's tables and the event log's constants for the Workers host,
// the same as internal/host's and runtime/event's. Generated: edit those,
// then run
//   go test ./internal/host -run TestWorkerSchema -update
// (No cloudflare: imports here: Node loads this file in tests.)

/** The host tables' migrations, by version (internal/host.HostMigrations). */
export const HOST_MIGRATIONS = [
  null,
  [
    "CREATE TABLE _damper_host_events ( seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, type TEXT NOT NULL, run TEXT, session TEXT, turn TEXT, call TEXT, data TEXT )",
    "CREATE INDEX _damper_host_events_by_run ON _damper_host_events (run, seq)",
    "CREATE TABLE _damper_host_runs ( run TEXT PRIMARY KEY, agent TEXT NOT NULL, instance TEXT NOT NULL, status TEXT NOT NULL, mode TEXT NOT NULL, payload TEXT NOT NULL, model TEXT NOT NULL DEFAULT '', sandbox TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0, result TEXT, error TEXT, input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0, cache_read_tokens INTEGER NOT NULL DEFAULT 0, cache_write_tokens INTEGER NOT NULL DEFAULT 0, cost REAL NOT NULL DEFAULT 0 )",
    "CREATE INDEX _damper_host_runs_by_created ON _damper_host_runs (created_at)",
    "CREATE INDEX _damper_host_runs_by_status ON _damper_host_runs (status)",
  ],
];
/** Every host table's name begins so; a guest statement naming one is refused. */
export const HOST_TABLE_PREFIX = "_damper_host_";
/** The sql_error for such a statement. */
export const HOST_TABLES_MESSAGE = "tables named _damper_host_* belong to the host (the event log and the run ledger): a statement may not name them";
/** The closed set of event types (runtime/event). */
export const EVENT_TYPES = ["run.start","run.finish","run.error","run.cancel","turn.start","turn.finish","text.delta","thinking.delta","model.retry","tool.start","tool.finish","tool.error","shell.exec","shell.exit","policy.allow","policy.deny","policy.report","egress.allow","egress.deny","result.retry","compaction.start","compaction.finish","subagent.start","subagent.finish","log"];
/** An emitted event's data is at most this many bytes. */
export const MAX_EVENT_DATA = 262144;
/** Events an agent instance's log keeps, the newest. */
export const DEFAULT_EVENT_RETENTION = 10000;
/** Appends between two prunes of the log. */
export const PRUNE_EVERY = 64;
/** Finished runs the ledger keeps, the newest. */
export const KEEP_RUNS = 1000;
/** A run is started at most this many times. */
export const MAX_ATTEMPTS = 3;
