// The effects the Workers host performs for a task (docs/abi.md, "Effects"):
// fetch / read / close, sql, emit, log, sleep. Every effect is answered with
// {id, value} or {id, error}; performing one never throws.
//
// No cloudflare: imports here, so the performer can run under Node too.

import { DEFAULT_READ, MAX_BODIES_IN_FLIGHT, MAX_READ, MAX_RESPONSE_HEAD, MAX_WHOLE_BODY } from "./abi.js";
import { errorMessage } from "./module.js";
import { ACCEPT_ENCODING, bodyAsSent, hostOwnedHeader } from "./headers.js";
import { AgentSecrets, SubstituteError } from "./secrets.js";
import { eventProblem } from "./eventlog.js";
import { HOST_TABLE_PREFIX, HOST_TABLES_MESSAGE } from "./schema.js";

/** Transaction control is the storage's job (transactionSync), never a statement's. */
const TX_CONTROL = /^(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)(?![A-Za-z])/i;
/** What SQLite skips before a statement's first keyword. */
const LEADING = /^([\s;]+|--[^\n]*(\n|$)|\/\*[\s\S]*?(\*\/|$))*/;

/** An effect that fails: its `type` and message go back to the guest. */
class EffectError extends Error {
  constructor(type, message) {
    super(message);
    this.type = type;
  }
}

/** Secrets for a task whose agent has no policy: none substituted, none scrubbed. */
const NO_SECRETS = new AgentSecrets(null, new Map(), {});

/**
 * What one task holds on the host while it runs: its agent's secrets and its
 * streamed bodies. The runner creates one per task and releases it when the
 * task ends.
 */
export class TaskState {
  /**
   * @param {string} id the task id
   * @param {{agent: string, instance: string, run: string}} run
   * @param {AgentSecrets} [secrets] the secrets of the task's agent: which
   *   origin may receive which, and the scrubber for all it is handed back
   * @param {AbortSignal} [signal] aborts when the task is canceled: its
   *   fetches and sleeps end at once
   * @param {BodyBudget} [bodies] the agent instance's budget of whole bodies
   *   in flight, shared by its tasks
   */
  constructor(id, run, secrets = NO_SECRETS, signal = undefined, bodies = new BodyBudget()) {
    this.id = id;
    this.run = run;
    this.secrets = secrets;
    this.signal = signal;
    this.bodies = bodies;
    /** Whole-body bytes taken from `bodies` for the batch in flight. */
    this.held = 0;
    /** @type {Map<number, BodyStream>} */
    this.handles = new Map();
    this.nextHandle = 1; // 0 would vanish under Go's omitempty
    /** The telemetry endpoint's origin, when the host exports spans: see performFetch. */
    this.collector = "";
  }

  /** Gives back the bodies of the batch the guest now has (after damper_resume). */
  releaseBodies() {
    this.bodies.used -= this.held;
    this.held = 0;
  }

  /** Cancels every body the task left open, and gives back its budget. */
  release() {
    this.releaseBodies();
    for (const body of this.handles.values()) body.cancel();
    this.handles.clear();
  }
}

/**
 * The whole-body bytes an agent instance's tasks hold at once, from the
 * read of a body until the guest has the batch: a whole body crosses the ABI
 * as base64 inside JSON and is copied into wasm memory, which never shrinks,
 * in an isolate of 128 MB. internal/host's budget, MAX_BODIES_IN_FLIGHT.
 */
export class BodyBudget {
  constructor(limit = MAX_BODIES_IN_FLIGHT) {
    this.limit = limit;
    this.used = 0;
  }
}

/**
 * Performs effects against one agent instance's storage.
 */
