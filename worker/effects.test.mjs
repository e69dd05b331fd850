// The Workers host's fetch effect with a policy: substitution only for
// origins that own the secret, scrubbing of everything handed back, and the
// DAMPER_TARGETS var. Run with `node --test worker/` (tests/nodetest_test.go
// does, inside `go test`). fetch is replaced by a recorder: nothing leaves
// the process.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";

import { Effects, TaskState, fromBase64, toBase64 } from "./effects.js";
import { Scrubber } from "./scrub.js";
import { AgentSecrets } from "./secrets.js";
import { parseTargets, targetsFromEnv } from "./targets.js";

const SECRET = "fake+tok/en=="; // an obvious fake, with base64 and percent-encoding specials
const B64 = btoa(SECRET);

const POLICY = {
  version: 1,
  services: [
    {
      name: "api", target: "https://api.example.test", secrets: ["PROBE_API_TOKEN"], level: "allow-all",
      credentials: [{ header: "Authorization", value: "Bearer ${secret:PROBE_API_TOKEN}" }],
    },
    { name: "other", target: "https://other.example.test", level: "allow-read" },
  ],
};

/** Every request fetch was asked to send, and what it answers. */
let sent;
let answer;
const realFetch = globalThis.fetch;

beforeEach(() => {
  sent = [];
  answer = () => new Response("ok");
  globalThis.fetch = async (url, init) => {
    sent.push({ url, headers: init.headers, init });
    return answer(url, init);
  };
});
afterEach(() => {
  globalThis.fetch = realFetch;
});

function task(targets = new Map(), env = { PROBE_API_TOKEN: SECRET }) {
  return new TaskState("t1", { agent: "probe.policy", instance: "i", run: "r_1" }, new AgentSecrets(POLICY, targets, env));
}

async function fetchEffect(t, url, headers, stream = false) {
  return new Effects({}).perform({ id: 1, type: "fetch", args: { method: "GET", url, headers, stream } }, t);
}

/** A body that arrives in the given chunks. */
function chunked(...parts) {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const p of parts) c.enqueue(enc.encode(p));
      c.close();
    },
  });
}

