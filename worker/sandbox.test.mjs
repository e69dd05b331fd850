// The container kind on the Workers host, in Node against the real test
// module: the DO's container effect, and the container's egress, which
// its outbound handler (containerEgress) hands to the agent instance's
// module as an egress task, sent with the credential substituted and
// answered scrubbed, or refused with 403. The Container binding and the
// Durable Object's RPC are played by plain objects; fetch is a recorder, so
// nothing leaves the process. workerd's side (the Sandbox class under
// wrangler dev) is tests/container_test.go's.
//
// It needs DAMPER_TEST_MODULE (go test ./tests -run TestWorkerUnitTests).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, it } from "node:test";

import { Effects, TaskState, fromBase64, toBase64 } from "./effects.js";
import { Runner } from "./runner.js";
import { HostSecrets } from "./secrets.js";
import { containerEgress, egressAnswer, performContainer } from "./sandbox.js";

const modulePath = process.env.DAMPER_TEST_MODULE;
if (!modulePath) throw new Error("DAMPER_TEST_MODULE is not set: run this through `go test ./tests -run TestWorkerUnitTests`");
const wasm = new WebAssembly.Module(readFileSync(modulePath));
const manifest = JSON.parse(readFileSync(modulePath.replace(/damper\.wasm$/, "manifest.json"), "utf8"));

const TOKEN = "fake-token-egress-js-4d1c";
const PLAIN = "fake-token-plain-js-9e0a";
const API = "http://127.0.0.1:1";
const PLAIN_API = "http://127.0.0.1:2";

let sent;
const realFetch = globalThis.fetch;
beforeEach(() => {
  sent = [];
  globalThis.fetch = async (url, init) => {
    const headers = new Headers(init.headers);
    sent.push({ url, method: init.method, headers });
    return new Response(`hello ${init.method} ${new URL(url).pathname} auth=${headers.get("authorization")} key=${headers.get("x-api-key")}`);
  };
});
afterEach(() => {
  globalThis.fetch = realFetch;
});

/**
 * A Runner of the test module whose container, when a run executes a
 * command in it, sends the requests `script` lists (as a container would,
 * through its outbound handler) and prints their answers.
 */
function world() {
  const targets = new Map([["api", API], ["plain", PLAIN_API]]);
  const events = [];
  let runner;
  let script = [];
  const agentDO = {
    async egress(agent, id, req) {
      const { decision, task } = await runner.egress(agent, id, req);
      return egressAnswer(decision, task, agent);
    },
  };
  const env = { AGENTS: { idFromName: (n) => n, get: () => agentDO } };
  const real = new Effects({
    onEvent: (e, task) => events.push({ ...e, run: task.run.run }),
    container: async (args, task) => {
      const run = task.run;
      if (args.op === "open") return { dir: "/workspace" };
      const lines = [];
      for (const r of script) {
        const resp = await containerEgress(r, env, { agent: run.agent, id: run.instance });
        lines.push(`${resp.status} ${await resp.text()}`);
      }
      return { result: { stdout: toBase64(new TextEncoder().encode(lines.join("\x1e"))), exit_code: 0 } };
    },
  });
  const effects = {
    perform(effect, task) {
      if (effect.type === "sql") { // in memory: the egress policy counts nothing
        return {
          id: effect.id,
          value: { results: effect.args.statements.map((s) => (/^\s*SELECT/i.test(s.sql) ? { columns: ["v"], rows: [[0]] } : { columns: [], rows: [] })) },
        };
      }
      return real.perform(effect, task);
    },
  };
  runner = new Runner({ wasm, effects, idleMs: 0, targets, secrets: new HostSecrets(manifest, targets, { EGRESS_TOKEN: TOKEN, PLAIN_TOKEN: PLAIN }) });
  return {
    runner, env, events,
    /** Runs one exec in which the container sends `requests`; returns its stdout lines. */
    async exec(...requests) {
      script = requests;
      const reply = await runner.run("probe.sandbox.container", "w", JSON.stringify({ op: "exec", cmd: { script: "requests" } }));
      assert.equal(reply.status, 200, reply.body);
      const res = JSON.parse(reply.body).result;
      assert.equal(res.error, undefined, JSON.stringify(res.error));
      return new TextDecoder().decode(fromBase64(res.result.stdout ?? "")).split("\x1e");
    },
  };
}