export class Effects {
  /**
   * @param {object} opts
   * @param {any} [opts.storage] the Durable Object's ctx.storage (sql, transactionSync)
   * @param {(event: object, task: TaskState) => void} [opts.onEvent] receives emitted
   *   events when there is no event log (Node's tests); by default each is a JSON
   *   line in the Worker's log
   * @param {import("./eventlog.js").HostLog} [opts.log] the agent instance's event
   *   log: emitted events and log records are appended to it
   * @param {{run(model: string, inputs: object): Promise<any>}} [opts.ai] the Worker's AI
   *   binding (env.AI), when it has one: binding effects call it
   * @param {(args: any, task: TaskState) => Promise<any>} [opts.container]
   *   performs a `container` effect (worker/sandbox.js); without it this host
   *   does not perform them (no Container binding)
   */
  constructor({ storage, onEvent, log, ai, container } = {}) {
    this.storage = storage;
    this.onEvent = onEvent ?? logEvent;
    /** @type {import("./eventlog.js").HostLog|null} the event log, when there is one */
    this.log = log ?? null;
    this.ai = ai ?? null;
    this.container = container;
  }

  /**
   * Performs one effect for `task`. Error messages are scrubbed of the
   * agent's secrets: a server or the runtime may quote what it was sent.
   * @param {{id: number, type: string, args?: any}} effect
   * @param {TaskState} task
   * @returns {Promise<{id: number, value?: any, error?: {type: string, message: string}}>}
   */
  async perform(effect, task) {
    const id = effect?.id;
    try {
      const value = await this.dispatch(effect, task);
      return { id, value };
    } catch (e) {
      const type = e instanceof EffectError ? e.type : "internal";
      return { id, error: { type, message: task.secrets.scrubber.string(errorMessage(e)) } };
    }
  }

  async dispatch({ type, args }, task) {
    const perform = Object.hasOwn(PERFORMERS, type) ? PERFORMERS[type] : null;
    if (!perform) {
      throw new EffectError("unknown_effect", `this host does not perform ${JSON.stringify(type)} effects`);
    }
    return perform(this, args, task);
  }

  /**
   * Runs a batch of statements in one transaction. workerd's sql.exec refuses
   * BEGIN/SAVEPOINT; atomicity is transactionSync around the whole batch.
   */
  sql(args) {
    if (!args || !Array.isArray(args.statements)) throw bad("sql: statements must be an array");
    if (args.statements.length === 0) throw bad("sql: no statements");
    const statements = args.statements.map((s, i) => {
      if (!s || typeof s.sql !== "string") throw bad(`sql: statement ${i} has no sql text`);
      const params = s.args ?? [];
      if (!Array.isArray(params)) throw bad(`sql: statement ${i}: args must be an array`);
      const kw = TX_CONTROL.exec(s.sql.replace(LEADING, ""));
      if (kw) {
        throw new EffectError("sql_error", `statement ${i}: ${kw[1].toUpperCase()} is not allowed: ` +
          "a batch already runs as one transaction");
      }
      // The host's tables (the event log, the run ledger) are the host's:
      // internal/host's namesHostTable, which explains why the text is enough.
      if (s.sql.toLowerCase().includes(HOST_TABLE_PREFIX)) {
        throw new EffectError("sql_error", `statement ${i}: ${HOST_TABLES_MESSAGE}`);
      }
      return { sql: s.sql, args: params.map((a, j) => bindable(a, i, j)) };
    });
    let index = 0;
    try {
      const results = this.storage.transactionSync(() => statements.map((s, i) => {
        index = i;
        const cursor = this.storage.sql.exec(s.sql, ...s.args);
        const rows = cursor.raw().toArray();
        const columns = cursor.columnNames;
        for (const row of rows) {
          for (let c = 0; c < row.length; c++) row[c] = resultValue(row[c], columns[c]);
        }
        return { columns, rows };
      }));
      return { results };
    } catch (e) {
      throw new EffectError("sql_error", `statement ${index}: ${errorMessage(e)}`);
    }
  }

  /**
   * Appends the events to the event log, scrubbed of the agent's secrets,
   * with the task's run, as the Go host does; an event outside the closed
   * set, or too large, fails the whole effect (bad_effect).
   */
  emit(args, task) {
    if (!args || !Array.isArray(args.events)) throw bad("emit: events must be an array");
    for (const ev of args.events) {
      const problem = eventProblem(ev);
      if (problem) throw bad(problem);
    }
    const events = args.events.map((ev) => {
      const e = scrubbedJSON({ type: ev.type, session: ev.session, turn: ev.turn, call: ev.call, data: ev.data }, task.secrets.scrubber);
      return e;
    });
    if (!this.log) {
      for (const e of events) this.onEvent(e, task);
      return {};
    }
    try {
      this.log.append(task.run.run, task.run.agent, task.run.instance, events);
    } catch (e) {
      throw new EffectError("sql_error", `event log of ${task.run.agent}/${task.run.instance}: ${errorMessage(e)}`);
    }
    return {};
  }

