#!/usr/bin/env node
// Benchmarks the Workers host's own code (worker/wasi.js, module.js,
// runner.js) in Node's V8, the engine family workerd runs:
//   (a) a new module instance: instantiate + _initialize + manifest (median)
//   (b) one effect round trip: probe.roundtrip makes n sequential fetch
//       effects, answered from memory; JSON encode/decode included
//   (c) the linear memory of an idle module instance
//
// usage: node build/bench-worker.mjs path/to/test-module.wasm [instances] [roundtrips]
// The module must register probe.roundtrip (the test module, ./tests/module).

import { readFileSync } from "node:fs";
import { GuestModule } from "../worker/module.js";
import { Runner } from "../worker/runner.js";

const [wasmPath, instancesArg = "20", roundtripsArg = "20000"] = process.argv.slice(2);
if (!wasmPath) {
  console.error("usage: node build/bench-worker.mjs module.wasm [instances] [roundtrips]");
  process.exit(2);
}
const instances = Number(instancesArg);
const roundtrips = Number(roundtripsArg);

const t0 = performance.now();
const wasm = new WebAssembly.Module(readFileSync(wasmPath));
console.log(`worker: compile ${ms(performance.now() - t0)} (once per isolate; at deploy on Workers)`);

// (a) instantiate + _initialize, and (c) the memory of an idle instance.
const times = [];
let idleBytes = 0;
for (let i = 0; i < instances; i++) {
  const start = performance.now();
  const mod = await GuestModule.instantiate(wasm, { label: "bench" });
  times.push(performance.now() - start);
  idleBytes = mod.exports.memory.buffer.byteLength;
}
const sorted = [...times].sort((a, b) => a - b);
console.log(`worker: instantiate+init median ${ms(sorted[sorted.length >> 1])} ` +
  `(first ${ms(times[0])}, min ${ms(sorted[0])}, n=${instances})`);
console.log(`worker: idle instance memory ${(idleBytes / 1048576).toFixed(1)} MiB (${idleBytes} bytes)`);

// (b) effect round trips through the Runner's loop, fetches answered from
// memory; each one is decided by the guest's policy engine first, as every
// fetch is. The runtime's own bookkeeping (schema version, run records) makes a
// few sql effects per run: a SELECT gets one row holding 0, anything else no
// rows. Only fetch effects are counted.
let roundTrips = 0;
const effects = {
  async perform(effect) {
    switch (effect.type) {
      case "fetch":
        roundTrips++;
        return { id: effect.id, value: { status: 200, body: "" } };
      case "sql":
        return {
          id: effect.id,
          value: {
            results: effect.args.statements.map((s) =>
              /^\s*SELECT/i.test(s.sql) ? { columns: ["v"], rows: [[0]] } : { columns: [], rows: [] }),
          },
        };
      case "log":
      case "emit":
        return { id: effect.id, value: {} };
      default:
        return { id: effect.id, error: { type: "unknown_effect", message: effect.type } };
    }
  },
};
// probe.roundtrip's policy allows its service "fake"; point it at the
// address the fetches above answer, as DAMPER_TARGETS would.
const runner = new Runner({ wasm, effects, idleMs: 0, targets: new Map([["fake", "http://bench.invalid"]]) });
const run = async (n) => {
  const reply = await runner.run("probe.roundtrip", "bench", JSON.stringify({ n, url: "http://bench.invalid/" }));
  if (reply.status !== 200) throw new Error(`probe.roundtrip answered ${reply.status}: ${reply.body}`);
};
await run(Math.min(1000, roundtrips)); // warm up: instance, JIT
roundTrips = 0;
const began = process.hrtime.bigint();
await run(roundtrips);
const elapsed = Number(process.hrtime.bigint() - began);
console.log(`worker: effect round trip ${(elapsed / roundTrips / 1000).toFixed(2)} µs ` +
  `(${Math.round(elapsed / roundTrips)} ns/op, ${roundTrips} round trips, JSON encode/decode included)`);
console.log(`worker: memory after the round trips ${(runner.module.exports.memory.buffer.byteLength / 1048576).toFixed(1)} MiB`);

function ms(x) {
  return `${x.toFixed(1)} ms`;
}
