// The runs of one agent instance: one module instance (created lazily,
// recreated after a trap), runs serialized first come first served with a
// bounded queue, and the effect loop of docs/abi.md:
// start -> batch -> perform all effects concurrently -> resume with every
// result -> ... -> done.
//
// No cloudflare: imports here: build/bench-worker.mjs drives a Runner in Node.

import { MAX_WAITING } from "./abi.js";
import { GuestModule, ModuleTrap, errorMessage } from "./module.js";
import { BodyBudget, TaskState } from "./effects.js";
import { spend } from "./eventlog.js";
import { MAX_ATTEMPTS } from "./schema.js";

export { MAX_WAITING };

/**
 * A run still going after this long is canceled (damper_cancel) and answers
 * 504 canceled (docs/http.md), unless DAMPER_RUN_TIMEOUT says otherwise;
 * `damper serve --run-timeout` has the same default.
 */
export const DEFAULT_RUN_TIMEOUT_MS = 5 * 60_000;

/**
 * A module instance idle this long is dropped (about 8 MiB of memory in an
 * isolate that the Durable Objects placed in it share); state is in storage.
 */
export const IDLE_MS = 60_000;

/**
 * @typedef {object} Reply what a run answers over HTTP
 * @property {number} status
 * @property {string} body JSON text
 */

/** Serializes and drives the runs of one agent instance. */
export class Runner {
  /**
   * @param {object} opts
   * @param {WebAssembly.Module} opts.wasm the compiled damper module
   * @param {{perform(effect: any, task: TaskState): Promise<any>}} opts.effects the performer
   * @param {number} [opts.idleMs] drop the module instance after this long
   *   without a run (0: keep it)
   * @param {{agent(name: string): import("./secrets.js").AgentSecrets}} [opts.secrets]
   *   each agent's secrets (none when absent: nothing substituted or scrubbed)
   * @param {Map<string, string>} [opts.targets] service target overrides,
   *   passed to the guest in every damper_start
   * @param {number} [opts.runTimeoutMs] cancel a run that has not finished
   *   after this long (0: no limit)
   * @param {{model?: string, sandbox?: string, telemetry?: object}} [opts.settings] the default
   *   model and the sandbox kind override (DAMPER_MODEL, DAMPER_SANDBOX),
   *   and the span export, passed to the guest in every damper_start
   * @param {import("./eventlog.js").HostLog} [opts.log] the agent instance's
   *   event log and run ledger: without one (Node's tests and benchmarks)
   *   runs are neither recorded nor resumed, and emit no host events
   * @param {() => void} [opts.onRecorded] called when a run is recorded or
   *   starts: the Durable Object keeps an alarm set while runs are unfinished
   */
  constructor({ wasm, effects, idleMs = IDLE_MS, secrets = null, targets = new Map(), runTimeoutMs = DEFAULT_RUN_TIMEOUT_MS, settings = {}, log = null, onRecorded = null }) {
    this.wasm = wasm;
    this.effects = effects;
    this.idleMs = idleMs;
    this.runTimeoutMs = runTimeoutMs;
    this.secrets = secrets;
    this.targets = Object.fromEntries(targets);
    this.settings = settings;
    /** The telemetry endpoint's origin: request bodies sent there are scrubbed (effects.js). */
    this.collector = collectorOrigin(settings?.telemetry?.endpoint);
    this.log = log;
    this.onRecorded = onRecorded ?? (() => {});
    this.idleTimer = null;
    /** The whole bodies this agent instance's tasks hold at once. */
    this.bodies = new BodyBudget();
    /** @type {GuestModule|null} */
    this.module = null;
    this.waiting = 0; // runs queued behind the running one
    this.running = false;
    this.tail = Promise.resolve(); // settles when the last queued run ends
    this.taskSeq = 0;
    /** @type {Map<string, RunRequest>} queued and running, by run id */
    this.runs = new Map();
    /** The running run's id, whose sandbox's egress tasks run beside it. */
    this.currentRun = null;
  }

  /** Whether runs are queued or running here. */
  busy() {
    return this.runs.size > 0;
  }

