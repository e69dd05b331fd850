// The container kind on the Workers host: the Durable Object's `container`
// effect, performed through the Container binding (a Sandbox Durable
// Object running sandboxd, worker/container.js), and the container's
// egress, which its outbound handler hands to the agent instance's module
// as an egress task (docs/sandbox.md). internal/sandboxhost is the local
// host's twin.
//
// No cloudflare: imports here, so Node's tests drive it with fakes of the
// bindings and the real module.

import { errorMessage } from "./module.js";
import { BodyStream, fromBase64, performFetch, toBase64 } from "./effects.js";

/** A sandbox's request body may hold at most this much: the policy reads it whole. */
export const MAX_EGRESS_BODY = 8 << 20;

/** The effect error type of a sandbox that failed, as on the local host. */
export const ERR_SANDBOX = "sandbox_error";

/** An effect's failure: its type and message go back to the guest. */
export class SandboxError extends Error {
  constructor(message) {
    super(message);
    this.type = ERR_SANDBOX;
  }
}

/**
 * Performs one `container` effect (a sandboxop Request) on the agent
 * instance's container: POST /op to its sandboxd, whose JSON answer is the
 * effect's value; a streamed exec (`stream`) POSTs /exec instead and
 * answers at once with a handle on its stream of frames, which read
 * effects drain as a fetch body's.
 * @param {any} args the Request
 * @param {import("./effects.js").TaskState} task the run's task
 * @param {(agent: string, instance: string) => Promise<{fetch(r: Request): Promise<Response>}>} container
 *   the container of an agent instance, bound to it
 */
export async function performContainer(args, task, container) {
  const run = task.run;
  if (!args || typeof args.op !== "string") {
    const e = new Error("container: args must be a sandbox operation");
    e.type = "bad_effect";
    throw e;
  }
  let stub;
  try {
    stub = await container(run.agent, run.instance);
  } catch (e) {
    throw new SandboxError(`the agent instance's container: ${errorMessage(e)}`);
  }
  const streamed = args.op === "exec" && args.stream === true && args.cmd;
  let response;
  try {
    response = await stub.fetch(new Request(streamed ? "http://sandboxd/exec" : "http://sandboxd/op", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(streamed ? args.cmd : args),
    }));
  } catch (e) {
    throw new SandboxError(`the container's sandboxd went away during ${args.op} (stopped or crashed): ` +
      `${errorMessage(e)}; it is started again for the next operation`);
  }
  if (streamed && response.status === 200) {
    const handle = task.nextHandle++;
    task.handles.set(handle, new BodyStream(response.body, task.secrets.scrubber));
    return { handle };
  }
  const text = await response.text();
  if (response.status !== 200) {
    throw new SandboxError(`the container answered ${args.op} with status ${response.status}: ${text.slice(0, 500)}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SandboxError(`the container's answer to ${args.op} is not JSON: ${errorMessage(e)}`);
  }
}

/** Hop-by-hop, framing and proxy fields: the sender's, never the request's. */
const HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
  "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length", "accept-encoding"]);

/**
 * A request the container sent, as an egress task's payload
 * (wire.EgressRequest): its body read whole, at most MAX_EGRESS_BODY.
 * @param {Request} request
 * @returns {Promise<{method: string, url: string, headers: [string, string][], body?: string}|{tooLarge: true}>}
 */
export async function egressRequest(request) {
  const headers = [];
  for (const [name, value] of request.headers) {
    const n = name.toLowerCase();
    if (HOP.has(n) || n.startsWith("proxy-") || n.startsWith("cf-")) continue;
    headers.push([name, value]);
  }
  const out = { method: request.method, url: request.url, headers };
  if (request.body) {
    const reader = request.body.getReader();
    const chunks = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > MAX_EGRESS_BODY) {
        reader.cancel().catch(() => {});
        return { tooLarge: true };
      }
      chunks.push(value);
    }
    if (size > 0) {
      const bytes = new Uint8Array(size);
      let off = 0;
      for (const c of chunks) {
        bytes.set(c, off);
        off += c.length;
      }
      out.body = toBase64(bytes);
    }
  }
  return out;
}

/**
 * The Container's outbound handler: every HTTP and HTTPS request of the
 * container goes to the agent instance's Durable Object (`egress`, RPC),
 * which asks the module.
 * @param {Request} request
 * @param {{AGENTS: DurableObjectNamespace}} env
 * @param {{agent: string, id: string}|undefined} params set when the
 *   agent instance bound its container (Sandbox.bind)
 * @returns {Promise<Response>}
 */
export async function containerEgress(request, env, params) {
  if (!params?.agent || !params?.id) {
    return egressError(403, "policy_denied", "damper: this container is bound to no agent instance: its requests go nowhere");
  }
  const req = await egressRequest(request);
  if (req.tooLarge) {
    return egressError(413, "payload_too_large", `a sandbox's request body may hold at most ${MAX_EGRESS_BODY} bytes: the policy reads it whole`);
  }
  const stub = env.AGENTS.get(env.AGENTS.idFromName(`${params.agent}/${params.id}`));
  try {
    return await stub.egress(params.agent, params.id, req);
  } catch (e) {
    return egressError(502, "egress_error", errorMessage(e));
  }
}

/**
 * The answer to a container's request once its egress task decided it: a
 * denial is 403 with the decision; an allowed request is sent on the path
 * of every fetch effect (canonical URL, secrets substituted only for an
 * origin that owns them, identity coding), its response streamed back
 * scrubbed of the agent's secrets.
 * @param {any} decision the wire.EgressDecision
 * @param {import("./effects.js").TaskState} task the egress task's state (its secrets)
 * @param {string} agent
 * @returns {Promise<Response>}
 */
export async function egressAnswer(decision, task, agent) {
  if (!decision?.allow) {
    let msg = `damper: the policy of agent ${agent} denied ${decision?.method || "the request"} ${decision?.url || ""}: ${decision?.reason}`;
    if (decision?.rule) msg += ` (rule ${decision.rule})`;
    if (decision?.detail) msg += `: ${decision.detail}`;
    return new Response(JSON.stringify({ error: { type: "policy_denied", message: msg }, decision }) + "\n",
      { status: 403, headers: { "content-type": "application/json" } });
  }
  const r = decision.request;
  let value;
  try {
    value = await performFetch({
      method: r.method, url: r.url, headers: r.headers ?? [],
      body: r.body ? fromBase64(r.body) : undefined, stream: true,
    }, task);
  } catch (e) {
    return egressError(502, "egress_error", task.secrets.scrubber.string(errorMessage(e)));
  }
  const body = task.handles.get(value.handle);
  task.handles.delete(value.handle);
  const headers = new Headers();
  for (const [name, v] of value.headers) {
    // Scrubbing may change the length: the body goes chunked.
    if (!HOP.has(name.toLowerCase())) headers.append(name, v);
  }
  const nullBody = value.status === 204 || value.status === 304 || r.method === "HEAD";
  if (nullBody) body?.cancel();
  const stream = nullBody ? null : new ReadableStream({
    async pull(c) {
      const chunk = await body.read(64 << 10);
      if (chunk === null) c.close();
      else c.enqueue(chunk);
    },
    cancel() {
      body.cancel();
    },
  });
  return new Response(stream, { status: value.status, headers });
}

function egressError(status, type, message) {
  return new Response(JSON.stringify({ error: { type, message } }) + "\n",
    { status, headers: { "content-type": "application/json" } });
}