describe("fetch with secrets", () => {
  it("substitutes a placeholder for the origin that owns it", async () => {
    const r = await fetchEffect(task(), "https://api.example.test/v1", [["Authorization", "Bearer ${secret:PROBE_API_TOKEN}"]]);
    assert.equal(r.error, undefined);
    assert.deepEqual(sent[0].headers, [["Authorization", `Bearer ${SECRET}`], ["accept-encoding", "identity"]]);
  });

  it("refuses a placeholder for another origin, and sends nothing", async () => {
    for (const url of ["https://other.example.test/landing", "https://api.example.test:8443/", "http://api.example.test/"]) {
      const r = await fetchEffect(task(), url, [["X-Smuggle", "${secret:PROBE_API_TOKEN}"]]);
      assert.equal(r.error?.type, "fetch_error", url);
      assert.match(r.error.message, /PROBE_API_TOKEN/);
      assert.match(r.error.message, /not owned/);
      assert.ok(!r.error.message.includes(SECRET));
    }
    assert.equal(sent.length, 0);
  });

  it("refuses a secret that is not set, and a malformed placeholder", async () => {
    let r = await fetchEffect(task(new Map(), {}), "https://api.example.test/", [["Authorization", "${secret:PROBE_API_TOKEN}"]]);
    assert.equal(r.error?.type, "fetch_error");
    assert.match(r.error.message, /PROBE_API_TOKEN is not configured/);
    r = await fetchEffect(task(), "https://api.example.test/", [["X", "${oops}"]]);
    assert.equal(r.error?.type, "fetch_error");
    assert.equal(sent.length, 0);
  });

  it("reads only the secrets the policy names", async () => {
    const t = task(new Map(), { PROBE_API_TOKEN: SECRET, OTHER_SECRET: "fake-other" });
    const r = await fetchEffect(t, "https://api.example.test/", [["X", "${secret:OTHER_SECRET}"]]);
    assert.match(r.error.message, /OTHER_SECRET/);
    assert.deepEqual([...t.secrets.values.keys()], ["PROBE_API_TOKEN"]);
  });

  it("follows a target override", async () => {
    const t = task(new Map([["api", "http://127.0.0.1:9999"]]));
    const auth = [["Authorization", "Bearer ${secret:PROBE_API_TOKEN}"]];
    assert.equal((await fetchEffect(t, "http://127.0.0.1:9999/x", auth)).error, undefined);
    assert.equal((await fetchEffect(t, "https://api.example.test/x", auth)).error?.type, "fetch_error");
    assert.equal(sent.length, 1);
  });

  it("scrubs response headers and a whole body", async () => {
    answer = () => new Response(`{"auth":"Bearer ${SECRET}","b64":"${B64}","pct":"${encodeURIComponent(SECRET)}"}`, {
      headers: { "X-Echo": SECRET },
    });
    const r = await fetchEffect(task(), "https://api.example.test/echo", []);
    const body = new TextDecoder().decode(fromBase64(r.value.body));
    assert.equal(body, `{"auth":"Bearer [REDACTED:PROBE_API_TOKEN]","b64":"[REDACTED:PROBE_API_TOKEN]","pct":"[REDACTED:PROBE_API_TOKEN]"}`);
    assert.deepEqual(r.value.headers.find(([k]) => k === "x-echo"), ["x-echo", "[REDACTED:PROBE_API_TOKEN]"]);
  });

  it("scrubs a streamed body whose secret is split between chunks", async () => {
    for (let k = 0; k <= SECRET.length; k++) {
      answer = () => new Response(chunked("<<" + SECRET.slice(0, k), SECRET.slice(k) + ">>"));
      const t = task();
      const effects = new Effects({});
      const r = await effects.perform({ id: 1, type: "fetch", args: { method: "GET", url: "https://api.example.test/s", stream: true } }, t);
      let got = "";
      for (;;) {
        const read = await effects.perform({ id: 2, type: "read", args: { handle: r.value.handle, max: 3 } }, t);
        assert.equal(read.error, undefined);
        if (read.value.eof) break;
        const chunk = fromBase64(read.value.body);
        assert.ok(chunk.length >= 1 && chunk.length <= 3, `a read returns 1 to max bytes, got ${chunk.length}`);
        got += new TextDecoder().decode(chunk);
      }
      assert.equal(got, "<<[REDACTED:PROBE_API_TOKEN]>>", `split at ${k}`);
      assert.equal(t.handles.size, 0, "released at EOF");
    }
  });

  it("refuses an interim response that comes back as the answer, unread", async () => {
    for (const status of [101, 103]) {
      for (const stream of [false, true]) {
        let canceled = false;
        // workerd hands a 103 over as final; Response cannot be built with one.
        const body = new ReadableStream({ cancel() { canceled = true; } });
        answer = () => ({ status, headers: new Headers({ link: "</x>" }), body });
        const r = await fetchEffect(task(), "https://api.example.test/hints", [], stream);
        assert.equal(r.error?.type, "fetch_error");
        assert.equal(r.error.message, `refusing an interim response (status ${status}) as the answer: the host never reads what follows one`);
        assert.ok(canceled, "the body is canceled unread");
      }
    }
  });

  it("scrubs error messages", async () => {
    answer = () => {
      throw new TypeError(`the server quoted ${SECRET}`);
    };
    const r = await fetchEffect(task(), "https://api.example.test/", []);
    assert.equal(r.error.type, "fetch_error");
    assert.match(r.error.message, /quoted \[REDACTED:PROBE_API_TOKEN\]/);
  });

  it("substitutes nothing for an agent without a policy", async () => {
    const t = new TaskState("t1", { agent: "x", instance: "i", run: "r" });
    const r = await fetchEffect(t, "https://api.example.test/", [["Authorization", "${secret:PROBE_API_TOKEN}"]]);
    assert.equal(r.error?.type, "fetch_error");
    assert.equal(sent.length, 0);
  });
});

