// The container of an agent instance on Cloudflare: a Container Durable
// Object (@cloudflare/containers) running sandboxd from
// build/container/Dockerfile on port 8080. It has no internet
// (enableInternet = false): every HTTP and HTTPS request it sends
// (interceptHttps, the image trusting Cloudflare's interception CA) goes to
// the outbound handler, which asks the agent instance's module
// (worker/sandbox.js). Its disk is the container's: it lasts as long as the
// container runs, and a container that slept (sleepAfter, DAMPER_SANDBOX_SLEEP)
// starts again with an empty /workspace (docs/sandbox.md).

import { Container } from "@cloudflare/containers";
import { containerEgress } from "./sandbox.js";

/** The storage key of the agent instance ("agent/id") a container belongs to. */
const OWNER = "damper:owner";

export class Sandbox extends Container {
  defaultPort = 8080;
  enableInternet = false;
  interceptHttps = true;
  sleepAfter = "10m";

  /** Fail closed: a container no agent instance bound sends nothing anywhere. */
  static outbound = (request, env, ctx) => containerEgress(request, env, ctx.params);

  static outboundHandlers = {
    /** The bound container's requests, to its agent instance. */
    damper: (request, env, ctx) => containerEgress(request, env, ctx.params),
  };

  constructor(ctx, env) {
    super(ctx, env);
    if (env.DAMPER_SANDBOX_SLEEP) this.sleepAfter = env.DAMPER_SANDBOX_SLEEP;
  }

  /**
   * Makes this container the agent instance's (RPC from its Durable
   * Object, once per Durable Object lifetime): its requests go to that
   * instance's policy from now on.
   * @param {string} agent
   * @param {string} id
   */
  async bind(agent, id) {
    const key = `${agent}/${id}`;
    const owner = await this.ctx.storage.get(OWNER);
    if (owner !== undefined && owner !== key) {
      throw new Error(`this container belongs to ${owner}, not ${key}`);
    }
    if (owner === undefined) await this.ctx.storage.put(OWNER, key);
    await this.setOutboundHandler("damper", { agent, id });
  }
}
