#!/usr/bin/env bash
# make bench: the figures the foundation is held to. Benchmarks, never timed
# tests: run them on a quiet machine and compare with benchstat.
set -euo pipefail
cd "$(dirname "$0")/.."

wasm=build/damper.wasm
raw=$(wc -c <"$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "module $wasm: $raw bytes raw, $gz bytes gzip (budget: under 3,000,000 gzip)"

# The probe agents (probe.roundtrip) live in the test module.
build/damper build -o build/test/damper.wasm ./tests/module >/dev/null
tw=build/test/damper.wasm
echo "test module $tw: $(wc -c <"$tw") bytes raw, $(gzip -9 -c "$tw" | wc -c) bytes gzip"

echo
echo "== wazero host (local/)"
DAMPER_BENCH_MODULE="$PWD/$tw" go test -run '^$' -bench . -benchmem -count 1 ./local/

echo
echo "== Workers host code (worker/) in Node's V8"
node build/bench-worker.mjs "$tw"
