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
import { HostSecrets } from "./secrets.js";
import { targetsFromEnv } from "./targets.js";
import { egressAnswer, performContainer } from "./sandbox.js";

// The container kind (worker/container.js): the Container class of the
// SANDBOX binding, and the entrypoint its outbound interception calls.
export { Sandbox } from "./container.js";
export { ContainerProxy } from "@cloudflare/containers";

const AGENTS_PATH = /^\/agents\/([^/]+)\/([^/]+)$/;

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

  const m = AGENTS_PATH.exec(pathname);
  if (!m) return errorResponse(404, "not_found", `no route for ${pathname}`);
  if (request.method !== "POST") {
    return errorResponse(405, "method_not_allowed", `${request.method} is not allowed on ${pathname}`, { Allow: "POST" });
  }
  const [, agent, id] = m;
  for (const [what, name] of [["agent name", agent], ["instance id", id]]) {
    if (!validName(name)) {
      return errorResponse(400, "invalid_name",
        `${what} ${JSON.stringify(name)} is not 1 to 128 of A-Z a-z 0-9 . _ - (and not . or ..)`);
    }
  }
  if (manifestProblem) return errorResponse(500, "internal", manifestProblem);
  // A bad DAMPER_TARGETS would send an agent's requests to the real service
  // instead of the configured one: no run until it is fixed.
  const targets = targetsFromEnv(env, { manifest });
  if (targets.problem) return errorResponse(500, "not_configured", targets.problem);
  if (!agentNames.has(agent)) return errorResponse(404, "not_found", unknownAgentMessage(agent));

  const body = await readBody(request, BODY_LIMIT);
  if (body.tooLarge) return errorResponse(413, "payload_too_large", `the body is over ${BODY_LIMIT} bytes`);
  if (body.invalid) return errorResponse(400, "invalid_json", "the body is not UTF-8");
  const payload = body.text === "" ? "null" : body.text; // an empty body is null
  try {
    JSON.parse(payload);
  } catch (e) {
    return errorResponse(400, "invalid_json", `the body is not one JSON value: ${errorMessage(e)}`);
  }

  const stub = env.AGENTS.get(env.AGENTS.idFromName(`${agent}/${id}`));
  // Never written nor closed: the Durable Object sees it end when this
  // invocation ends, before the reply only if the client has gone.
  const caller = new TransformStream();
  const reply = await stub.run(agent, id, payload, caller.readable);
  return jsonResponse(reply.status, reply.body);
}

/**
 * One agent instance: its SQLite database, and a Runner holding one module
 * instance (dropped with the object when it is evicted; state lives in
 * storage).
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
    this.configProblem = problem ?? timeout.problem;
    this.runner = new Runner({
      runTimeoutMs: timeout.ms,
      wasm,
      effects: new Effects({
        storage: ctx.storage,
        container: env.SANDBOX ? (args, task) => performContainer(args, task, (agent, id) => this.container(agent, id)) : undefined,
      }),
      // Secret values are read from env by the names the policies list.
      secrets: new HostSecrets(manifest, targets, env),
      targets,
      settings: { model: env.DAMPER_MODEL, sandbox: env.DAMPER_SANDBOX },
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
    if (!this.env.SANDBOX) return;
    await this.env.SANDBOX.get(this.env.SANDBOX.idFromName(`${agent}/${id}`)).destroy();
    this.containerBound = false;
  }
}