  /** A log record: the Worker's log, and a log event of the run. */
  log_(args, task) {
    const record = log(args, task);
    if (this.log) {
      try {
        this.log.append(task.run.run, task.run.agent, task.run.instance, [{ type: "log", data: record }]);
      } catch (e) {
        console.error(`a log event was lost: ${errorMessage(e)}`);
      }
    }
    return {};
  }
}

/**
 * The dispatch table, by effect type: internal/host's, for this host.
 * @type {Record<string, (effects: Effects, args: any, task: TaskState) => any>}
 */
const PERFORMERS = {
  fetch: (_, args, task) => performFetch(fetchArgs(args), task),
  read: (_, args, task) => readBody(args, task),
  close: (_, args, task) => closeBody(args, task),
  sql: (effects, args) => effects.sql(args),
  emit: (effects, args, task) => effects.emit(args, task),
  log: (effects, args, task) => effects.log_(args, task),
  sleep: (_, args, task) => sleep(args, task.signal),
  binding: (effects, args, task) => performBinding(effects.ai, args, task),
  container: (effects, args, task) => {
    if (!effects.container) {
      throw new EffectError("unknown_effect", "this host does not perform \"container\" effects: the Worker has no SANDBOX Container binding");
    }
    return effects.container(args, task);
  },
};

/**
 * A call on a Workers binding (docs/abi.md, "binding"); AI is the only
 * one. The guest sends the request its policy decided on, a Chat
 * Completions call of Workers AI's REST API. With the binding, the call is
 * made on env.AI and answered as the REST API answers it, a Chat
 * Completions stream; without it, the request is sent to the REST API, as
 * the local host sends it (internal/host's performBinding).
 * @param {{run(model: string, inputs: object): Promise<any>}|null} ai
 * @param {any} args
 * @param {TaskState} task
 */
export async function performBinding(ai, args, task) {
  if (!args || args.binding !== "AI") {
    throw new EffectError("binding_error", `binding ${JSON.stringify(args?.binding)}: this host offers the binding AI only`);
  }
  const req = fetchArgs(args);
  if (!ai) return performFetch(req, task);
  let body;
  try {
    body = JSON.parse(new TextDecoder().decode(req.body ?? new Uint8Array()));
  } catch {
    throw bad("binding AI: the request body is not JSON");
  }
  if (!body || typeof body.model !== "string") throw bad("binding AI: the request names no model");
  let text;
  let status = 200;
  try {
    const inputs = { messages: body.messages };
    for (const k of ["tools", "max_tokens", "temperature"]) if (body[k] !== undefined) inputs[k] = body[k];
    text = completionStream(body.model, await ai.run(body.model, inputs));
  } catch (e) {
    if (task.signal?.aborted) throw canceled();
    // Answered as the REST API answers a failure, for the guest's provider to read.
    status = 500;
    text = JSON.stringify({ error: { message: `Workers AI: ${errorMessage(e)}`, type: "api_error" } });
  }
  const type = status === 200 ? "text/event-stream" : "application/json";
  const bytes = new TextEncoder().encode(text);
  const value = { status, headers: [["content-type", type]] };
  if (req.stream) {
    const handle = task.nextHandle++;
    task.handles.set(handle, new BodyStream(new Response(bytes).body, task.secrets.scrubber));
    value.handle = handle;
    return value;
  }
  value.body = toBase64(task.secrets.scrubber.bytes(bytes));
  return value;
}

/**
 * What env.AI.run answered for a chat model ({response, tool_calls, usage})
 * as a Chat Completions stream: the text, the tool calls, the finish
 * reason, the usage, [DONE].
 * @param {string} model
 * @param {any} result
 * @returns {string}
 */
