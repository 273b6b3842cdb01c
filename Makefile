# Comfortech — the two commands a newcomer needs are `make run` and `make test`.

SHELL := bash
GO    ?= go
BIN   := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

.PHONY: run test bench build generate proto-check lint tools deploy-tools deploy-check help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## the whole platform in one process, embedded infrastructure, state in .data/
	$(GO) run ./deployments/allinone/cmd/comfortech

test: ## every module's tests (needs PostgreSQL on 127.0.0.1:5432, see README)
	$(GO) test -count=1 -timeout 18m work

bench: ## benchmarks with their figures, one package at a time (not part of `make test`)
	$(GO) test -p 1 -count=1 -run '^$$' -bench . -benchmem -timeout 40m work

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

# Deployment checks: their tools are pinned in scripts/deploytools/go.mod
# (kustomize, kubeconform, the jv JSON-schema validator, compose-go's
# Compose schema, BuildKit's Dockerfile parser) and built once into bin/.
K8S_VERSION := 1.35.4
deploy-tools: $(BIN)/.deploytools ## build the pinned deployment-check tools into bin/
$(BIN)/.deploytools: scripts/deploytools/go.mod scripts/deploytools/go.sum $(wildcard scripts/deploytools/*/*.go)
	cd scripts/deploytools && GOWORK=off $(GO) build -o $(BIN)/ \
		sigs.k8s.io/kustomize/kustomize/v5 \
		github.com/yannh/kubeconform/cmd/kubeconform \
		github.com/santhosh-tekuri/jsonschema/cmd/jv \
		./compose-check ./dockerfile-check ./k8s-schemas
	touch $@

# kubeconform's schemas, made from the OpenAPI document that the
# k8s.io/kubernetes module of that version carries (api/openapi-spec).
K8S_SCHEMAS := $(BIN)/kubernetes-schemas/v$(K8S_VERSION)-standalone-strict
$(K8S_SCHEMAS): $(BIN)/.deploytools
	dir=$$(GOWORK=off GOFLAGS=-mod=mod $(GO) mod download -json k8s.io/kubernetes@v$(K8S_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
		test -n "$$dir" || { echo "k8s.io/kubernetes@v$(K8S_VERSION) could not be downloaded" >&2; exit 1; }; \
		$(BIN)/k8s-schemas -spec "$$dir/api/openapi-spec/swagger.json" -version $(K8S_VERSION) -out $(BIN)/kubernetes-schemas
	touch $@

deploy-check: tools deploy-tools $(K8S_SCHEMAS) ## Dockerfile, docker-compose.yml, Kubernetes manifests, Mosquitto and realm checks
	K8S_VERSION=$(K8S_VERSION) scripts/deploy-check.sh

# --- Observability (Prometheus rules, Grafana dashboards) ---------------------
# promtool and the dashboards' checker (scripts/obscheck) share a module of
# their own outside the workspace: the Prometheus modules would move the
# platform's shared dependencies (resty under gocloak, the go directive).
# The first promtool build takes several minutes; bin/ keeps it.
.PHONY: obs-check
$(BIN)/promtool: scripts/obscheck/go.mod scripts/obscheck/go.sum
	cd scripts/obscheck && GOWORK=off $(GO) build -o $(BIN)/ github.com/prometheus/prometheus/cmd/promtool
	touch $@

obs-check: $(BIN)/promtool ## Prometheus config, rules and rule tests (promtool); dashboards and rules against the exported metrics
	promtool check config deployments/prometheus/prometheus.yml
	promtool check rules deployments/prometheus/rules/*.yml
	promtool test rules deployments/prometheus/tests/*.yml
	cd scripts/obscheck && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) test -count=1 ./...
	$(GO) test -count=1 -run '^TestObservabilityInventory$$' ./deployments/allinone/