describe("response encodings", () => {
  it("asks for identity only, and keeps workerd's decoder off the body", async () => {
    const r = await fetchEffect(task(), "https://api.example.test/", [["X-Probe", "1"]]);
    assert.equal(r.error, undefined);
    assert.deepEqual(sent[0].headers.filter(([k]) => k.toLowerCase() === "accept-encoding"), [["accept-encoding", "identity"]]);
    assert.equal(sent[0].init.encodeResponseBody, "manual");
  });

  it("keeps an identity response as it is", async () => {
    answer = () => new Response("plain", { headers: { "Content-Encoding": "identity" } });
    const r = await fetchEffect(task(), "https://api.example.test/", []);
    assert.equal(r.error, undefined);
    assert.deepEqual(r.value.headers, [["content-encoding", "identity"], ["content-type", "text/plain;charset=UTF-8"]]);
  });

  it("refuses every other coding, in any spelling, and cancels the body unread", async () => {
    const codings = ["gzip", "GZIP", "Gzip", "br", "deflate", "zstd", "x-gzip", "compress", "gzip, gzip",
      "gzip, br", "identity, gzip", "gzip;q=1", "\u00a0identity"];
    for (const coding of codings) {
      for (const stream of [false, true]) {
        let pulled = false;
        let canceled = false;
        answer = () => new Response(new ReadableStream({
          pull(c) { pulled = true; c.enqueue(new TextEncoder().encode(SECRET)); },
          cancel() { canceled = true; },
        }, { highWaterMark: 0 }), { headers: { "Content-Encoding": coding } });
        const t = task();
        const r = await fetchEffect(t, "https://api.example.test/z", [], stream);
        assert.equal(r.error?.type, "fetch_error", coding);
        assert.ok(r.error.message.includes(`refusing a response with Content-Encoding ${JSON.stringify(coding)}`), r.error.message);
        assert.ok(!r.error.message.includes(SECRET));
        assert.ok(canceled, `${coding}: body canceled`);
        assert.ok(!pulled, `${coding}: body read`);
        assert.equal(t.handles.size, 0);
      }
    }
  });

  it("refuses a transfer coding other than chunked, and a head over MAX_RESPONSE_HEAD", async () => {
    for (const [headers, ok] of [
      [{ "Transfer-Encoding": "chunked" }, true],
      [{ "Transfer-Encoding": " Chunked " }, true],
      [{ "Transfer-Encoding": "gzip, chunked" }, false],
      [{ "Transfer-Encoding": "chunked, chunked" }, false],
      [{ "Transfer-Encoding": "identity" }, false],
      [{ "X-Big": "h".repeat(64 << 10) }, true],
      [{ "X-Big": "h".repeat(128 << 10) }, false],
      [{ "X-A": "h".repeat(70 << 10), "X-B": "h".repeat(70 << 10) }, false],
    ]) {
      answer = () => new Response(SECRET, { headers });
      const r = await fetchEffect(task(), "https://api.example.test/z", []);
      const label = JSON.stringify(headers).slice(0, 60);
      if (ok) {
        assert.equal(r.error, undefined, label);
      } else {
        assert.equal(r.error?.type, "fetch_error", label);
        assert.match(r.error.message, /^refusing a response (with Transfer-Encoding|whose head is over 131072 bytes)/, label);
      }
    }
  });

  it("refuses a coding spread over two field lines", async () => {
    answer = () => {
      const h = new Headers();
      h.append("Content-Encoding", "identity");
      h.append("Content-Encoding", "gzip");
      return new Response("x", { headers: h });
    };
    const r = await fetchEffect(task(), "https://api.example.test/z", []);
    assert.equal(r.error?.type, "fetch_error");
    assert.ok(r.error.message.includes('Content-Encoding "identity, gzip"'), r.error.message);
  });
});

describe("host-owned headers", () => {
  it("refuses an effect carrying one, and sends nothing", async () => {
    const names = ["Host", "host", "Accept-Encoding", "Content-Length", "Transfer-Encoding", "Connection",
      "TE", "Upgrade", "Trailer", "Keep-Alive", "Proxy-Authorization", "X-Forwarded-For", "Forwarded", "Via", "Expect"];
    for (const name of names) {
      const r = await fetchEffect(task(), "https://api.example.test/x",
        [["Authorization", "Bearer ${secret:PROBE_API_TOKEN}"], [name, "elsewhere.example.test"]]);
      assert.equal(r.error?.type, "fetch_error", name);
      assert.ok(r.error.message.includes(`${JSON.stringify(name)} header is set by the host`), r.error.message);
    }
    assert.equal(sent.length, 0);
  });

  it("lets the others through", async () => {
    const r = await fetchEffect(task(), "https://api.example.test/x", [["Range", "bytes=0-"], ["X-Hostname", "a"]]);
    assert.equal(r.error, undefined);
    assert.equal(sent.length, 1);
  });
});

