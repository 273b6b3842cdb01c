# Comfortech — the two commands a newcomer needs are `make run` and `make test`.

SHELL := bash
GO    ?= go
BIN   := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

.PHONY: run test bench build generate proto-check lint tools help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## the whole platform in one process, embedded infrastructure, state in .data/
	$(GO) run ./deployments/allinone/cmd/comfortech

test: ## every module's tests (needs PostgreSQL on 127.0.0.1:5432, see README)
	$(GO) test -count=1 -timeout 18m work

bench: ## benchmarks with their figures (not part of `make test`)
	$(GO) test -count=1 -run '^$$' -bench . -benchmem -timeout 40m work

# scripts/build.sh holds the list of binaries and the build command; the
# Dockerfile builds the images' binaries with the same script.
build: ## static binaries (CGO_ENABLED=0) into bin/
	GO=$(GO) scripts/build.sh $(BIN)

# Tools are pinned in scripts/tools/go.mod and built once into bin/.
TOOLS := buf protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2 staticcheck
tools: $(BIN)/.tools ## build the pinned tools into bin/
$(BIN)/.tools: scripts/tools/go.mod scripts/tools/go.sum
	cd scripts/tools && GOWORK=off $(GO) build -o $(BIN)/ \
		github.com/bufbuild/buf/cmd/buf \
		google.golang.org/protobuf/cmd/protoc-gen-go \
		google.golang.org/grpc/cmd/protoc-gen-go-grpc \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2 \
		honnef.co/go/tools/cmd/staticcheck
	touch $@

generate: tools ## regenerate Go code and OpenAPI from the protos
	scripts/proto-generate.sh

proto-check: generate ## buf lint and format, and fail if the generated code is not current
	scripts/proto-check.sh

lint: tools ## gofmt, go vet and staticcheck over every module
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet work
	staticcheck work
