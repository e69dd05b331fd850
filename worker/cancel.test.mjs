// Canceling runs on the Workers host, over the real test module: the run
// timeout and a caller that has gone both end the batch in flight and cancel
// the task in the guest (damper_cancel), as the local host does; and an
// export whose output passes the 64 MiB cap is a trap, as on the local host.
//
// It needs DAMPER_TEST_MODULE (go test ./tests -run TestWorkerUnitTests
// builds it and sets it). Sleeps are the real sleep effect (worker/effects.js);
// SQL is answered in memory, so what a canceled run committed is checked by
// the end-to-end suite, against a real Durable Object.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import { Effects } from "./effects.js";
import { MAX_OUTPUT } from "./module.js";
import { DEFAULT_RUN_TIMEOUT_MS, Runner, callerSignal, goDuration, parseRunTimeout } from "./runner.js";

const wasm = (() => {
  const path = process.env.DAMPER_TEST_MODULE;
  if (!path) throw new Error("DAMPER_TEST_MODULE is not set: run this through `go test ./tests -run TestWorkerUnitTests`");
  return new WebAssembly.Module(readFileSync(path));
})();

/**
 * Sleeps for real (honouring the task's signal); SQL in memory; every
 * effect recorded. `started` resolves at the first sleep.
 */
function effects() {
  const real = new Effects({});
  const seen = [];
  let started;
  const sleeping = new Promise((resolve) => (started = resolve));
  return {
    seen,
    sleeping,
    async perform(effect, task) {
      seen.push(effect.type);
      switch (effect.type) {
        case "sleep": {
          started();
          const r = await real.perform(effect, task);
          seen.push(`slept:${r.error?.type ?? "ok"}`);
          return r;
        }
        case "sql":
          return {
            id: effect.id,
            value: {
              results: effect.args.statements.map((s) =>
                /^\s*SELECT/i.test(s.sql) ? { columns: ["v"], rows: [[0]] } : { columns: [], rows: [] }),
            },
          };
        default:
          return { id: effect.id, value: {} };
      }
    },
  };
}

const HOUR = JSON.stringify({ key: "k", ms: 3_600_000 });

function error(reply) {
  return JSON.parse(reply.body).error;
}

describe("run timeout", () => {
  it("cancels a run still going, answers 504 canceled, and serves the next run", async () => {
    const fx = effects();
    const runner = new Runner({ wasm, effects: fx, idleMs: 0, runTimeoutMs: 500 });
    // A first run creates the module instance, so the timed run spends its
    // half second in its sleep.
    assert.equal((await runner.run("probe.sleep", "i", JSON.stringify({ ms: 1 }))).status, 200);
    const reply = await runner.run("probe.slow", "i", HOUR);
    assert.equal(reply.status, 504, reply.body);
    assert.equal(error(reply).type, "canceled");
    assert.match(error(reply).message, /run timeout \(500ms\)/);
    assert.ok(fx.seen.includes("slept:canceled"), `the sleep was cut short: ${fx.seen}`);
    const next = await runner.run("probe.sleep", "i", JSON.stringify({ ms: 1 }));
    assert.equal(next.status, 200, next.body);
  });

  it("is 5 minutes by default, and DAMPER_RUN_TIMEOUT takes Go durations", () => {
    assert.equal(DEFAULT_RUN_TIMEOUT_MS, 300_000);
    assert.equal(new Runner({ wasm, effects: effects() }).runTimeoutMs, 300_000);
    for (const [v, ms] of [[undefined, 300_000], ["", 300_000], ["90s", 90_000], ["5m", 300_000], ["1h30m", 5_400_000],
      ["1.5s", 1500], ["250ms", 250], ["+3s", 3000], ["0", 0], ["0s", 0]]) {
      assert.deepEqual(parseRunTimeout(v), { ms }, JSON.stringify(v));
    }
    for (const v of ["5", "-1s", "1x", ".s", "5 m", "m", "1h 30m", "1e3s"]) {
      assert.match(parseRunTimeout(v).problem ?? "", /DAMPER_RUN_TIMEOUT/, JSON.stringify(v));
    }
    // Named as Go's time.Duration.String names it, as the local host does.
    for (const [ms, s] of [[300_000, "5m0s"], [3000, "3s"], [1500, "1.5s"], [250, "250ms"], [3_600_000, "1h0m0s"], [61_000, "1m1s"]]) {
      assert.equal(goDuration(ms), s);
    }
  });
});

describe("a caller that has gone", () => {
  it("cancels the running run", async () => {
    const fx = effects();
    const runner = new Runner({ wasm, effects: fx, idleMs: 0, runTimeoutMs: 0 });
    const caller = new AbortController();
    const reply = runner.run("probe.slow", "i", HOUR, { signal: caller.signal });
    await fx.sleeping;
    caller.abort();
    const r = await reply;
    assert.equal(error(r).type, "canceled", r.body);
    assert.notEqual(r.status, 504, "not a run timeout");
    assert.ok(fx.seen.includes("slept:canceled"));
    assert.equal((await runner.run("probe.sleep", "i", JSON.stringify({ ms: 1 }))).status, 200);
  });

  it("never starts a run it left waiting", async () => {
    const fx = effects();
    const runner = new Runner({ wasm, effects: fx, idleMs: 0, runTimeoutMs: 0 });
    const first = new AbortController();
    const running = runner.run("probe.slow", "i", HOUR, { signal: first.signal });
    await fx.sleeping;
    const second = new AbortController();
    const waiting = runner.run("probe.slow", "i", JSON.stringify({ key: "k2", ms: 1 }), { signal: second.signal });
    second.abort();
    const sleepsBefore = fx.seen.filter((t) => t === "sleep").length;
    first.abort();
    await running;
    const w = await waiting;
    assert.equal(error(w).type, "canceled", w.body);
    assert.equal(fx.seen.filter((t) => t === "sleep").length, sleepsBefore, "the waiting run ran");
  });

  it("is seen as the end of the stream the Worker holds open", async () => {
    const held = new TransformStream();
    const { signal, stop } = callerSignal(held.readable);
    assert.equal(signal.aborted, false);
    // workerd errors the Durable Object's side when the Worker's
    // invocation ends; the writer's abort stands for that here.
    await held.writable.abort(new Error("disconnected prematurely"));
    await new Promise((r) => setImmediate(r));
    assert.equal(signal.aborted, true);
    stop();

    const closed = new TransformStream();
    const c = callerSignal(closed.readable);
    await closed.writable.close();
    await new Promise((r) => setImmediate(r));
    assert.equal(c.signal.aborted, true, "a closed stream is a caller gone too");

    assert.equal(callerSignal(undefined).signal, undefined);
  });
});

describe("export output cap", () => {
  it("treats an output over 64 MiB as a trap, and the next run gets a fresh instance", async () => {
    assert.equal(MAX_OUTPUT, 64 << 20);
    const runner = new Runner({ wasm, effects: effects(), idleMs: 0 });
    const under = await runner.run("probe.huge", "i", JSON.stringify({ mib: 1 }));
    assert.equal(under.status, 200);
    const trapped = runner.module;
    const over = await runner.run("probe.huge", "i", JSON.stringify({ mib: 65 }));
    assert.equal(over.status, 500);
    assert.equal(error(over).type, "module_trap");
    assert.match(error(over).message, /over the 67108864 limit/);
    assert.equal(trapped.dead, true);
    const next = await runner.run("probe.sleep", "i", JSON.stringify({ ms: 1 }));
    assert.equal(next.status, 200, next.body);
    assert.notEqual(runner.module, trapped);
  });
});
