// The Runner's queue, driven in Node over the real test module (hello and
// the probe agents): one run at a time per agent instance, in arrival
// order, at most MAX_WAITING waiting, the rest answered 429 at once. The
// effects are answered in-process, and the sleep effect waits on a gate the
// test opens, so the queue is filled deterministically, not by timing.
//
// It needs DAMPER_TEST_MODULE, the path of the test module; go test
// ./tests (TestWorkerUnitTests) builds it and sets it.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { it } from "node:test";

import { MAX_WAITING, Runner } from "./runner.js";

function testModule() {
  const path = process.env.DAMPER_TEST_MODULE;
  if (!path) throw new Error("DAMPER_TEST_MODULE is not set: run this through `go test ./tests -run TestWorkerUnitTests`");
  return new WebAssembly.Module(readFileSync(path));
}

/** Effects answered in memory; every sleep waits until open() is called. */
function gatedEffects() {
  let open;
  const gate = new Promise((resolve) => (open = resolve));
  const slept = [];
  return {
    slept,
    open: () => open(),
    async perform(effect) {
      switch (effect.type) {
        case "sleep":
          slept.push(effect.args.ms);
          await gate;
          return { id: effect.id, value: {} };
        case "sql":
          // The runtime's own bookkeeping: a SELECT of the schema version
          // finds version 0 the first time; nothing else returns rows.
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

it("serializes runs in arrival order and answers 429 past MAX_WAITING", async () => {
  const effects = gatedEffects();
  const runner = new Runner({ wasm: testModule(), effects, idleMs: 0 });

  // One run holds the agent instance (it waits in its sleep effect) ...
  // ms identifies the run (Sleep(0) would not wait on the host at all).
  const replies = [runner.run("probe.sleep", "q", JSON.stringify({ ms: 1 }))];
  while (effects.slept.length === 0) await new Promise((r) => setImmediate(r));
  // ... and MAX_WAITING more wait behind it.
  for (let i = 1; i <= MAX_WAITING; i++) {
    replies.push(runner.run("probe.sleep", "q", JSON.stringify({ ms: i + 1 })));
  }

  const refused = await runner.run("probe.sleep", "q", JSON.stringify({ ms: 9999 }));
  assert.equal(refused.status, 429);
  assert.equal(JSON.parse(refused.body).error.type, "busy");
  assert.deepEqual(effects.slept, [1], "a queued run started while another ran");

  effects.open();
  const done = await Promise.all(replies);
  for (const r of done) assert.equal(r.status, 200, r.body);
  assert.deepEqual(effects.slept, Array.from({ length: MAX_WAITING + 1 }, (_, i) => i + 1), "runs did not start in arrival order");

  // With the queue drained, the instance takes runs again.
  const after = await runner.run("probe.sleep", "q", JSON.stringify({ ms: 7 }));
  assert.equal(after.status, 200, after.body);
});