  /**
   * Runs `agent` on this agent instance, after every run that arrived
   * first, and answers with its result (a synchronous run: recorded once
   * the guest has accepted its payload, so bad input leaves nothing).
   * @param {string} agent
   * @param {string} instance the agent instance's id
   * @param {string} payload the request body: one JSON value, passed on as
   *   its text so numbers reach the module exactly
   * @param {object} [opts]
   * @param {AbortSignal} [opts.signal] aborts when the caller is gone: a run
   *   still waiting never starts, a running one is canceled
   * @returns {Promise<Reply>}
   */
  async run(agent, instance, payload, { signal } = {}) {
    const req = this.newRequest(agent, instance, payload, "sync");
    if (!req) return busyReply(agent, instance);
    const onCaller = () => req.abort.abort({ reason: "caller_gone", message: "the caller is gone" });
    if (signal?.aborted) onCaller();
    signal?.addEventListener("abort", onCaller, { once: true });
    try {
      await this.enqueue(req);
      return req.reply;
    } finally {
      signal?.removeEventListener("abort", onCaller);
    }
  }

  /**
   * Accepts a run in the background (mode "background" or "stream"):
   * records it queued, queues it, and returns at once.
   * @returns {{reply?: Reply, run?: string, done?: Promise<void>}}
   */
  start(agent, instance, payload, mode) {
    const req = this.newRequest(agent, instance, payload, mode);
    if (!req) return { reply: busyReply(agent, instance) };
    this.log.recordRun({ id: req.id, agent, instance, mode, payload, model: req.model, sandbox: req.sandbox });
    req.recorded = true;
    this.onRecorded();
    return { run: req.id, done: this.enqueue(req) };
  }

  /**
   * Queues runs a restart left unfinished in the ledger (rows, the oldest
   * first), with their ids.
   */
  resume(rows) {
    for (const row of rows) {
      if (this.runs.has(row.run)) continue;
      const req = this.newRequest(row.agent, row.instance, row.payload, row.mode, row);
      if (!req) {
        this.failRow(row, `run ${row.run} was interrupted and cannot resume: agent instance ${row.agent}/${row.instance} already has ${MAX_WAITING} runs waiting`);
        continue;
      }
      console.log(`[${row.agent}/${row.instance}] resuming interrupted run ${row.run} (attempts so far: ${row.attempts})`);
      this.enqueue(req);
    }
  }

  /** Ends a recorded run that will not run again, with interrupted. */
  failRow(row, message) {
    const error = { type: "interrupted", message, status: 500 };
    const end = this.log.finishRun(row.run, "failed", null, error);
    this.log.append(row.run, row.agent, row.instance, [{ type: "run.error", data: { ...error, ...spend(end) } }]);
  }

  /**
   * Cancels a queued or running run; resolves with its ledger row once it
   * has ended, or null when it is not running here.
   */
  async cancel(runId, reason, message) {
    const req = this.runs.get(runId);
    if (!req) return null;
    req.abort.abort({ reason, message });
    if (!req.taken) {
      // Still waiting behind another run: it ends now, not when its turn
      // comes (its turn then passes it by).
      req.taken = true;
      this.endCanceled(req);
      this.runs.delete(req.id);
      return this.log?.getRun(runId) ?? null;
    }
    await req.done;
    return this.log?.getRun(runId) ?? null;
  }

  newRequest(agent, instance, payload, mode, row = null) {
    if (this.waiting >= MAX_WAITING) return null;
    /** @type {RunRequest} */
    const req = {
      id: row?.run ?? "r_" + randomHex(12),
      agent, instance, payload, mode,
      model: row ? row.model : (this.settings.model || ""),
      sandbox: row ? row.sandbox : (this.settings.sandbox || ""),
      recorded: row !== null,
      attempts: row?.attempts ?? 0,
      abort: new AbortController(),
      reply: null,
      done: null,
      taken: false,
    };
    return req;
  }

