// The runs of one agent instance: one module instance (created lazily,
// recreated after a trap), runs serialized first come first served with a
// bounded queue, and the effect loop of docs/abi.md:
// start -> batch -> perform all effects concurrently -> resume with every
// result -> ... -> done.
//
// No cloudflare: imports here: build/bench-worker.mjs drives a Runner in Node.

import { GuestModule, ModuleTrap, errorMessage } from "./module.js";
import { TaskState } from "./effects.js";

/** At most this many runs wait behind the running one; more answer 429 busy. */
export const MAX_WAITING = 256;

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
   */
  constructor({ wasm, effects, idleMs = IDLE_MS, secrets = null, targets = new Map() }) {
    this.wasm = wasm;
    this.effects = effects;
    this.idleMs = idleMs;
    this.secrets = secrets;
    this.targets = Object.fromEntries(targets);
    this.idleTimer = null;
    /** @type {GuestModule|null} */
    this.module = null;
    this.waiting = 0; // runs queued behind the running one
    this.running = false;
    this.tail = Promise.resolve(); // settles when the last queued run ends
    this.taskSeq = 0;
  }

  /**
   * Runs `agent` on this agent instance, after every run that arrived first.
   * @param {string} agent
   * @param {string} instance the agent instance's id
   * @param {string} payload the request body: one JSON value, passed on as
   *   its text so numbers reach the module exactly
   * @returns {Promise<Reply>}
   */
  async run(agent, instance, payload) {
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
      return await this.execute(agent, instance, payload);
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

  /** Runs one task to its end on the (possibly new) module instance. */
  async execute(agent, instance, payload) {
    const runId = "r_" + randomHex(12);
    let mod;
    try {
      mod = await this.instance(`${agent}/${instance}`);
    } catch (e) {
      if (e instanceof ModuleTrap) return errorReply(500, "module_trap", e.message);
      throw e;
    }
    const task = new TaskState(`t${++this.taskSeq}`, { agent, instance, run: runId }, this.secrets?.agent(agent));
    try {
      const head = JSON.stringify({ task: task.id, kind: "run", agent, instance, run: runId, targets: this.targets });
      let out = mod.callRaw("damper_start", `${head.slice(0, -1)},"payload":${payload}}`);
      while (!out.value?.done) {
        const effects = out.value?.effects;
        if (!Array.isArray(effects) || effects.length === 0) {
          // Output outside the ABI: the instance cannot be trusted any more.
          mod.kill();
          throw new ModuleTrap(`task ${task.id}: the module returned neither effects nor a result`);
        }
        const results = await Promise.all(effects.map((e) => this.effects.perform(e, task)));
        out = mod.callRaw("damper_resume", { task: task.id, results });
      }
      return doneReply(runId, out);
    } catch (e) {
      if (!(e instanceof ModuleTrap)) throw e;
      console.error(`[${agent}/${instance}] module instance trapped in run ${runId}: ${e.message}`);
      return errorReply(500, "module_trap", `the module instance trapped: ${e.message}`);
    } finally {
      task.release();
      if (mod.dead && this.module === mod) this.module = null; // the next run gets a fresh one
    }
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
