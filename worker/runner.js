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
   * @param {{model?: string, sandbox?: string}} [opts.settings] the default
   *   model and the sandbox kind override (DAMPER_MODEL, DAMPER_SANDBOX),
   *   passed to the guest in every damper_start
   */
  constructor({ wasm, effects, idleMs = IDLE_MS, secrets = null, targets = new Map(), runTimeoutMs = DEFAULT_RUN_TIMEOUT_MS, settings = {} }) {
    this.wasm = wasm;
    this.effects = effects;
    this.idleMs = idleMs;
    this.runTimeoutMs = runTimeoutMs;
    this.secrets = secrets;
    this.targets = Object.fromEntries(targets);
    this.settings = settings;
    this.idleTimer = null;
    /** The whole bodies this agent instance's tasks hold at once. */
    this.bodies = new BodyBudget();
    /** @type {GuestModule|null} */
    this.module = null;
    this.waiting = 0; // runs queued behind the running one
    this.running = false;
    this.tail = Promise.resolve(); // settles when the last queued run ends
    this.taskSeq = 0;
    /** The running run's id, whose sandbox's egress tasks run beside it. */
    this.currentRun = null;
  }

  /**
   * Runs `agent` on this agent instance, after every run that arrived first.
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
    if (this.waiting >= MAX_WAITING) {
      return errorReply(429, "busy", `agent instance ${agent}/${instance} already has ${MAX_WAITING} runs waiting`);
    }
    this.waiting++;
    clearTimeout(this.idleTimer);
    const before = this.tail;
    let done;
    this.tail = new Promise((resolve) => (done = resolve));
    await before;
    this.waiting--;
    this.running = true;
    try {
      if (signal?.aborted) return errorReply(500, "canceled", "the caller left before the run started");
      return await this.execute(agent, instance, payload, signal);
    } catch (e) {
      return errorReply(500, "internal", errorMessage(e));
    } finally {
      this.running = false;
      done();
      if (this.waiting === 0 && this.idleMs > 0) {
        this.idleTimer = setTimeout(() => {
          if (this.waiting === 0 && !this.running) this.module = null;
        }, this.idleMs);
      }
    }
  }

  /**
   * Runs one task to its end on the (possibly new) module instance. When the
   * run timeout passes or `signal` aborts first, the batch in flight is cut
   * short (its fetches and sleeps aborted, its bodies cancelled) and the task
   * is canceled in the guest (damper_cancel) instead of resumed, as the
   * local host does: what it committed stays.
   */
  async execute(agent, instance, payload, signal) {
    const runId = "r_" + randomHex(12);
    this.currentRun = runId;
    let mod;
    try {
      mod = await this.instance(`${agent}/${instance}`);
    } catch (e) {
      if (e instanceof ModuleTrap) return errorReply(500, "module_trap", e.message);
      throw e;
    }
    const abort = new AbortController();
    const onCaller = () => abort.abort("caller");
    signal?.addEventListener("abort", onCaller, { once: true });
    const timer = this.runTimeoutMs > 0 ? setTimeout(() => abort.abort("timeout"), this.runTimeoutMs) : null;
    const task = new TaskState(`t${++this.taskSeq}`, { agent, instance, run: runId }, this.secrets?.agent(agent), abort.signal, this.bodies);
    // Fetches and sleeps end on the signal themselves; reads end when their
    // bodies are cancelled. So the batch in flight settles at once.
    abort.signal.addEventListener("abort", () => task.release(), { once: true });
    try {
      const head = JSON.stringify({ task: task.id, kind: "run", agent, instance, run: runId, targets: this.targets,
        model: this.settings.model || undefined, sandbox: this.settings.sandbox || undefined });
      let out = mod.callRaw("damper_start", `${head.slice(0, -1)},"payload":${payload}}`);
      while (!out.value?.done) {
        const effects = out.value?.effects;
        if (!Array.isArray(effects) || effects.length === 0) {
          // Output outside the ABI: the instance cannot be trusted any more.
          mod.kill();
          throw new ModuleTrap(`task ${task.id}: the module returned neither effects nor a result`);
        }
        const results = await Promise.all(effects.map((e) => this.effects.perform(e, task)));
        if (abort.signal.aborted) {
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
      if (abort.signal.reason === "timeout" && out.value.error?.type === "canceled") {
        return errorReply(504, "canceled", `the run did not finish within the run timeout ` +
          `(${goDuration(this.runTimeoutMs)}) and was canceled; what it committed stays`);
      }
      return doneReply(runId, out);
    } catch (e) {
      if (!(e instanceof ModuleTrap)) throw e;
      console.error(`[${agent}/${instance}] module instance trapped in run ${runId}: ${e.message}`);
      return errorReply(500, "module_trap", `the module instance trapped: ${e.message}`);
    } finally {
      this.currentRun = null;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onCaller);
      task.release();
      if (mod.dead && this.module === mod) this.module = null; // the next run gets a fresh one
    }
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

/** The HTTP reply for a finished task. */
function doneReply(runId, out) {
  const { value, text } = out;
  if (value.error) {
    const err = value.error;
    const status = Number.isInteger(err.status) && err.status >= 400 && err.status <= 599 ? err.status : 500;
    return errorReply(status, String(err.type ?? "agent_error"), String(err.message ?? ""));
  }
  // The result goes out as the module wrote it, so big integers stay exact.
  const result = rawMember(text, "result") ?? "null";
  return { status: 200, body: `{"run":${JSON.stringify(runId)},"result":${result}}` };
}

/**
 * An error reply: `{"error":{"type","message"}}`.
 * @param {number} status
 * @param {string} type
 * @param {string} message
 * @returns {Reply}
 */
export function errorReply(status, type, message) {
  return { status, body: JSON.stringify({ error: { type, message } }) };
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
