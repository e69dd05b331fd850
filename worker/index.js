// The damper Worker: the HTTP API of docs/http.md in front of one Durable
// Object per agent instance (agent, id), each running the damper module.
//
// `damper build` writes this file and the modules it imports into
// build/worker/, beside the module: the imports below are relative to there.
// The module is imported, not fetched: workerd refuses to compile wasm at
// run time, so wrangler uploads damper.wasm as a compiled module part. The
// manifest beside it lets the Worker answer 404 for an unknown agent
// without waking a Durable Object.

import { DurableObject } from "cloudflare:workers";
import wasm from "../damper.wasm";
import manifest from "../manifest.json";
import { BODY_LIMIT, bearerMatches, errorResponse, jsonResponse, readBody, validName } from "./http.js";
import { ABI_VERSION, checkManifest, errorMessage } from "./module.js";
import { Effects } from "./effects.js";
import { Runner, callerSignal, errorReply, parseRunTimeout, randomHex } from "./runner.js";
import { HostLog, envelopeJSON, finished, runJSON, spend, terminal } from "./eventlog.js";
import { DEFAULT_EVENT_RETENTION } from "./schema.js";
import { HostSecrets } from "./secrets.js";
import { targetsFromEnv } from "./targets.js";
import { egressAnswer, performContainer } from "./sandbox.js";

// The container kind (worker/container.js): the Container class of the
// SANDBOX binding, and the entrypoint its outbound interception calls.
export { Sandbox } from "./container.js";
export { ContainerProxy } from "@cloudflare/containers";

// A bundled manifest for another ABI makes every run fail with a message
// naming both versions, rather than the Worker failing to load.
let manifestProblem = null;
try {
  checkManifest(manifest);
} catch (e) {
  manifestProblem = errorMessage(e);
}
const agentNames = new Set((manifest.agents ?? []).map((a) => a.name));

/**
 * The message for a run of an agent the module does not have, the same text
 * as the local host's (internal/wire.UnknownAgentMessage).
 * @param {string} name
 */
function unknownAgentMessage(name) {
  const names = [...agentNames].sort();
  if (names.length === 0) return `no agent named ${JSON.stringify(name)}; this module has no agents`;
  return `no agent named ${JSON.stringify(name)}; this module's agents: ${names.join(", ")}`;
}

/**
 * Whether this request may skip the bearer token: only under `damper dev`,
 * which sets the var DAMPER_DEV to "1" and keeps wrangler dev on loopback,
 * and only for a request addressed to a loopback host. On a deployed Worker
 * the URL's host is the one Cloudflare routed on, never a loopback one, so a
 * DAMPER_DEV left in [vars] opens nothing there.
 * @param {Request} request
 * @param {{DAMPER_DEV?: string}} env
 */
function devLoopback(request, env) {
  return env.DAMPER_DEV === "1" && isLoopbackHost(new URL(request.url).hostname);
}

/**
 * Whether a URL's hostname (WHATWG-parsed: IPv4 dotted decimal, IPv6 in
 * brackets) names this machine.
 * @param {string} hostname
 */