describe("ScrubStream", () => {
  const text = (b) => new TextDecoder().decode(b);
  const enc = (s) => new TextEncoder().encode(s);

  it("holds back the run that ends a chunk, whether or not it begins a secret", () => {
    const st = new Scrubber([{ name: "T", value: SECRET }]).stream();
    assert.equal(text(st.push(enc('data: {"x":1}\n\n'))), 'data: {"x":1}\n\n', "nothing held after punctuation");
    assert.equal(text(st.push(enc("event: ping\n\n"))), "event: ", "a word and two line breaks may be base64");
    assert.equal(text(st.push(enc("data: [DONE]\n\n"))), "ping\n\ndata: [DONE]\n\n");
    assert.equal(text(st.push(enc("x fake+to"))), "x ");
    assert.equal(text(st.push(enc("ok!"))), "fake+took!");
    assert.equal(text(st.push(enc(" fa"))), " ");
    assert.equal(text(st.push(enc("ke+tok/en== y"))), "[REDACTED:T] ");
    assert.equal(text(st.flush()), "y");
  });

  it("hands out as much for a guess that begins the secret as for one that does not", () => {
    const s = new Scrubber([{ name: "T", value: SECRET }]);
    const out = (guess) => s.stream().push(enc(guess)).length;
    for (const known of [0, 4, SECRET.length - 1]) {
      const lengths = new Set([..."abcdefghijklmnopqrstuvwxyz0123456789+/="].map((c) => out("}" + SECRET.slice(0, known) + c)));
      assert.equal(lengths.size, 1, `knowing ${known} bytes`);
    }
  });

  it("flushes what it held at the end", () => {
    const st = new Scrubber([{ name: "T", value: SECRET }]).stream();
    assert.equal(text(st.push(enc("end fake"))), "end ");
    assert.equal(text(st.flush()), "fake");
  });
});

describe("DAMPER_TARGETS", () => {
  it("parses pairs into canonical origins", () => {
    assert.deepEqual(parseTargets("api=http://127.0.0.1:9999, other=HTTPS://Other.Example.test:443/"), new Map([
      ["api", "http://127.0.0.1:9999"],
      ["other", "https://other.example.test"],
    ]));
    assert.deepEqual(parseTargets(""), new Map());
  });

  it("refuses bad syntax, saying where", () => {
    for (const [text, want] of [
      ["api", /want name=scheme/],
      ["api=", /want scheme/],
      ["API=http://x", /service name/],
      ["api=http://x,api=http://y", /twice/],
      ["api=http://x/v1", /no path/],
      ["api=ftp://x", /http or https/],
      ["api=http://user@x", /userinfo/],
      ["api=http://x,", /pair 2/],
    ]) {
      assert.throws(() => parseTargets(text), want, text);
    }
  });

  it("is a configuration problem in env, not a silent default", () => {
    const bad = targetsFromEnv({ DAMPER_TARGETS: "api=not a url" });
    assert.match(bad.problem, /^DAMPER_TARGETS is malformed/);
    const good = targetsFromEnv({ DAMPER_TARGETS: "api=http://127.0.0.1:9999" });
    assert.equal(good.problem, null);
    assert.equal(good.targets.get("api"), "http://127.0.0.1:9999");
    assert.equal(targetsFromEnv({}).targets.size, 0);
  });
});

