# damper: the two commands a fresh machine needs are `make run` and `make test`.
# Everything else they need (Go modules, the pinned wrangler and the Node.js it
# runs on) they install.

GO      ?= go
DAMPER  := build/damper
MODULE  := build/damper.wasm
TRYMOD  := build/testmodel/damper.wasm
PAYLOAD ?= {"title":"Saving a file crashes the app","body":"Since 2.3, pressing Save quits the app and the file is lost."}
export WRANGLER_SEND_METRICS := false
# The Node.js that package-lock.json pins (node_modules/.bin/node, which npm ci
# installs on Linux x64 and arm64) runs everything here that runs node: wrangler
# (damper dev and deploy, the e2e suite), the Worker's Node tests, the benchmarks.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: all build run test lint bench dev deploy clean FORCE

all: build

# The CLI is a native binary; building it once keeps every later command fast
# (the first build compiles the pure-Go SQLite driver, about a minute here).
$(DAMPER): FORCE
	$(GO) build -o $@ ./cmd/damper

# build/damper.wasm and build/manifest.json: the module wrangler deploys and
# the local host runs, byte for byte; and build/worker/, the Worker.
build: $(DAMPER)
	$(DAMPER) build -o $(MODULE) ./examples/module

# Runs the triage agent locally under wazero (state in .damper/data), on
# Anthropic when ANTHROPIC_API_KEY is set, else on OpenAI when
# OPENAI_API_KEY is, else on the test model test/schema, which needs no key
# and is linked into a module of its own (the shipped one leaves it out).
# DAMPER_MODEL, when set, wins.
run: build
	@if [ -n "$$DAMPER_MODEL" ]; then model=$$DAMPER_MODEL; \
	elif [ -n "$$ANTHROPIC_API_KEY" ]; then model=anthropic/claude-sonnet-4-5; \
	elif [ -n "$$OPENAI_API_KEY" ]; then model=openai/gpt-4.1; \
	else model=test/schema; fi; \
	module=$(MODULE); \
	if [ "$${model%%/*}" = test ]; then \
	  echo "make run: no ANTHROPIC_API_KEY or OPENAI_API_KEY set: triage runs on the test model $$model, whose result is made up to fit the schema ($(TRYMOD))" >&2; \
	  $(DAMPER) build -o $(TRYMOD) ./examples/module/testmodel >/dev/null || exit 1; module=$(TRYMOD); \
	else echo "make run: triage runs on $$model" >&2; fi; \
	DAMPER_MODEL=$$model $(DAMPER) run --module $$module --data .damper/data triage '$(PAYLOAD)'

node_modules/.bin/wrangler: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# The whole suite: unit, ABI, fuzz seeds, and the end-to-end suite against both
# hosts (damper serve under wazero, and workerd under wrangler dev).
test: node_modules/.bin/wrangler lint
	$(GO) test -count=1 -timeout 20m ./...
	@# Every benchmark once, so `make bench` cannot rot unnoticed.
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./... >/dev/null

bench: build
	./build/bench.sh

# wrangler dev on 127.0.0.1:8787, rebuilding the module on every .go edit.
dev: $(DAMPER) node_modules/.bin/wrangler
	$(DAMPER) dev -o $(MODULE) ./examples/module

# damper deploy builds the Linux sandboxd the container kind's image copies
# (build/container/), then wrangler deploy builds and pushes the image.
deploy: $(DAMPER) node_modules/.bin/wrangler
	$(DAMPER) deploy -o $(MODULE) ./examples/module

clean:
	rm -rf build/damper build/*.wasm build/manifest.json build/worker build/test build/testmodel .damper