function isLoopbackHost(hostname) {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * The 503 for a Worker without DAMPER_TOKEN: what to do depends on where
 * it runs.
 * @param {Request} request
 * @param {{DAMPER_DEV?: string}} env
 */
function notConfigured(request, env) {
  if (env.DAMPER_DEV === "1") {
    return errorResponse(503, "not_configured",
      `DAMPER_TOKEN is not set, and damper dev answers without it only on loopback, not for ${new URL(request.url).host}: ` +
      "put DAMPER_TOKEN=<token> in .dev.vars to require that token from every client");
  }
  return errorResponse(503, "not_configured",
    "DAMPER_TOKEN is not set: run `npx wrangler secret put DAMPER_TOKEN` on a deployed Worker; " +
    "locally, `damper dev` needs none on loopback, or put DAMPER_TOKEN=<token> in .dev.vars");
}

export default {
  /**
   * The Worker's entry: every response carries X-Request-Id.
   * @param {Request} request
   * @param {{AGENTS: DurableObjectNamespace, DAMPER_TOKEN?: string, DAMPER_TARGETS?: string, DAMPER_DEV?: string}} env
   *   and the secrets the agents' policies name, by name
   * @returns {Promise<Response>}
   */
  async fetch(request, env) {
    const requestId = randomHex(16);
    let response;
    try {
      response = await route(request, env);
    } catch (e) {
      console.error(`request ${requestId}: ${e?.stack ?? e}`);
      response = errorResponse(500, "internal", "internal error; see the Worker's log for request " + requestId);
    }
    response.headers.set("X-Request-Id", requestId);
    return response;
  },
};

/** The checks of docs/http.md, in its order: auth, route, method, name, agent, size, JSON. */
async function route(request, env) {
  const { pathname } = new URL(request.url);

  if (pathname === "/health") {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return errorResponse(405, "method_not_allowed", `${request.method} is not allowed on /health`, { Allow: "GET, HEAD" });
    }
    return jsonResponse(200, JSON.stringify({ status: "ok", abi: ABI_VERSION }));
  }

  if (env.DAMPER_TOKEN) {
    if (!(await bearerMatches(request.headers.get("Authorization"), env.DAMPER_TOKEN))) {
      return errorResponse(401, "unauthorized", "missing or wrong bearer token", { "WWW-Authenticate": "Bearer" });
    }
  } else if (!devLoopback(request, env)) {
    return notConfigured(request, env);
  }

  const rt = parseRoute(pathname);
  if (!rt) return errorResponse(404, "not_found", `no route for ${pathname}`);
  const allow = ROUTE_METHODS[rt.sub];
  if (!allow.split(", ").includes(request.method)) {
    return errorResponse(405, "method_not_allowed", `${request.method} is not allowed on ${pathname}`, { Allow: allow });
  }
  for (const [what, name] of [["agent name", rt.agent], ["instance id", rt.id]]) {
    if (!validName(name)) {
      return errorResponse(400, "invalid_name",
        `${what} ${JSON.stringify(name)} is not 1 to 128 of A-Z a-z 0-9 . _ - (and not . or ..)`);
    }
  }
  if (rt.run !== undefined && !validName(rt.run)) {
    return errorResponse(400, "invalid_name", `run id ${JSON.stringify(rt.run)} is not 1 to 128 of A-Z a-z 0-9 . _ -`);
  }
  if (manifestProblem) return errorResponse(500, "internal", manifestProblem);
  // A bad DAMPER_TARGETS would send an agent's requests to the real service
  // instead of the configured one: no run until it is fixed.
  const targets = targetsFromEnv(env, { manifest });
  if (targets.problem) return errorResponse(500, "not_configured", targets.problem);
  if (!agentNames.has(rt.agent)) return errorResponse(404, "not_found", unknownAgentMessage(rt.agent));

  const { agent, id } = rt;
  const stub = env.AGENTS.get(env.AGENTS.idFromName(`${agent}/${id}`));
  const query = new URL(request.url).searchParams;
  switch (`${request.method} ${rt.sub}`) {
    case "POST ": return postRun(request, query, stub, agent, id);
    case "DELETE ": return reply(await stub.destroy(agent, id));
    case "GET runs": {
      const limit = queryInt(query, "limit", 100, 1, 1000);
      if (limit.error) return limit.error;
      return reply(await stub.listRuns(agent, id, limit.value));
    }
    case "GET run": return reply(await stub.getRun(agent, id, rt.run));
    case "DELETE run": return reply(await stub.cancelRun(agent, id, rt.run));
    case "GET events":
    case "GET run-events": {
      const after = lastEventID(request, query);
      if (after.error) return after.error;
      const follow = queryBool(query, "follow", true);
      if (follow.error) return follow.error;
      const url = new URL("https://do/events");
      url.search = new URLSearchParams({ agent, id, after: String(after.value), follow: follow.value ? "1" : "0", ...(rt.run ? { run: rt.run } : {}) });
      return mutable(await stub.fetch(new Request(url, { method: "GET" })));
    }
  }
  return errorResponse(404, "not_found", `no route for ${pathname}`);
}