describe("the AI binding", () => {
  const request = (body, stream = true) => ({
    binding: "AI", method: "POST", url: "https://api.example.test/client/v4/accounts/acc/ai/v1/chat/completions",
    headers: [["Authorization", "Bearer ${secret:PROBE_API_TOKEN}"], ["Content-Type", "application/json"]],
    body: btoa(JSON.stringify(body)), stream,
  });
  async function readAll(effects, t, handle) {
    let text = "";
    for (;;) {
      const r = await effects.perform({ id: 2, type: "read", args: { handle, max: 7 } }, t);
      assert.equal(r.error, undefined);
      if (r.value.eof) return text;
      text += new TextDecoder().decode(fromBase64(r.value.body));
    }
  }

  it("calls env.AI and answers a Chat Completions stream", async () => {
    const calls = [];
    const ai = { run: async (model, inputs) => { calls.push({ model, inputs }); return { response: "Hi", tool_calls: [{ name: "past", arguments: { query: "x" } }], usage: { prompt_tokens: 5, completion_tokens: 2 } }; } };
    const effects = new Effects({ ai });
    const t = task();
    const messages = [{ role: "user", content: "hello" }];
    const r = await effects.perform({ id: 1, type: "binding", args: request({ model: "@cf/meta/llama", messages, tools: [], max_tokens: 10, stream: true }) }, t);
    assert.equal(r.error, undefined);
    assert.equal(r.value.status, 200);
    assert.deepEqual(r.value.headers, [["content-type", "text/event-stream"]]);
    assert.deepEqual(calls, [{ model: "@cf/meta/llama", inputs: { messages, tools: [], max_tokens: 10 } }]);
    assert.equal(sent.length, 0, "nothing was fetched");
    const events = (await readAll(effects, t, r.value.handle)).split("\n\n").filter(Boolean);
    assert.equal(events.at(-1), "data: [DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice("data: ".length)));
    assert.equal(chunks[0].choices[0].delta.content, "Hi");
    assert.deepEqual(chunks[1].choices[0].delta.tool_calls[0].function, { name: "past", arguments: '{"query":"x"}' });
    assert.equal(chunks[2].choices[0].finish_reason, "tool_calls");
    assert.deepEqual(chunks[3].usage, { prompt_tokens: 5, completion_tokens: 2, total_tokens: 0 });
  });

  it("answers a failed call as the REST API does", async () => {
    const effects = new Effects({ ai: { run: async () => { throw new Error("model overloaded"); } } });
    const r = await effects.perform({ id: 1, type: "binding", args: request({ model: "@cf/x", messages: [] }, false) }, task());
    assert.equal(r.value.status, 500);
    assert.match(new TextDecoder().decode(fromBase64(r.value.body)), /Workers AI: model overloaded/);
  });

  it("sends the request to the REST API without the binding, with the credential", async () => {
    answer = () => new Response("data: [DONE]\n\n", { headers: { "content-type": "text/event-stream" } });
    const r = await new Effects({}).perform({ id: 1, type: "binding", args: request({ model: "@cf/x", messages: [] }) }, task());
    assert.equal(r.error, undefined);
    assert.equal(sent.length, 1);
    assert.equal(sent[0].url, "https://api.example.test/client/v4/accounts/acc/ai/v1/chat/completions");
    assert.ok(sent[0].headers.some(([k, v]) => k === "Authorization" && v === `Bearer ${SECRET}`));
  });

  it("refuses other bindings", async () => {
    const r = await new Effects({}).perform({ id: 1, type: "binding", args: { ...request({}), binding: "KV" } }, task());
    assert.deepEqual(r.error, { type: "binding_error", message: 'binding "KV": this host offers the binding AI only' });
  });
});

describe("requests to the telemetry collector", () => {
  it("go out scrubbed of the agent's secrets, which the collector never owns", async () => {
    const t = task();
    t.collector = "https://otel.example.test";
    const body = toBase64(new TextEncoder().encode(`{"text":"the key is ${SECRET} and ${B64}"}`));
    const r = await new Effects({}).perform({ id: 1, type: "fetch", args: { method: "POST", url: "https://otel.example.test/v1/traces", headers: [], body } }, t);
    assert.equal(r.error, undefined);
    assert.equal(new TextDecoder().decode(sent[0].init.body), `{"text":"the key is [REDACTED:PROBE_API_TOKEN] and [REDACTED:PROBE_API_TOKEN]"}`);
  });
});