  /** Queues req behind the runs before it; settles when it has ended. */
  enqueue(req) {
    this.waiting++;
    this.runs.set(req.id, req);
    clearTimeout(this.idleTimer);
    const before = this.tail;
    let release;
    this.tail = new Promise((resolve) => (release = resolve));
    req.done = (async () => {
      await before;
      this.waiting--;
      if (req.taken) { // canceled while it waited
        release();
        return;
      }
      req.taken = true;
      this.running = true;
      try {
        await this.execute(req);
      } catch (e) {
        req.reply = errorReply(500, "internal", errorMessage(e));
        console.error(`[${req.agent}/${req.instance}] run ${req.id}: ${e?.stack ?? e}`);
      } finally {
        this.runs.delete(req.id);
        this.running = false;
        release();
        if (this.waiting === 0 && this.idleMs > 0) {
          this.idleTimer = setTimeout(() => {
            if (this.waiting === 0 && !this.running) this.module = null;
          }, this.idleMs);
        }
      }
    })();
    return req.done;
  }

  /**
   * Runs req to its end, recording each step in the ledger and the event
   * log: started (running, attempt n), then done, failed or canceled. A
   * module instance that traps is replaced and the run starts again, up to
   * MAX_ATTEMPTS, as on the local host (local/host.go execute).
   */
  async execute(req) {
    if (req.abort.signal.aborted) return this.endCanceled(req);
    for (;;) {
      if (req.recorded && this.log) {
        const row = this.log.startRun(req.id);
        req.attempts = row.attempts;
        this.onRecorded();
        if (row.attempts > MAX_ATTEMPTS) {
          return this.fail(req, 500, "interrupted", `run ${req.id} was started ${MAX_ATTEMPTS} times and interrupted each time ` +
            "(its module instance or its Durable Object was lost); it is not started again");
        }
      } else {
        req.attempts = 1;
      }
      const { out, trap, started } = await this.attempt(req);
      if (trap) {
        console.error(`[${req.agent}/${req.instance}] module instance trapped in run ${req.id} (attempt ${req.attempts}): ${trap.message}`);
        if (!req.recorded || !this.log || req.attempts >= MAX_ATTEMPTS || req.abort.signal.aborted) {
          return this.fail(req, 500, "module_trap", `the module instance trapped: ${trap.message}`);
        }
        continue;
      }
      return this.end(req, out, started);
    }
  }

  /**
   * Starts req once on the (possibly new) module instance and drives it to
   * its end. When the run timeout passes or the run is canceled, the batch
   * in flight is cut short (its fetches and sleeps aborted, its bodies
   * cancelled) and the task is canceled in the guest (damper_cancel)
   * instead of resumed, as the local host does: what it committed stays.
   */
  async attempt(req) {
    this.currentRun = req.id;
    let mod;
    try {
      mod = await this.instance(`${req.agent}/${req.instance}`);
    } catch (e) {
      if (e instanceof ModuleTrap) return { trap: e, started: false };
      throw e;
    }
    const signal = req.abort.signal;
    const timer = this.runTimeoutMs > 0 ? setTimeout(() => req.abort.abort({
      reason: "timeout", status: 504,
      message: `the run did not finish within the run timeout (${goDuration(this.runTimeoutMs)}) and was canceled; what it committed stays`,
    }), this.runTimeoutMs) : null;
    const task = new TaskState(`t${++this.taskSeq}`, { agent: req.agent, instance: req.instance, run: req.id }, this.secrets?.agent(req.agent), signal, this.bodies);
    task.collector = this.collector;
    // Fetches and sleeps end on the signal themselves; reads end when their
    // bodies are cancelled. So the batch in flight settles at once.
    const onAbort = () => task.release();
    signal.addEventListener("abort", onAbort, { once: true });
    let started = false;
    try {
      const head = JSON.stringify({ task: task.id, kind: "run", agent: req.agent, instance: req.instance, run: req.id,
        targets: this.targets, model: req.model || undefined, sandbox: req.sandbox || undefined,
        attempt: req.attempts, telemetry: this.settings.telemetry || undefined });
      let out = mod.callRaw("damper_start", `${head.slice(0, -1)},"payload":${req.payload}}`);
      started = this.started(req, out);
      while (!out.value?.done) {
        const effects = out.value?.effects;
        if (!Array.isArray(effects) || effects.length === 0) {
          // Output outside the ABI: the instance cannot be trusted any more.
          mod.kill();
          throw new ModuleTrap(`task ${task.id}: the module returned neither effects nor a result`);
        }
        const results = await Promise.all(effects.map((e) => this.effects.perform(e, task)));
        if (signal.aborted) {
          out = mod.callRaw("damper_cancel", { task: task.id });
          if (!out.value?.done) {
            mod.kill();
            throw new ModuleTrap(`task ${task.id}: damper_cancel returned a batch`);
          }
          break;
        }
        out = mod.callRaw("damper_resume", { task: task.id, results });
        task.releaseBodies(); // the guest has them now
      }
      return { out, started };
    } catch (e) {
      if (!(e instanceof ModuleTrap)) throw e;
      return { trap: e, started };
    } finally {
      this.currentRun = null;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      task.release();
      if (mod.dead && this.module === mod) this.module = null; // the next run gets a fresh one
    }
  }