/** The routes under /agents/{agent}/{id}, and their methods (local/http.go's). */
const ROUTE_METHODS = { "": "POST, DELETE", events: "GET", runs: "GET", run: "GET, DELETE", "run-events": "GET" };

/**
 * Splits a path into a route: /agents/{agent}/{id}[/events |
 * /runs[/{run}[/events]]], or null.
 * @param {string} pathname
 */
function parseRoute(pathname) {
  const segs = pathname.split("/");
  if (segs.length < 4 || segs[0] !== "" || segs[1] !== "agents" || segs[2] === "" || segs[3] === "") return null;
  const rest = segs.slice(4);
  const rt = { agent: segs[2], id: segs[3], sub: "" };
  if (rest.length === 0) return rt;
  if (rest.length === 1 && rest[0] === "events") return { ...rt, sub: "events" };
  if (rest.length === 1 && rest[0] === "runs") return { ...rt, sub: "runs" };
  if (rest.length === 2 && rest[0] === "runs" && rest[1] !== "") return { ...rt, sub: "run", run: rest[1] };
  if (rest.length === 3 && rest[0] === "runs" && rest[1] !== "" && rest[2] === "events") return { ...rt, sub: "run-events", run: rest[1] };
  return null;
}

/**
 * POST /agents/{agent}/{id}: synchronous (the result as JSON), streamed
 * (Accept: text/event-stream: the run's events as SSE) or in the
 * background (?background=1 or Prefer: respond-async: 202 at once).
 */
async function postRun(request, query, stub, agent, id) {
  const bg = queryBool(query, "background", false);
  if (bg.error) return bg.error;
  const preferAsync = preferRespondAsync(request.headers);
  const background = bg.value || preferAsync;
  const sse = acceptsEventStream(request.headers);
  const body = await readBody(request, BODY_LIMIT);
  if (body.tooLarge) return errorResponse(413, "payload_too_large", `the body is over ${BODY_LIMIT} bytes`);
  if (body.invalid) return errorResponse(400, "invalid_json", "the body is not UTF-8");
  const payload = body.text === "" ? "null" : body.text; // an empty body is null
  try {
    JSON.parse(payload);
  } catch (e) {
    return errorResponse(400, "invalid_json", `the body is not one JSON value: ${errorMessage(e)}`);
  }
  if (background) {
    const r = await stub.start(agent, id, payload, "background");
    const headers = r.location ? { Location: r.location, ...(preferAsync ? { "Preference-Applied": "respond-async" } : {}) } : {};
    return jsonResponse(r.status, r.body, headers);
  }
  if (sse) {
    // A streamed run is not canceled when its client goes: the client may
    // resume the stream (GET …/runs/{run}/events, Last-Event-ID).
    const url = new URL("https://do/stream");
    url.search = new URLSearchParams({ agent, id });
    return mutable(await stub.fetch(new Request(url, { method: "POST", body: payload })));
  }
  // Never written nor closed: the Durable Object sees it end when this
  // invocation ends, before the reply only if the client has gone.
  const caller = new TransformStream();
  const r = await stub.run(agent, id, payload, caller.readable);
  return jsonResponse(r.status, r.body);
}

/** A response from a Durable Object's fetch, with headers this Worker may set. */
function mutable(response) {
  return new Response(response.body, response);
}

/** A Durable Object's {status, body, headers?} as a response. */
function reply(r) {
  return jsonResponse(r.status, r.body, r.headers ?? {});
}