export function completionStream(model, result) {
  const chunk = (choices, extra = {}) => `data: ${JSON.stringify({ id: "chatcmpl-workers-ai", object: "chat.completion.chunk", model, choices, ...extra })}\n\n`;
  const calls = Array.isArray(result?.tool_calls) ? result.tool_calls : [];
  let out = chunk([{ index: 0, delta: { role: "assistant", content: typeof result?.response === "string" ? result.response : "" }, finish_reason: null }]);
  calls.forEach((c, i) => {
    const fn = c.function ?? c; // OpenAI's shape, or Workers AI's {name, arguments}
    const args = typeof fn.arguments === "string" ? fn.arguments : JSON.stringify(fn.arguments ?? {});
    out += chunk([{ index: 0, delta: { tool_calls: [{ index: i, id: c.id ?? `call_workers_ai_${i}`, type: "function", function: { name: fn.name, arguments: args } }] }, finish_reason: null }]);
  });
  out += chunk([{ index: 0, delta: {}, finish_reason: calls.length > 0 ? "tool_calls" : "stop" }]);
  const u = result?.usage ?? {};
  out += chunk([], { usage: { prompt_tokens: u.prompt_tokens ?? 0, completion_tokens: u.completion_tokens ?? 0, total_tokens: u.total_tokens ?? 0 } });
  return out + "data: [DONE]\n\n";
}

/**
 * `value` with the agent's secrets scrubbed from its JSON text (the
 * replacement holds no character JSON escapes, so the text stays JSON).
 */
function scrubbedJSON(value, scrubber) {
  if (scrubber.empty) return value;
  const text = JSON.stringify(value);
  const scrubbed = scrubber.string(text);
  return scrubbed === text ? value : JSON.parse(scrubbed);
}

/**
 * Sends one fetch effect. It sends exactly `args.url` and never follows a
 * redirect: a 3xx goes back to the guest, which decides the next hop.
 * Placeholders in header values are substituted only when the URL's origin
 * owns the secret in the policy of the task's agent (task.secrets); the
 * response's headers and body (whole, or each chunk read from its handle)
 * come back with that agent's secret values scrubbed.
 * @param {{method: string, url: string, headers: [string, string][], body: Uint8Array|undefined, stream: boolean}} args
 * @param {TaskState} task
 * @returns {Promise<{status: number, headers: [string, string][], body?: string, handle?: number}>}
 */
