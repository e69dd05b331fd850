// The host's tables in the Durable Object's SQLite (docs/abi.md, "Storage:
// who owns which table"): the event log and the run ledger, the Workers
// host's copy of internal/host's eventlog.go and ledger.go. The Durable
// Object writes them with ctx.storage.sql directly, outside the guest's
// batches; their schema is HOST_MIGRATIONS (worker/schema.js, generated).
//
// No cloudflare: imports here, so Node can load it.

import {
  DEFAULT_EVENT_RETENTION, EVENT_TYPES, HOST_MIGRATIONS, KEEP_RUNS, MAX_EVENT_DATA, PRUNE_EVERY,
} from "./schema.js";

const KNOWN_TYPES = new Set(EVENT_TYPES);
const TERMINAL = new Set(["run.finish", "run.error", "run.cancel"]);

/** Run statuses (internal/host's). */
export const RUN_QUEUED = "queued";
export const RUN_RUNNING = "running";
export const RUN_DONE = "done";
export const RUN_FAILED = "failed";
export const RUN_CANCELED = "canceled";

/** Whether a status ends a run. */
export function finished(status) {
  return status === RUN_DONE || status === RUN_FAILED || status === RUN_CANCELED;
}

/** Whether an event type ends a run's stream. */
export function terminal(type) {
  return TERMINAL.has(type);
}

/**
 * Why an emitted event may not be appended, or null: the checks of
 * internal/host's checkEvent, with its messages.
 * @param {{type?: any, data?: any}} ev
 * @returns {string|null}
 */
export function eventProblem(ev) {
  if (!ev || typeof ev.type !== "string" || !KNOWN_TYPES.has(ev.type)) {
    return `emit: ${JSON.stringify(ev?.type ?? null)} is not an event type (see runtime/event)`;
  }
  if (ev.data !== undefined && ev.data !== null) {
    const n = new TextEncoder().encode(JSON.stringify(ev.data)).length;
    if (n > MAX_EVENT_DATA) return `emit: a ${ev.type} event's data is ${n} bytes, over ${MAX_EVENT_DATA}`;
  }
  return null;
}

const RUN_COLUMNS = `run, agent, instance, status, mode, payload, model, sandbox, created_at, started_at, finished_at,
  attempts, result, error, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost`;

/**
 * One agent instance's event log and run ledger, and the feed its streams
 * wait on.
 */
export class HostLog {
  /**
   * @param {any} storage the Durable Object's ctx.storage (sql, transactionSync)
   * @param {object} [opts]
   * @param {number} [opts.retention] events kept, the newest
   */
  constructor(storage, { retention = DEFAULT_EVENT_RETENTION } = {}) {
    this.storage = storage;
    this.retention = retention;
    this.ready = false;
    this.finishes = 0;
    /** @type {Set<() => void>} woken at every append, and at close */
    this.waiters = new Set();
    /** @type {Map<string, (e: object) => void>} a run's listener */
    this.listeners = new Map();
    this.generation = 0; // grows at destroy: streams of the old log end
  }

  sql(query, ...args) {
    return this.storage.sql.exec(query, ...args);
  }