function queryBool(query, name, def) {
  const v = query.get(name);
  if (v === null || v === "") return { value: def };
  // Go's strconv.ParseBool, as the local host reads it.
  if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return { value: true };
  if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return { value: false };
  return { error: errorResponse(400, "invalid_request", `${name} is a boolean (1, true, 0, false)`) };
}

function queryInt(query, name, def, lo, hi) {
  const v = query.get(name);
  if (v === null || v === "") return { value: def };
  const n = /^[+-]?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < lo || n > hi) {
    return { error: errorResponse(400, "invalid_request", `${name} is a whole number from ${lo} to ${hi}`) };
  }
  return { value: n };
}

/** Where a stream resumes: Last-Event-ID, or ?after=, a seq (0: the start). */
function lastEventID(request, query) {
  let v = request.headers.get("Last-Event-ID");
  let what = "Last-Event-ID";
  if ((v === null || v === "") && query.get("after")) {
    v = query.get("after");
    what = "after";
  }
  if (v === null || v === "") return { value: 0 };
  v = v.trim();
  if (!/^\+?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
    return { error: errorResponse(400, "invalid_request", `${what} is an event's seq, a whole number ≥ 0`) };
  }
  return { value: Number(v) };
}

/** Whether a Prefer header (RFC 7240) asks for respond-async. */
function preferRespondAsync(headers) {
  const v = headers.get("Prefer");
  if (!v) return false;
  return v.split(",").some((p) => p.split(";")[0].split("=")[0].trim().toLowerCase() === "respond-async");
}

/** Whether the client asks for text/event-stream. */
function acceptsEventStream(headers) {
  const v = headers.get("Accept");
  if (!v) return false;
  return v.split(",").some((p) => p.split(";")[0].trim().toLowerCase() === "text/event-stream");
}

/**
 * One agent instance: its SQLite database (the guest's tables, the event
 * log and the run ledger), and a Runner holding one module instance
 * (dropped with the object when it is evicted; state lives in storage).
 * While runs are unfinished an alarm stays set: when it fires on an object
 * that lost its runs (evicted, restarted by a deploy), it starts them
 * again with the same ids.
 */
export class AgentInstance extends DurableObject {
  /**
   * @param {DurableObjectState} ctx
   * @param {object} env
   */
  constructor(ctx, env) {
    super(ctx, env);
    const { targets, problem } = targetsFromEnv(env, { manifest });
    const timeout = parseRunTimeout(env.DAMPER_RUN_TIMEOUT);
    const config = eventConfig(env, targets);
    this.configProblem = problem ?? timeout.problem ?? config.problem;
    this.heartbeatMs = config.heartbeatMs;
    this.log = new HostLog(ctx.storage, { retention: config.retention });
    this.runner = new Runner({
      runTimeoutMs: timeout.ms,
      wasm,
      effects: new Effects({
        storage: ctx.storage,
        log: this.log,
        ai: env.AI,
        container: env.SANDBOX ? (args, task) => performContainer(args, task, (agent, id) => this.container(agent, id)) : undefined,
      }),
      // Secret values are read from env by the names the policies list.
      secrets: new HostSecrets(manifest, targets, env),
      targets,
      settings: { model: env.DAMPER_MODEL, sandbox: env.DAMPER_SANDBOX, telemetry: config.telemetry },
      log: this.log,
      onRecorded: () => this.keepAlarm(),
    });
  }

  /**
   * Runs `agent` with `payload` (JSON text) on this agent instance (RPC from
   * the Worker). Runs are serialized in arrival order.
   * @param {string} agent
   * @param {string} id
   * @param {string} payload
   * @param {ReadableStream} [caller] a stream the calling Worker holds open:
   *   when it ends before the reply, the client has gone and the run is
   *   canceled
   * @returns {Promise<{status: number, body: string}>}
   */
  async run(agent, id, payload, caller) {
    if (this.configProblem) return errorReply(500, "not_configured", this.configProblem);
    const gone = callerSignal(caller);
    try {
      return await this.runner.run(agent, id, payload, { signal: gone.signal });
    } finally {
      gone.stop();
    }
  }