export async function performFetch(args, task) {
  // The policy engine decided on this exact URL; workerd's fetch re-parses it
  // with WHATWG rules, so anything that would change under that parse is refused.
  let parsed;
  try {
    parsed = new URL(args.url).href;
  } catch {
    throw new EffectError("fetch_error", `refusing to send ${JSON.stringify(args.url)}: not a valid URL`);
  }
  if (parsed !== args.url) {
    throw new EffectError("fetch_error", `fetch: ${JSON.stringify(args.url)} is not a canonical URL: ` +
      `the host sends only URLs the policy engine decided on (WHATWG parsing would send ${JSON.stringify(parsed)})`);
  }
  // The engine never lets these through; a module that bypassed it must not
  // address the request to another host than the URL's, or frame it.
  const owned = args.headers.find(([name]) => hostOwnedHeader(name));
  if (owned) {
    throw new EffectError("fetch_error", `refusing to send ${args.method} ${args.url}: ` +
      `the ${JSON.stringify(owned[0])} header is set by the host, never by a request`);
  }
  const { secrets } = task;
  if (task.collector && args.body && new URL(args.url).origin === task.collector) {
    // The span export carries what the model said when content capture is
    // on, which may hold a secret the guest put together from pieces no
    // scrubber saw whole; the collector owns none (internal/host's send).
    args.body = secrets.scrubber.bytes(args.body);
  }
  let headers;
  try {
    headers = secrets.substitute(args.headers, new URL(args.url).origin);
  } catch (e) {
    if (!(e instanceof SubstituteError)) throw e;
    // The message names the secret and the origin, never a value.
    throw new EffectError("fetch_error", `refusing to send ${args.method} ${args.url}: ${e.message}`);
  }
  // Only the identity coding (internal/codings): a server that honours it
  // sends no Content-Encoding, and any coding sent anyway is refused below,
  // unread. "manual" keeps workerd's own decoder (exact "gzip" and "br")
  // off the body: the host hands the guest the bytes as sent, or nothing.
  headers.push(["accept-encoding", ACCEPT_ENCODING]);
  let response;
  try {
    response = await fetch(args.url, {
      method: args.method,
      headers,
      body: args.body,
      redirect: "manual",
      encodeResponseBody: "manual",
      signal: task.signal,
    });
  } catch (e) {
    if (task.signal?.aborted) throw canceled();
    throw new EffectError("fetch_error", `${args.method} ${args.url}: ${errorMessage(e)}`);
  }
  if (response.status < 200) {
    // An interim response is never an answer: workerd hands over a 103 as
    // if it were final, with the real response's head, framing and body
    // as its body (internal/host's interimMessage).
    await response.body?.cancel().catch(() => {});
    throw new EffectError("fetch_error", `refusing an interim response (status ${response.status}) as the answer: ` +
      "the host never reads what follows one");
  }
  const refused = framingProblem(response);
  if (refused) {
    await response.body?.cancel().catch(() => {});
    throw new EffectError("fetch_error", refused);
  }
  // Secrets are scrubbed from the body as the guest sees it: an encoded body
  // would carry them past the scrubber. (Under wrangler dev, DevTools'
  // network view decodes an exact "gzip" or "br" body as it arrives, read
  // or not, and a corrupt one aborts workerd: docs/architecture.md.)
  const encoding = response.headers.get("content-encoding");
  if (!bodyAsSent(encoding)) {
    await response.body?.cancel().catch(() => {});
    // The words of internal/codings.UnsupportedError; the guest's error
    // names the method and URL already.
    throw new EffectError("fetch_error", `refusing a response with Content-Encoding ${JSON.stringify(encoding)}: ` +
      "the host asks for identity and never decodes a body (an encoded body would carry secrets past the scrubber)");
  }
  const responseHeaders = [...response.headers];
  const value = { status: response.status, headers: secrets.scrubber.headers(responseHeaders) };
  if (args.stream) {
    const handle = task.nextHandle++;
    task.handles.set(handle, new BodyStream(response.body, secrets.scrubber));
    value.handle = handle;
    return value;
  }
  value.body = toBase64(secrets.scrubber.bytes(await readWhole(response, task, `${args.method} ${args.url}`)));
  return value;
}

/**
 * What makes a response's head unacceptable, or "". workerd passes on a
 * transfer coding other than chunked (`Transfer-Encoding: gzip, chunked`)
 * with the body still coded, where Go's transport refuses the response:
 * a coded body would carry secrets past the scrubber. And recent workerd
 * reads heads larger than internal/host's bound, which both hosts keep.
 * @param {Response} response
 * @returns {string}
 */
export function framingProblem(response) {
  const te = response.headers.get("transfer-encoding");
  if (te !== null) {
    const codings = te.split(",").map((c) => c.trim().toLowerCase()).filter((c) => c !== "");
    if (codings.length !== 1 || codings[0] !== "chunked") {
      return `refusing a response with Transfer-Encoding ${JSON.stringify(te)}: only chunked is read, and a coded body would carry secrets past the scrubber`;
    }
  }
  // As Go counts it: the status line and each field's line, CRLF included
  // (workerd joins repeated fields, which saves a few bytes a repeat).
  let head = 15 + response.statusText.length;
  for (const [name, value] of response.headers) head += name.length + value.length + 4;
  if (head > MAX_RESPONSE_HEAD) {
    return `refusing a response whose head is over ${MAX_RESPONSE_HEAD} bytes`;
  }
  return "";
}

/** Validates and decodes the args of a fetch effect. */
function fetchArgs(args) {
  if (!args || typeof args.url !== "string") throw bad("fetch: url must be a string");
  const method = args.method ?? "GET";
  if (typeof method !== "string" || method === "") throw bad("fetch: method must be a string");
  const headers = args.headers ?? [];
  if (!Array.isArray(headers) || !headers.every((h) => Array.isArray(h) && h.length === 2 &&
      typeof h[0] === "string" && typeof h[1] === "string")) {
    throw bad("fetch: headers must be a list of [name, value] strings");
  }
  let body;
  if (args.body != null && args.body !== "") {
    if (typeof args.body !== "string") throw bad("fetch: body must be base64");
    try {
      body = fromBase64(args.body);
    } catch {
      throw bad("fetch: body is not valid base64");
    }
  }
  return { method, url: args.url, headers, body, stream: args.stream === true };
}

