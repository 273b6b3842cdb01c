#!/usr/bin/env bash
# make deploy-check: the deployment files checked with real tools, each
# pinned in scripts/deploytools/go.mod and built into bin/ by the Makefile:
#
#   Dockerfile          BuildKit's parser and build checks, and one target per
#                       binary of scripts/build.sh (dockerfile-check)
#   docker-compose.yml  the Compose Specification's JSON schema (the one
#                       compose-go embeds) with a JSON-schema validator (jv),
#                       then a load as `docker compose config` does it
#                       (compose-check)
#   deployments/k8s     kustomize build of every overlay, validated by
#                       kubeconform -strict against the schemas k8s-schemas
#                       made from the OpenAPI document of k8s.io/kubernetes
#   deployments/mosquitto   init-dynsec.sh and mosquitto.conf on a real broker
#   the realm file      loads in the embedded identity provider
#                       (TestRepositoryRealmFileLoads)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin
k8s_version=${K8S_VERSION:?K8S_VERSION is set by the Makefile}

step() { printf '\n== %s\n' "$*"; }

step "deployment tools: go vet and staticcheck"
(cd scripts/deploytools && GOWORK=off go vet ./... && GOWORK=off "$bin/staticcheck" ./...)

step "Dockerfile"
args=()
while read -r name _; do
  [ "$name" = comfortech ] && continue # the all-in-one binary has no image
  args+=(-image "$name")
  [ "$name" = comfortctl ] || args+=(-part "$name")
done < <(scripts/build.sh --list)
"$bin/dockerfile-check" -stage build -stage runtime "${args[@]}" Dockerfile

step "docker-compose.yml"
compose_go=$(cd scripts/deploytools && GOWORK=off go list -m -f '{{.Dir}}' github.com/compose-spec/compose-go/v2)
"$bin/jv" "$compose_go/schema/compose-spec.json" docker-compose.yml
# Every file the compose file mounts must exist (Prometheus' and Grafana's too).
"$bin/compose-check" -env COMFORT_ADMIN_PASSWORD=deploy-check docker-compose.yml

step "Kubernetes manifests (Kubernetes $k8s_version)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
overlays=(deployments/k8s/overlays/*/)
[ ${#overlays[@]} -gt 0 ] || { echo "no overlays under deployments/k8s/overlays" >&2; exit 1; }
for dir in "${overlays[@]}"; do
  name=$(basename "$dir")
  "$bin/kustomize" build "$dir" >"$out/$name.yaml"
  echo "kustomize build $dir: $(grep -c '^kind:' "$out/$name.yaml") objects"
done
"$bin/kubeconform" -strict -summary -kubernetes-version "$k8s_version" \
  -schema-location "$bin/kubernetes-schemas" "$out"/*.yaml

step "Mosquitto"
scripts/check-mosquitto.sh

step "Keycloak realm file in the embedded identity provider"
go test -count=1 -run '^TestRepositoryRealmFileLoads$' ./deployments/allinone/devstack/idp

printf '\ndeploy-check: ok\n'
