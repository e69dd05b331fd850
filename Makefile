# damper: the two commands a fresh machine needs are `make run` and `make test`.
# Everything else they need (Go modules, the pinned wrangler) they install.

GO      ?= go
DAMPER  := build/damper
MODULE  := build/damper.wasm
PAYLOAD ?= {"name":"world"}
export WRANGLER_SEND_METRICS := false

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

# Runs the hello agent locally under wazero; state lives in .damper/data.
run: build
	$(DAMPER) run --module $(MODULE) --data .damper/data hello '$(PAYLOAD)'

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

# The container kind's image (build/container/Dockerfile) copies the Linux
# sandboxd from beside it; wrangler deploy builds and pushes the image.
build/container/sandboxd: FORCE
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/sandboxd

deploy: $(DAMPER) node_modules/.bin/wrangler build/container/sandboxd
	$(DAMPER) deploy -o $(MODULE) ./examples/module

clean:
	rm -rf build/damper build/*.wasm build/manifest.json build/worker build/test .damper