/** Reads a streamed body: at least one byte unless EOF, at most `max`. */
async function readBody(args, task) {
  if (!args || !Number.isInteger(args.handle)) throw bad("read: handle must be an integer");
  // A chunk is held until the guest has the batch, as a whole body is: it
  // counts against the same budget, and a read gets no more than is left of
  // it, but always DEFAULT_READ, so every stream moves on (internal/host).
  const left = Math.max(task.bodies.limit - task.bodies.used, DEFAULT_READ);
  const max = Math.min(Number.isInteger(args.max) && args.max > 0 ? args.max : DEFAULT_READ, MAX_READ, left);
  const body = task.handles.get(args.handle);
  if (!body) throw bad(`read: unknown or released handle ${args.handle}`);
  let chunk;
  try {
    chunk = await body.read(max);
  } catch (e) {
    task.handles.delete(args.handle);
    body.cancel();
    throw new EffectError("fetch_error", `reading body ${args.handle}: ${errorMessage(e)}`);
  }
  if (chunk === null) {
    task.handles.delete(args.handle); // released at EOF
    return { eof: true };
  }
  task.bodies.used += chunk.length;
  task.held += chunk.length;
  return { body: toBase64(chunk) };
}

function closeBody(args, task) {
  if (!args || !Number.isInteger(args.handle)) throw bad("close: handle must be an integer");
  // Closing a handle already released (at EOF) is not an error.
  task.handles.get(args.handle)?.cancel();
  task.handles.delete(args.handle);
  return {};
}

function logEvent(event, task) {
  console.log(JSON.stringify({
    event: event?.type,
    data: event?.data,
    agent: task.run.agent,
    instance: task.run.instance,
    run: task.run.run,
  }));
}

function log(args, task) {
  if (!args || typeof args.msg !== "string") throw bad("log: msg must be a string");
  const scrub = task.secrets.scrubber;
  console.log(scrub.string(JSON.stringify({
    level: typeof args.level === "string" ? args.level : "info",
    msg: args.msg,
    ...(args.attrs && typeof args.attrs === "object" ? { attrs: args.attrs } : {}),
    agent: task.run.agent,
    instance: task.run.instance,
    run: task.run.run,
  })));
  // The log event's data, as internal/host's performLog writes it.
  const record = { level: levelName(args.level), message: args.msg };
  if (args.attrs && typeof args.attrs === "object" && Object.keys(args.attrs).length > 0) record.attrs = args.attrs;
  return scrubbedJSON(record, scrub);
}

/** A log effect's level as a log event names it (internal/host's levelName). */
function levelName(level) {
  switch (typeof level === "string" ? level.toLowerCase() : "") {
    case "debug": return "debug";
    case "warn": case "warning": return "warn";
    case "error": return "error";
    default: return "info";
  }
}