  /**
   * Accepts a run in the background: recorded (queued) before the answer,
   * 202 with its URL. The run goes on in this object, bound to no request.
   */
  async start(agent, id, payload, mode) {
    if (this.configProblem) return errorReply(500, "not_configured", this.configProblem);
    const r = this.runner.start(agent, id, payload, mode);
    if (r.reply) return r.reply;
    const url = runURL(agent, id, r.run);
    return { status: 202, location: url, body: JSON.stringify({ run: r.run, status: "queued", url, events: url + "/events" }) };
  }

  /** GET …/runs/{run}. */
  async getRun(agent, id, run) {
    const row = this.log.getRun(run);
    if (!row) return errorReply(404, "not_found", `agent instance ${agent}/${id} has no run ${run}`);
    return { status: 200, body: runJSON(row) };
  }

  /** GET …/runs: the newest first. */
  async listRuns(agent, id, limit) {
    return { status: 200, body: `{"runs":[${this.log.runs(limit).map(runJSON).join(",")}]}` };
  }

  /** DELETE …/runs/{run}: cancels it, and answers it once it has ended. */
  async cancelRun(agent, id, run) {
    const ended = await this.runner.cancel(run, "requested", "the run was canceled (DELETE of the run)");
    if (ended) return { status: 200, body: runJSON(ended) };
    const row = this.log.getRun(run);
    if (!row) return errorReply(404, "not_found", `agent instance ${agent}/${id} has no run ${run}`);
    if (finished(row.status)) return errorReply(409, "conflict", `run ${run} has already ended (${row.status})`);
    // In the ledger but not running here: interrupted, waiting for the
    // alarm. Canceling it ends it here.
    const message = "the run was canceled (DELETE of the run)";
    const end = this.log.finishRun(run, "canceled", null, { type: "canceled", message, status: 500 });
    this.log.append(run, agent, id, [{ type: "run.cancel", data: { reason: "requested", message, ...spend(end) } }]);
    return { status: 200, body: runJSON(end) };
  }

  /**
   * DELETE /agents/{agent}/{id}: cancels every run and destroys the
   * instance's state (the database: the agent's state, the event log, the
   * ledger; the alarm) and its sandbox.
   */
  async destroy(agent, id) {
    const canceled = [...this.runner.runs.keys()];
    await Promise.all(canceled.map((run) =>
      this.runner.cancel(run, "instance_deleted", "the run was canceled: its agent instance was deleted")));
    for (const row of this.log.unfinished()) if (!canceled.includes(row.run)) canceled.push(row.run);
    // The module instance remembers the database's schema: it goes too.
    this.runner.module = null;
    try {
      await this.destroySandbox(agent, id);
    } catch (e) {
      // The state stays (its runs are canceled): the DELETE can be sent again.
      console.error(`[${agent}/${id}] destroy the container: ${e?.stack ?? e}`);
      return errorReply(502, "sandbox_error", `agent instance ${agent}/${id} was not deleted (its runs were canceled): its container could not be destroyed: ${errorMessage(e)}`);
    }
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.log.reset();
    console.log(`[${agent}/${id}] agent instance deleted`);
    return { status: 200, body: JSON.stringify({ agent, instance: id, deleted: true, canceled }) };
  }

  /** The event streams: POST /stream (a run, streamed) and GET /events. */
  async fetch(request) {
    const url = new URL(request.url);
    const q = url.searchParams;
    const agent = q.get("agent");
    const id = q.get("id");
    if (url.pathname === "/stream") {
      if (this.configProblem) return jsonResponse(500, errorReply(500, "not_configured", this.configProblem).body);
      const r = this.runner.start(agent, id, await request.text(), "stream");
      if (r.reply) return jsonResponse(r.reply.status, r.reply.body);
      return this.stream(agent, id, { after: 0, run: r.run, follow: true, headers: { Location: runURL(agent, id, r.run) } });
    }
    const run = q.get("run") ?? "";
    if (run && !this.log.getRun(run)) {
      const e = errorReply(404, "not_found", `agent instance ${agent}/${id} has no run ${run}`);
      return jsonResponse(e.status, e.body);
    }
    return this.stream(agent, id, { after: Number(q.get("after") ?? 0), run, follow: q.get("follow") !== "0" });
  }