  /**
   * What damper_start's output means for the ledger: a synchronous run is
   * recorded now, unless the guest refused it before anything ran; and
   * run.start comes before the run's first events.
   */
  started(req, out) {
    if (!this.log) return true;
    if (out.value?.done && out.value?.error && !req.recorded) return false;
    if (!req.recorded) {
      this.log.recordRun({ id: req.id, agent: req.agent, instance: req.instance, mode: req.mode, payload: req.payload, model: req.model, sandbox: req.sandbox });
      req.attempts = this.log.startRun(req.id).attempts;
      req.recorded = true;
      this.onRecorded();
    }
    const data = { attempt: req.attempts };
    if (req.model) data.model = req.model;
    if (req.sandbox) data.sandbox = req.sandbox;
    this.event(req, "run.start", data);
    return true;
  }

  /** Records how a run the guest finished ended, and its reply. */
  end(req, out, started) {
    const { value, text } = scrubOutput(out, this.secrets?.agent(req.agent).scrubber);
    if (!value.error) {
      // The result goes out as the module wrote it, so big integers stay exact.
      const result = rawMember(text, "result") ?? "null";
      req.reply = { status: 200, body: `{"run":${JSON.stringify(req.id)},"result":${result}}` };
      if (req.recorded && this.log) {
        const row = this.log.finishRun(req.id, "done", result, null);
        this.event(req, "run.finish", spend(row), result);
      }
      return;
    }
    if (value.error.type === "canceled" && req.abort.signal.aborted) return this.endCanceled(req);
    const err = value.error;
    const status = Number.isInteger(err.status) && err.status >= 400 && err.status <= 599 ? err.status : 500;
    const details = err.details !== undefined ? rawMember(rawMember(text, "error"), "details") : undefined;
    if (!started && !req.recorded) {
      req.reply = errorReply(status, String(err.type ?? "agent_error"), String(err.message ?? ""), details);
      return;
    }
    this.fail(req, status, String(err.type ?? "agent_error"), String(err.message ?? ""), details);
  }

  /** Records a canceled run (its reason in the abort's reason). */
  endCanceled(req) {
    const why = req.abort.signal.reason ?? {};
    const reason = why.reason ?? "requested";
    const message = why.message ?? "the run was canceled";
    const status = why.status ?? 500;
    req.reply = errorReply(status, "canceled", message);
    if (!req.recorded || !this.log) return;
    const row = this.log.finishRun(req.id, "canceled", null, { type: "canceled", message, status });
    this.event(req, "run.cancel", { reason, message, ...spend(row) });
  }

  /** Records a failed run; details is the JSON text of the error's details, if any. */
  fail(req, status, type, message, details) {
    req.reply = errorReply(status, type, message, details);
    if (!req.recorded || !this.log) return;
    const row = this.log.finishRun(req.id, "failed", null, { type, message, status });
    this.event(req, "run.error", { type, message, status, ...spend(row) });
  }

  /** Appends an event the host writes. */
  event(req, type, data, resultText) {
    if (!this.log) return;
    const ev = { type, data };
    if (resultText !== undefined) {
      // run.finish carries the result as the module wrote it.
      ev.rawData = `{"result":${resultText},${JSON.stringify(data).slice(1)}`;
    }
    this.log.append(req.id, req.agent, req.instance, [ev]);
  }