async function sleep(args, signal) {
  const ms = args?.ms;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) throw bad("sleep: ms must be a non-negative number");
  if (signal?.aborted) throw canceled();
  let timer;
  let onAbort;
  try {
    await new Promise((resolve, reject) => {
      timer = setTimeout(resolve, ms);
      onAbort = () => reject(canceled());
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
  return {};
}

/** The error of an effect cut short because its task was canceled. */
function canceled() {
  return new EffectError("canceled", "the task was canceled");
}

/**
 * A SQL argument: null, number or string as is; booleans bind as 0/1
 * (workerd would bind them as the text "true"). A number beyond ±(2^53−1) is
 * refused, as a result of that size is: the module's JSON had more digits
 * than a JS number keeps.
 */
function bindable(a, i, j) {
  if (typeof a === "number" && Number.isInteger(a) && !Number.isSafeInteger(a)) {
    throw new EffectError("sql_error", `statement ${i}: arg ${j}: ${BigInt(a)} is beyond ±(2^53-1), ` +
      "which a Durable Object cannot bind exactly; store big integers as text");
  }
  if (a === null || typeof a === "number" || typeof a === "string") return a;
  if (typeof a === "boolean") return a ? 1 : 0;
  throw bad(`sql: statement ${i}: arg ${j} is not null, a number, a string or a boolean`);
}

/**
 * A column value as the guest gets it: null, a number or a string (a BLOB is
 * refused, as on the local host). workerd returns every SQLite number as a JS number and silently
 * rounds an INTEGER beyond ±(2^53−1) (9007199254740993 comes back as
 * 9007199254740992), so a number of that size is an error, as on the local
 * host. workerd cannot tell us its type: a REAL that large is refused too.
 */
function resultValue(v, column) {
  if (v === null || typeof v === "string") return v;
  if (typeof v === "number") {
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) {
      throw new Error(`column ${JSON.stringify(column)}: ${BigInt(v)} is beyond ±(2^53-1), which a Durable ` +
        "Object cannot return exactly (an integer comes back rounded); store it as text");
    }
    return v;
  }
  if (v instanceof ArrayBuffer) {
    throw new Error(`column ${JSON.stringify(column)}: BLOB values are not supported; store text`);
  }
  throw new Error(`column ${JSON.stringify(column)}: unsupported value of type ${typeof v}`);
}

/**
 * A streamed response body, scrubbed, read in chunks of at most `max` bytes.
 * The scrubber holds back the tail of what it has seen until the next chunk
 * (a secret may be split between two), so a read may take several chunks.
 */
export class BodyStream {
  /**
   * @param {ReadableStream<Uint8Array>|null} body
   * @param {import("./scrub.js").Scrubber} scrubber
   */
  constructor(body, scrubber) {
    this.reader = body?.getReader() ?? null;
    this.scrub = scrubber.stream();
    this.rest = null; // scrubbed bytes not handed out yet
  }

  /** @returns {Promise<Uint8Array|null>} at least one byte, or null at EOF */
  async read(max) {
    while (!this.rest || this.rest.length === 0) {
      if (!this.reader) return null;
      const { done, value } = await this.reader.read();
      if (done) {
        this.reader = null;
        this.rest = this.scrub.flush();
      } else {
        this.rest = this.scrub.push(value);
      }
    }
    const chunk = this.rest.subarray(0, max);
    this.rest = this.rest.subarray(chunk.length);
    return chunk;
  }

  cancel() {
    this.reader?.cancel().catch(() => {});
    this.reader = null;
    this.rest = null;
  }
}

/**
 * Reads a whole body, no further than MAX_WHOLE_BODY, taking what it reads
 * from the agent instance's budget of bodies in flight (a declared
 * Content-Length up front), as internal/host does; a body that fails gives
 * its bytes back at once.
 */
async function readWhole(response, task, what) {
  const fail = (message) => new EffectError("fetch_error", `${what}: ${message}`);
  const tooLarge = () => fail(`the response body exceeds ${MAX_WHOLE_BODY} bytes; fetch it with stream`);
  const declared = Number(response.headers.get("content-length") ?? -1);
  if (declared > MAX_WHOLE_BODY) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  let held = 0;
  const hold = (n) => {
    if (task.bodies.used + n > task.bodies.limit) {
      throw fail(`the agent instance's whole response bodies in flight would exceed ${task.bodies.limit} bytes; fetch large bodies with stream`);
    }
    task.bodies.used += n;
    task.held += n;
    held += n;
  };
  const chunks = [];
  let size = 0;
  const reader = response.body?.getReader();
  try {
    if (declared > 0) hold(declared);
    for (;;) {
      const { done, value } = reader ? await reader.read() : { done: true };
      if (done) break;
      size += value.length;
      if (size > MAX_WHOLE_BODY) throw tooLarge();
      if (size > held) hold(size - held);
      chunks.push(value);
    }
  } catch (e) {
    reader?.cancel().catch(() => {});
    task.bodies.used -= held;
    task.held -= held;
    if (e instanceof EffectError) throw e;
    throw fail(`reading the body: ${errorMessage(e)}`);
  }
  const bytes = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  return bytes;
}

function bad(message) {
  return new EffectError("bad_effect", message);
}

/**
 * Standard base64 (what Go's encoding/json uses for []byte).
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/**
 * @param {string} b64 standard base64
 * @returns {Uint8Array}
 */
export function fromBase64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