describe("container egress", () => {
  it("sends what the policy allows, with the credential, and scrubs the answer", async () => {
    const w = world();
    const [https, http, post] = await w.exec(
      new Request("https://api.damper.test/v1/hello", { headers: { "X-Trace": "t1", "Proxy-Authorization": "x" } }),
      new Request("http://plain.damper.test/v1/hello"),
      new Request("https://api.damper.test/v1/items", { method: "POST", headers: { "content-type": "application/json" }, body: '{"kind":"note"}' }),
    );
    assert.match(https, /^200 hello GET \/v1\/hello auth=Bearer \[REDACTED:EGRESS_TOKEN\]/);
    assert.match(http, /^200 hello GET \/v1\/hello auth=null key=\[REDACTED:PLAIN_TOKEN\]/);
    assert.match(post, /^200 hello POST \/v1\/items/);
    assert.deepEqual(sent.map((s) => s.url), [`${API}/v1/hello`, `${PLAIN_API}/v1/hello`, `${API}/v1/items`],
      "sent to the services' targets, at the canonical URL");
    assert.equal(sent[0].headers.get("authorization"), `Bearer ${TOKEN}`, "the host substituted the credential");
    assert.equal(sent[0].headers.get("x-trace"), "t1", "an allowed header passes");
    assert.equal(sent[0].headers.get("proxy-authorization"), null, "a proxy header does not");
    assert.equal(sent[1].headers.get("x-api-key"), PLAIN);
    const allows = w.events.filter((e) => e.type === "egress.allow");
    assert.equal(allows.length, 3, JSON.stringify(w.events));
    assert.match(allows[0].run, /^r_/, "the event belongs to the run whose command sent it");
    assert.ok(!JSON.stringify(w.events).includes(TOKEN));
  });

  it("answers 403 with the decision for a denied path, method, body or host", async () => {
    const w = world();
    const lines = await w.exec(
      new Request("https://api.damper.test/admin"),
      new Request("https://api.damper.test/v1/hello", { method: "DELETE" }),
      new Request("https://api.damper.test/v1/items", { method: "POST", headers: { "content-type": "application/json" }, body: '{"kind":"secret"}' }),
      new Request("https://evil.damper.test/v1/hello"),
      new Request("http://api.damper.test/v1/hello"),
      new Request("https://api.damper.test/v1/x", { headers: { authorization: "Bearer ${secret:EGRESS_TOKEN}" } }),
    );
    for (const line of lines) {
      assert.match(line, /^403 /, line);
      assert.match(line, /policy_denied/);
    }
    assert.match(lines[0], /deny-level/);
    assert.match(lines[3], /no-service/);
    assert.equal(sent.length, 0, "no denied request was sent");
    assert.equal(w.events.filter((e) => e.type === "egress.deny").length, 6);
  });

  it("refuses a request when no run uses the sandbox, and one from an unbound container", async () => {
    const w = world();
    await w.exec(); // the module instance exists, no run is going
    const resp = await containerEgress(new Request("https://api.damper.test/v1/hello"), w.env, { agent: "probe.sandbox.container", id: "w" });
    assert.equal(resp.status, 403);
    assert.match(await resp.text(), /no_run/);
    const unbound = await containerEgress(new Request("https://api.damper.test/v1/hello"), w.env, undefined);
    assert.equal(unbound.status, 403);
    assert.equal(sent.length, 0);
  });
});

describe("container effect", () => {
  const run = { agent: "a", instance: "i" };
  const task = new TaskState("t1", run);
  it("posts the operation to sandboxd and returns its answer", async () => {
    let got;
    const stub = { fetch: async (r) => { got = { url: r.url, body: await r.json() }; return Response.json({ dir: "/workspace" }); } };
    assert.deepEqual(await performContainer({ op: "open" }, task, async () => stub), { dir: "/workspace" });
    assert.deepEqual(got, { url: "http://sandboxd/op", body: { op: "open" } });
  });

  it("fails with sandbox_error when the container goes away or answers badly", async () => {
    for (const [stub, want] of [
      [{ fetch: async () => { throw new Error("container crashed"); } }, /went away during exec.*container crashed/],
      [{ fetch: async () => new Response("boom", { status: 500 }) }, /status 500: boom/],
      [{ fetch: async () => new Response("not json") }, /not JSON/],
    ]) {
      await assert.rejects(performContainer({ op: "exec", cmd: { script: "x" } }, task, async () => stub), (e) => e.type === "sandbox_error" && want.test(e.message));
    }
    await assert.rejects(performContainer({ op: "open" }, task, async () => { throw new Error("no binding"); }), (e) => e.type === "sandbox_error");
  });

  it("streams an exec's frames through a handle the read effect drains", async () => {
    const frames = '{"stdout":"b25lCg=="}\n{"end":{"result":{"stdout":"b25lCg==","exit_code":0}}}\n';
    let got;
    const stub = { fetch: async (r) => { got = { url: r.url, body: await r.json() }; return new Response(frames); } };
    const t = new TaskState("t2", run);
    const v = await performContainer({ op: "exec", stream: true, cmd: { script: "echo one" } }, t, async () => stub);
    assert.deepEqual(got, { url: "http://sandboxd/exec", body: { script: "echo one" } });
    assert.ok(Number.isInteger(v.handle));
    const effects = new Effects({});
    let text = "";
    for (;;) {
      const r = await effects.perform({ id: 1, type: "read", args: { handle: v.handle, max: 1 << 16 } }, t);
      if (r.value.eof) break;
      text += new TextDecoder().decode(fromBase64(r.value.body));
    }
    assert.equal(text, frames);
  });

  it("is unknown to a Worker without a Container binding", async () => {
    const r = await new Effects({}).perform({ id: 1, type: "container", args: { op: "open" } }, { run, secrets: { scrubber: { string: (s) => s } } });
    assert.equal(r.error.type, "unknown_effect");
    assert.match(r.error.message, /SANDBOX/);
  });
});