  /**
   * The events after seq `after` as SSE (id: seq, event: type, data: the
   * envelope): a run's until its last event, the instance's until the
   * client goes (or, without follow, the end of the log); a comment every
   * heartbeat while there is nothing to send. Read from the log at every
   * wake, taking the next wake first, so nothing appended meanwhile is
   * missed or sent twice.
   */
  stream(agent, id, { after, run, follow, headers = {} }) {
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    const enc = new TextEncoder();
    const generation = this.log.generation;
    const pump = async () => {
      let last = after;
      for (;;) {
        if (this.log.generation !== generation) return; // the instance was deleted
        const next = this.log.next();
        const evs = this.log.read(last, run, 512, agent, id);
        for (const e of evs) {
          await writer.write(enc.encode(`id: ${e.seq}\nevent: ${e.type}\ndata: ${envelopeJSON(e)}\n\n`));
          last = e.seq;
          if (run && terminal(e.type)) return;
        }
        if (evs.length === 512) continue;
        // Here the stream has every event there is.
        if (!follow || (evs.length === 0 && run && !this.runner.runs.has(run) && finished(this.log.getRun(run)?.status ?? "done"))) return;
        let timer;
        const beat = new Promise((resolve) => (timer = setTimeout(() => resolve("beat"), this.heartbeatMs)));
        const woke = await Promise.race([next, beat]);
        clearTimeout(timer);
        if (woke === "beat") await writer.write(enc.encode(": ping\n\n"));
      }
    };
    pump().catch(() => {}).finally(() => writer.close().catch(() => {}));
    return new Response(readable, {
      status: 200,
      headers: { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", ...headers },
    });
  }

  /** Keeps an alarm set while runs are unfinished (RESUME_MS ahead). */
  keepAlarm() {
    this.ctx.storage.getAlarm().then((at) => {
      if (at === null) return this.ctx.storage.setAlarm(Date.now() + RESUME_MS);
    }).catch((e) => console.error(`set the resume alarm: ${errorMessage(e)}`));
  }

  /**
   * The resume alarm: runs in flight here keep it set; otherwise the runs
   * the ledger holds unfinished were lost with an earlier incarnation of
   * this object, and start again with their ids.
   */
  async alarm() {
    if (this.runner.busy()) {
      await this.ctx.storage.setAlarm(Date.now() + RESUME_MS);
      return;
    }
    if (this.configProblem) return;
    const rows = this.log.unfinished();
    if (rows.length === 0) return;
    const resumable = [];
    for (const row of rows) {
      if (agentNames.has(row.agent)) resumable.push(row);
      else this.runner.failRow(row, `run ${row.run} was interrupted and cannot resume: the module no longer has agent ${JSON.stringify(row.agent)}`);
    }
    this.runner.resume(resumable);
    if (resumable.length > 0) await this.ctx.storage.setAlarm(Date.now() + RESUME_MS);
  }

  /**
   * The agent instance's container (SANDBOX binding), started and bound to
   * this instance (its requests reach this instance's policy) at its first
   * use in this object's lifetime.
   * @param {string} agent
   * @param {string} id
   */
  async container(agent, id) {
    const stub = this.env.SANDBOX.get(this.env.SANDBOX.idFromName(`${agent}/${id}`));
    if (!this.containerBound) {
      await stub.fetch(new Request("http://sandboxd/health")); // starts it
      // A DELETE of the instance destroys it from now on. (One that failed
      // to start is not marked: it sleeps after sleepAfter, its disk gone,
      // and a Worker without a container runtime can still delete.)
      await this.ctx.storage.put(CONTAINER_USED, true);
      await stub.bind(agent, id);
      this.containerBound = true;
    }
    return stub;
  }

  /**
   * Decides and answers one request of this instance's container (RPC from
   * its outbound handler, worker/sandbox.js): an egress task in the module,
   * then 403 with the decision or the response of the allowed request.
   * @param {string} agent
   * @param {string} id
   * @param {object} request the wire.EgressRequest
   * @returns {Promise<Response>}
   */
  async egress(agent, id, request) {
    const { decision, task } = await this.runner.egress(agent, id, request);
    return egressAnswer(decision, task, agent);
  }

  /**
   * Destroys this instance's container and its disk (the DELETE of the agent
   * instance calls it); the next container operation starts a new one. The
   * empty kind's files are rows of this object's storage, gone with it.
   * @param {string} agent
   * @param {string} id
   */
  async destroySandbox(agent, id) {
    if (!this.env.SANDBOX || !(await this.ctx.storage.get(CONTAINER_USED))) return;
    await this.env.SANDBOX.get(this.env.SANDBOX.idFromName(`${agent}/${id}`)).destroy();
    this.containerBound = false;
  }
}

/** The storage key set once the instance has started its container. */
const CONTAINER_USED = "damper:container";

/**
 * How often the resume alarm looks, while runs are unfinished: a run lost
 * with its Durable Object starts again within about this long.
 */
const RESUME_MS = 5_000;

/** A run's URL. */
function runURL(agent, id, run) {
  return `/agents/${encodeURIComponent(agent)}/${encodeURIComponent(id)}/runs/${run}`;
}

/**
 * The event log's configuration from env: DAMPER_EVENT_RETENTION,
 * DAMPER_HEARTBEAT (a Go duration), and the span export
 * (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT plus
 * /v1/traces; OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT), whose
 * collector's origin becomes the target of the service "otel" unless
 * DAMPER_TARGETS names one. `targets` is changed in place.
 */
function eventConfig(env, targets) {
  const out = { retention: DEFAULT_EVENT_RETENTION, heartbeatMs: DEFAULT_HEARTBEAT_MS, telemetry: undefined };
  if (env.DAMPER_EVENT_RETENTION) {
    const n = Number(env.DAMPER_EVENT_RETENTION);
    if (!Number.isInteger(n) || n < 1) {
      return { ...out, problem: `DAMPER_EVENT_RETENTION ${JSON.stringify(env.DAMPER_EVENT_RETENTION)} is not a whole number ≥ 1` };
    }
    out.retention = n;
  }
  if (env.DAMPER_HEARTBEAT) {
    const d = parseRunTimeout(env.DAMPER_HEARTBEAT);
    if (d.problem || d.ms <= 0) return { ...out, problem: `DAMPER_HEARTBEAT ${JSON.stringify(env.DAMPER_HEARTBEAT)} is not a duration such as "15s"` };
    out.heartbeatMs = d.ms;
  }
  let endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (!endpoint && env.OTEL_EXPORTER_OTLP_ENDPOINT) endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, "") + "/v1/traces";
  if (endpoint) {
    let u;
    try {
      u = new URL(endpoint);
    } catch {
      u = null;
    }
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) {
      return { ...out, problem: `the OpenTelemetry endpoint ${JSON.stringify(endpoint)} is not an http or https URL` };
    }
    const content = String(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT ?? "").toLowerCase() === "true";
    out.telemetry = { endpoint, ...(content ? { content: true } : {}) };
    if (!targets.has("otel")) targets.set("otel", u.origin);
  }
  return out;
}

/** An idle SSE stream sends a comment this often (local.DefaultHeartbeat). */
const DEFAULT_HEARTBEAT_MS = 15_000;