  /** Brings the host tables to the latest version (once per object). */
  migrate() {
    if (this.ready) return;
    this.storage.transactionSync(() => {
      this.sql("CREATE TABLE IF NOT EXISTS _damper_host_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
      const have = this.sql("SELECT COALESCE(MAX(version), 0) AS v FROM _damper_host_migrations").one().v;
      const latest = HOST_MIGRATIONS.length - 1;
      if (have > latest) throw new Error(`the host tables are at version ${have}, newer than this damper's ${latest}`);
      for (let v = have + 1; v <= latest; v++) {
        for (const stmt of HOST_MIGRATIONS[v]) this.sql(stmt);
        this.sql("INSERT INTO _damper_host_migrations (version, applied_at) VALUES (?, ?)", v, Date.now());
      }
    });
    this.ready = true;
  }

  /** Whether the host tables exist: a read of a database without them creates nothing. */
  hasTables() {
    if (this.ready) return true;
    return this.sql("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_damper_host_runs'").one().n > 0;
  }

  /**
   * Appends events of `run` in one transaction, numbering them, adds the
   * usage and cost of turn.finish events to the run's row, and wakes the
   * streams. Each event's data is a JSON value (or absent).
   * @param {string} run
   * @param {string} agent
   * @param {string} instance
   * @param {{type: string, session?: string, turn?: string, call?: string, data?: any, rawData?: string}[]} events
   *   (rawData: the data as JSON text, written as it is)
   * @returns {object[]} the envelopes, data as JSON text
   */
  append(run, agent, instance, events) {
    if (events.length === 0) return [];
    this.migrate();
    const time = Date.now();
    const envs = this.storage.transactionSync(() => {
      const out = [];
      for (const ev of events) {
        const data = ev.rawData ?? (ev.data === undefined || ev.data === null ? null : JSON.stringify(ev.data));
        const seq = this.sql(`INSERT INTO _damper_host_events (seq, time, type, run, session, turn, call, data)
          SELECT COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ? FROM _damper_host_events RETURNING seq`,
        time, ev.type, run || null, ev.session || null, ev.turn || null, ev.call || null, data).one().seq;
        out.push({ seq, time, type: ev.type, agent, instance, run, session: ev.session, turn: ev.turn, call: ev.call, data });
        if (ev.type === "turn.finish" && run) this.addSpend(run, ev.data);
      }
      const first = out[0].seq;
      const last = out[out.length - 1].seq;
      if (Math.floor((first - 1) / PRUNE_EVERY) !== Math.floor(last / PRUNE_EVERY) && last > this.retention) {
        this.sql("DELETE FROM _damper_host_events WHERE seq <= ?", last - this.retention);
      }
      return out;
    });
    for (const e of envs) this.listeners.get(e.run)?.(e);
    this.wake();
    return envs;
  }

  addSpend(run, data) {
    const u = data?.usage ?? {};
    const n = (x) => (Number.isFinite(x) ? x : 0);
    this.sql(`UPDATE _damper_host_runs SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ?,
      cache_read_tokens = cache_read_tokens + ?, cache_write_tokens = cache_write_tokens + ?, cost = cost + ? WHERE run = ?`,
    n(u.input_tokens), n(u.output_tokens), n(u.cache_read_tokens), n(u.cache_write_tokens), n(data?.cost), run);
  }

  wake() {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w();
  }

  /** A promise settled at the next append (or destroy). */
  next() {
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  /**
   * Up to `limit` events after seq `after`, in order, only `run`'s when set.
   * @returns {object[]} envelopes, data as JSON text
   */
  read(after, run, limit, agent, instance) {
    if (!this.hasTables()) return [];
    const rows = run
      ? this.sql("SELECT seq, time, type, run, session, turn, call, data FROM _damper_host_events WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?", run, after, limit).toArray()
      : this.sql("SELECT seq, time, type, run, session, turn, call, data FROM _damper_host_events WHERE seq > ? ORDER BY seq LIMIT ?", after, limit).toArray();
    return rows.map((r) => ({
      seq: r.seq, time: r.time, type: r.type, agent, instance, run: r.run ?? "",
      session: r.session ?? undefined, turn: r.turn ?? undefined, call: r.call ?? undefined, data: r.data,
    }));
  }

  /** Records a run as queued, before anything of it runs. */
  recordRun({ id, agent, instance, mode, payload, model = "", sandbox = "" }) {
    this.migrate();
    this.sql(`INSERT INTO _damper_host_runs (run, agent, instance, status, mode, payload, model, sandbox, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, agent, instance, RUN_QUEUED, mode, payload, model, sandbox, Date.now());
  }

  /** Marks a run running and counts the attempt; returns its row. */
  startRun(run) {
    this.migrate();
    return this.one(`UPDATE _damper_host_runs SET status = ?, attempts = attempts + 1, started_at = COALESCE(started_at, ?)
      WHERE run = ? RETURNING ${RUN_COLUMNS}`, RUN_RUNNING, Date.now(), run);
  }

  /**
   * Records how a run ended; returns its row with its totals.
   * @param {string} run
   * @param {string} status
   * @param {string|null} result JSON text, when done
   * @param {{type: string, message: string, status?: number}|null} error
   */
  finishRun(run, status, result, error) {
    this.migrate();
    const row = this.one(`UPDATE _damper_host_runs SET status = ?, finished_at = ?, result = ?, error = ?
      WHERE run = ? RETURNING ${RUN_COLUMNS}`, status, Date.now(), result, error ? JSON.stringify(error) : null, run);
    if (++this.finishes % 32 === 0) {
      this.sql(`DELETE FROM _damper_host_runs WHERE status IN (?, ?, ?) AND run NOT IN
        (SELECT run FROM _damper_host_runs ORDER BY created_at DESC LIMIT ?)`, RUN_DONE, RUN_FAILED, RUN_CANCELED, KEEP_RUNS);
    }
    return row;
  }

  one(query, ...args) {
    const rows = this.sql(query, ...args).toArray();
    if (rows.length === 0) throw new Error(`the run is not in the ledger`);
    return rows[0];
  }

  /** Removes a synchronous run the guest refused: bad input leaves nothing. */
  forgetRun(run) {
    if (this.hasTables()) this.sql("DELETE FROM _damper_host_runs WHERE run = ?", run);
  }

  /** A run's row, or null. */
  getRun(run) {
    if (!this.hasTables()) return null;
    return this.sql(`SELECT ${RUN_COLUMNS} FROM _damper_host_runs WHERE run = ?`, run).toArray()[0] ?? null;
  }

  /** Up to `limit` runs, the newest first. */
  runs(limit) {
    if (!this.hasTables()) return [];
    return this.sql(`SELECT ${RUN_COLUMNS} FROM _damper_host_runs ORDER BY created_at DESC, rowid DESC LIMIT ?`, limit).toArray();
  }

  /** The runs queued or running, the oldest first. */
  unfinished() {
    if (!this.hasTables()) return [];
    return this.sql(`SELECT ${RUN_COLUMNS} FROM _damper_host_runs WHERE status IN (?, ?) ORDER BY created_at, rowid`,
      RUN_QUEUED, RUN_RUNNING).toArray();
  }

  /** After the database was deleted: the tables are gone, streams end. */
  reset() {
    this.ready = false;
    this.generation++;
    this.wake();
  }
}

/**
 * An envelope's JSON, as runtime/event.Envelope writes it (its data, JSON
 * text, as it is).
 */
export function envelopeJSON(e) {
  let s = `{"seq":${e.seq},"time":${JSON.stringify(new Date(e.time).toISOString())},"type":${JSON.stringify(e.type)}` +
    `,"agent":${JSON.stringify(e.agent)},"instance":${JSON.stringify(e.instance)}`;
  for (const k of ["run", "session", "turn", "call"]) {
    if (e[k]) s += `,"${k}":${JSON.stringify(e[k])}`;
  }
  if (e.data !== null && e.data !== undefined) s += `,"data":${e.data}`;
  return s + "}";
}

/** A ledger row as GET …/runs/{run} answers it (internal/host.Run's JSON). */
export function runJSON(row) {
  const iso = (ms) => (ms === null || ms === undefined ? undefined : new Date(ms).toISOString());
  const usage = { input_tokens: row.input_tokens, output_tokens: row.output_tokens };
  if (row.cache_read_tokens) usage.cache_read_tokens = row.cache_read_tokens;
  if (row.cache_write_tokens) usage.cache_write_tokens = row.cache_write_tokens;
  let error;
  if (row.error) {
    const e = JSON.parse(row.error);
    error = { type: e.type, message: e.message };
  }
  const head = {
    run: row.run, agent: row.agent, instance: row.instance, status: row.status, mode: row.mode,
    model: row.model || undefined, sandbox: row.sandbox || undefined,
    created: iso(row.created_at), started: iso(row.started_at), finished: iso(row.finished_at),
    attempts: row.attempts,
  };
  // The result goes out as the module wrote it, so big integers stay exact.
  const text = JSON.stringify(head).slice(0, -1);
  const result = row.result !== null && row.result !== undefined ? `,"result":${row.result}` : "";
  const tail = JSON.stringify({ error, usage, cost: row.cost }).slice(1);
  return `${text}${result},${tail}`;
}

/** The usage, cost and duration of a row, for a run's last event. */
export function spend(row) {
  const usage = { input_tokens: row.input_tokens, output_tokens: row.output_tokens };
  if (row.cache_read_tokens) usage.cache_read_tokens = row.cache_read_tokens;
  if (row.cache_write_tokens) usage.cache_write_tokens = row.cache_write_tokens;
  const end = row.finished_at ?? Date.now();
  return { usage, cost: row.cost, duration_ms: row.started_at ? end - row.started_at : 0 };
}
