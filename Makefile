# The Eye. Every target installs what it needs beyond Go itself.
GO        ?= go
DATA_DIR  ?= ./theeye-data
BIN       := bin
VERSION   := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 30s
# The release build (cmd/theeye/theeyetest.ReleaseBuild is its twin): a
# static binary, with cgo when the C compiler has a static libc, so that
# Pebble's block cache and memtables live outside the Go heap; else pure Go.
STATIC_CGO := $(shell f=$$($${CC:-cc} -print-file-name=libc.a 2>/dev/null); [ -f "$$f" ] && echo 1)
ifeq ($(STATIC_CGO),1)
BUILD_ENV   := CGO_ENABLED=1
BUILD_FLAGS := -tags netgo,osusergo -ldflags "$(LDFLAGS) -linkmode external -extldflags -static"
else
BUILD_ENV   := CGO_ENABLED=0
BUILD_FLAGS := -ldflags "$(LDFLAGS)"
endif

.PHONY: run build test test-deps test-short lint fuzz bench bench-quick bench-tools bench-compare check clean cluster docker compose-up

## run: a single node with data in ./theeye-data on 127.0.0.1:8080; prints where it listens and the admin key
run: build
	$(BIN)/theeye serve --data-dir $(DATA_DIR) --print-admin-key

## build: the static server binary in bin/
build:
	$(BUILD_ENV) $(GO) build -trimpath $(BUILD_FLAGS) -o $(BIN)/theeye ./cmd/theeye

## test: lint, then every test with the race detector (what .ci/run runs)
test: lint test-deps
	$(GO) test -race -count=1 -timeout 25m ./...

## test-deps: what the tests need beyond Go: Debian's chromium for the docs page test,
##            promtool (Debian's prometheus package) for the checks of deploy/'s rules and dashboard
test-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "chromium is not installed: the browser test will skip (apt-get install chromium)"; fi; }
	@# Only promtool is wanted: no recommends (node exporter), and the server
	@# the package may start (systemd) is stopped and disabled again.
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus && \
	    { { systemctl disable --now prometheus || invoke-rc.d prometheus stop; } >/dev/null 2>&1 || true; }; \
	  else echo "promtool is not installed: the deploy/ rule checks will skip (apt-get install --no-install-recommends prometheus)"; fi; }

## test-short: the fast unit tests only
test-short:
	$(GO) test -short -count=1 ./...

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fuzz: each fuzz target for FUZZTIME
fuzz:
	$(GO) test -run=NONE -fuzz=FuzzSplitJSON -fuzztime=$(FUZZTIME) ./api
	$(GO) test -run=NONE -fuzz=FuzzSplitNDJSON -fuzztime=$(FUZZTIME) ./api
	$(GO) test -run=NONE -fuzz=FuzzParseTimestamp -fuzztime=$(FUZZTIME) .
	$(GO) test -run=NONE -fuzz=FuzzParseEvent -fuzztime=$(FUZZTIME) .
	$(GO) test -run=NONE -fuzz=FuzzParseValidEvent -fuzztime=$(FUZZTIME) .
	$(GO) test -run=NONE -fuzz=FuzzDecodeFrame -fuzztime=$(FUZZTIME) ./log
	$(GO) test -run=NONE -fuzz=FuzzDecodeEnvelope -fuzztime=$(FUZZTIME) ./log
	$(GO) test -run=NONE -fuzz=FuzzDecodeCursor -fuzztime=$(FUZZTIME) ./index
	$(GO) test -run=NONE -fuzz=FuzzDecodeValues -fuzztime=$(FUZZTIME) ./index
	$(GO) test -run=NONE -fuzz=FuzzKeyEncoding -fuzztime=$(FUZZTIME) ./index
	$(GO) test -run=NONE -fuzz=FuzzAppendJSONString -fuzztime=$(FUZZTIME) ./index
	$(GO) test -run=NONE -fuzz=FuzzCompileSchema -fuzztime=$(FUZZTIME) ./verdict
	$(GO) test -run=NONE -fuzz=FuzzParseStreamParams -fuzztime=$(FUZZTIME) ./api
	$(GO) test -run=NONE -fuzz=FuzzSSEParser -fuzztime=$(FUZZTIME) ./client
	$(GO) test -run=NONE -fuzz=FuzzLogStoreDecode -fuzztime=$(FUZZTIME) ./raftnode/logstore
	$(GO) test -run=NONE -fuzz=FuzzRaftHandshake -fuzztime=$(FUZZTIME) ./raftnode
	$(GO) test -run=NONE -fuzz=FuzzReadBackup -fuzztime=$(FUZZTIME) ./raftnode
	$(GO) test -run=NONE -fuzz=FuzzParseNodeProof -fuzztime=$(FUZZTIME) ./api
	$(GO) test -run=NONE -fuzz=FuzzNodeProofVerify -fuzztime=$(FUZZTIME) ./api
	$(GO) test -run=NONE -fuzz=FuzzBearer -fuzztime=$(FUZZTIME) ./api

## bench: the whole suite (bench/): W1–W9 on real nodes, baselines (NATS JetStream among them), micro-benchmarks; results in bench/results (≤ 30 min, its timeout)
##        PROFILE=1 adds CPU/alloc profiles (each node per workload, load generator, micro-benchmarks) in
##        bench/results/<...>-profiles/: go tool pprof -top bench/results/<...>-profiles/<file>; EVENTS=N sets the W4 store size
BENCHSTAT := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BENCH_FLAGS = $(if $(filter 1,$(PROFILE)),-profile) $(if $(EVENTS),-events $(EVENTS)) $(if $(WORKLOADS),-workloads $(WORKLOADS))
bench: bench-tools
	$(GO) run ./bench/cmd/eyebench -out bench/results $(BENCH_FLAGS)

## bench-quick: a short version of every workload, a sanity check (≤ 8 min, its timeout)
bench-quick: bench-tools
	$(GO) run ./bench/cmd/eyebench -quick -out bench/results $(BENCH_FLAGS)

## bench-tools: nats-server for W2's NATS JetStream baseline, built once into bench/.tools (never by make test);
##              if it cannot be built the bench notes it and skips the baseline
NATS_SERVER_VERSION := v2.15.2
bench-tools:
	@test -x bench/.tools/nats-server || GOBIN=$(CURDIR)/bench/.tools $(GO) install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION) || \
	  echo "nats-server $(NATS_SERVER_VERSION) could not be built: the NATS JetStream baseline will be skipped"

## bench-compare: benchstat of two micro-benchmark outputs: make bench-compare OLD=bench/results/a.bench.txt NEW=bench/results/b.bench.txt
bench-compare:
	@test -n "$(OLD)" -a -n "$(NEW)" || { echo "usage: make bench-compare OLD=<old .bench.txt> NEW=<new .bench.txt>"; exit 2; }
	$(GO) run $(BENCHSTAT) $(OLD) $(NEW)

## check: lint and test
check: test

clean:
	rm -rf $(BIN)

## cluster: three local nodes in the foreground (Ctrl-C stops all three)
cluster: build
	./deploy/local-cluster.sh $(BIN)/theeye

## docker: the FROM scratch image theeye:latest around the static binary
docker: build
	rm -rf $(BIN)/docker && mkdir -p $(BIN)/docker && cp $(BIN)/theeye $(BIN)/docker/theeye
	docker build -t theeye:latest -f deploy/Dockerfile $(BIN)/docker

## compose-up: a 3-node cluster in containers (ports 8181-8183)
compose-up: docker
	docker-compose -f deploy/docker-compose.yml up -d