  /**
   * Decides one request of the agent instance's sandbox with an egress task
   * (kind "egress") on the module instance of the running run, beside it, as
   * the local host does: sandboxd ends a command's processes with the
   * command, so a sandbox sends requests only while a run uses it, and a
   * request at another time is denied.
   * @param {string} agent
   * @param {string} instance
   * @param {object} request the wire.EgressRequest
   * @returns {Promise<{decision: any, task: TaskState}>} the wire.EgressDecision, and
   *   the task whose secrets send an allowed request
   */
  async egress(agent, instance, request) {
    const run = this.currentRun;
    const mod = this.module;
    const task = new TaskState(`t${++this.taskSeq}`, { agent, instance, run: run ?? "egress" }, this.secrets?.agent(agent), undefined, this.bodies);
    if (!run || !mod || mod.dead) {
      return { task, decision: { allow: false, method: request.method, url: request.url, reason: "no_run",
        detail: "a sandbox's requests are decided during a run of its agent instance, and none is running" } };
    }
    const head = JSON.stringify({ task: task.id, kind: "egress", agent, instance, run, targets: this.targets });
    let out = mod.callRaw("damper_start", `${head.slice(0, -1)},"payload":${JSON.stringify(request)}}`);
    while (!out.value?.done) {
      const effects = out.value?.effects;
      if (!Array.isArray(effects) || effects.length === 0) {
        mod.kill();
        throw new ModuleTrap(`task ${task.id}: the module returned neither effects nor a result`);
      }
      const results = await Promise.all(effects.map((e) => this.effects.perform(e, task)));
      out = mod.callRaw("damper_resume", { task: task.id, results });
      task.releaseBodies();
    }
    if (out.value.error) throw new Error(`egress task: ${out.value.error.type}: ${out.value.error.message}`);
    return { task, decision: out.value.result };
  }

  /** The live module instance, created on first use or after a trap. */
  async instance(label) {
    if (!this.module || this.module.dead) {
      this.module = null;
      this.module = await GuestModule.instantiate(this.wasm, { label });
    }
    return this.module;
  }
}

/**
 * @typedef {object} RunRequest one run this object has taken
 * @property {string} id
 * @property {string} agent
 * @property {string} instance
 * @property {string} payload JSON text
 * @property {string} mode sync, stream or background
 * @property {string} model
 * @property {string} sandbox
 * @property {boolean} recorded whether the ledger has it
 * @property {number} attempts
 * @property {AbortController} abort aborted with {reason, message, status?} to cancel it
 * @property {Reply|null} reply how it ended, for a synchronous caller
 * @property {Promise<void>|null} done settles when it has ended here
 * @property {boolean} taken its turn came, or a cancel ended it while it waited
 */

function busyReply(agent, instance) {
  return errorReply(429, "busy", `agent instance ${agent}/${instance} already has ${MAX_WAITING} runs waiting`);
}

/**
 * An AbortSignal that aborts when `stream` ends or errors, and a function
 * that stops watching it. The Worker passes each run's Durable Object call a
 * stream it never writes nor closes: workerd errors it on the Durable
 * Object's side when the Worker's invocation ends, which happens before the
 * run answers only when the client has gone (docs/architecture.md).
 * @param {ReadableStream|null|undefined} stream
 * @returns {{signal: AbortSignal|undefined, stop: () => void}}
 */
export function callerSignal(stream) {
  if (!stream) return { signal: undefined, stop: () => {} };
  const ac = new AbortController();
  const reader = stream.getReader();
  reader.read().then(() => ac.abort("caller"), () => ac.abort("caller"));
  return { signal: ac.signal, stop: () => reader.cancel().catch(() => {}) };
}

/**
 * Parses DAMPER_RUN_TIMEOUT: a Go duration (`time.ParseDuration`: "90s",
 * "5m", "1h30m", "0" for no limit), as `damper serve --run-timeout` takes it.
 * Unset or empty is the default.
 * @param {string|undefined} value
 * @returns {{ms: number, problem?: string}}
 */
export function parseRunTimeout(value) {
  if (value === undefined || value === "") return { ms: DEFAULT_RUN_TIMEOUT_MS };
  const ms = parseGoDuration(value);
  if (ms === null || ms < 0) {
    return { ms: 0, problem: `DAMPER_RUN_TIMEOUT ${JSON.stringify(value)} is not a duration ` +
      `such as "90s", "5m" or "1h30m" ("0": no limit)` };
  }
  return { ms };
}

const UNIT_MS = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration, in milliseconds; null when Go would refuse it. */
function parseGoDuration(s) {
  let i = 0;
  let sign = 1;
  if (s[0] === "-" || s[0] === "+") {
    sign = s[0] === "-" ? -1 : 1;
    i++;
  }
  if (s.slice(i) === "0") return 0;
  if (i === s.length) return null;
  let total = 0;
  const part = /^(\d*)(\.\d*)?(ns|us|µs|μs|ms|s|m|h)/;
  while (i < s.length) {
    const m = part.exec(s.slice(i));
    if (!m || (m[1] === "" && (m[2] ?? ".").length < 2)) return null;
    total += Number((m[1] || "0") + (m[2] ?? "")) * UNIT_MS[m[3]];
    i += m[0].length;
  }
  return sign * total;
}

/**
 * A duration as Go's time.Duration.String writes it ("5m0s", "1.5s",
 * "250ms"), so both hosts name the run timeout alike.
 * @param {number} ms
 */
export function goDuration(ms) {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = `${(ms % 60_000) / 1000}s`;
  if (h > 0) return `${h}h${m}m${s}`;
  if (m > 0) return `${m}m${s}`;
  return s;
}

/** The origin of a telemetry endpoint, or "" (none, or not a URL). */
function collectorOrigin(endpoint) {
  if (!endpoint) return "";
  try {
    return new URL(endpoint).origin;
  } catch {
    return "";
  }
}

/**
 * The task's output with the agent's secrets scrubbed from its result and
 * error, the last things the host hands out (internal/host's
 * scrubOutput): a service that echoes its own credential split over
 * several pieces of a stream (a model's text deltas) hands the guest the
 * whole of it, which the guest may put in its result.
 * @param {{value: any, text: string}} out
 * @param {import("./scrub.js").Scrubber} [scrubber]
 * @returns {{value: any, text: string}}
 */
export function scrubOutput(out, scrubber) {
  if (!scrubber) return out;
  const text = scrubber.string(out.text);
  if (text === out.text) return out;
  try {
    return { value: JSON.parse(text), text };
  } catch {
    const error = { type: "internal", status: 500, message: "the run's result held a secret of the agent, and was not JSON once it was scrubbed" };
    return { value: { done: true, error }, text: JSON.stringify({ done: true, error }) };
  }
}

/**
 * An error reply: `{"error":{"type","message"}}`, and `details` (JSON text,
 * passed on as the module wrote it) when the guest sent any.
 * @param {number} status
 * @param {string} type
 * @param {string} message
 * @param {string} [details]
 * @returns {Reply}
 */
export function errorReply(status, type, message, details) {
  const body = JSON.stringify({ error: { type, message } });
  if (details === undefined) return { status, body };
  return { status, body: `${body.slice(0, -2)},"details":${details}}}` };
}

/**
 * The JSON text of member `key` of the top-level object in `text` (valid
 * JSON), or undefined. Scans instead of parsing so that numbers keep every
 * digit.
 * @param {string} text
 * @param {string} key
 * @returns {string|undefined}
 */
export function rawMember(text, key) {
  let i = text.indexOf("{") + 1;
  const skipSpace = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const skipString = () => { // text[i] is the opening quote
    for (i++; text[i] !== '"'; i++) if (text[i] === "\\") i++;
    i++;
  };
  const skipValue = () => {
    let depth = 0;
    for (;;) {
      const c = text[i];
      if (c === '"') {
        skipString();
        if (depth === 0) return;
        continue;
      }
      if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        if (depth === 0) return; // end of the enclosing object
        depth--;
        if (depth === 0) { i++; return; }
      } else if (c === "," && depth === 0) return;
      i++;
    }
  };
  for (;;) {
    skipSpace();
    if (text[i] !== '"') return undefined;
    const keyStart = i;
    skipString();
    const name = JSON.parse(text.slice(keyStart, i));
    skipSpace();
    i++; // the colon
    skipSpace();
    const start = i;
    skipValue();
    if (name === key) return text.slice(start, i).trimEnd();
    skipSpace();
    if (text[i] !== ",") return undefined;
    i++;
  }
}

/** @param {number} n bytes of randomness */
export function randomHex(n) {
  const b = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
