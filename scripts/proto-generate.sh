#!/usr/bin/env bash
# Regenerates everything derived from proto/comfortech: Go messages, gRPC
# stubs and grpc-gateway handlers beside the protos, one merged OpenAPI
# document per gateway in proto/openapi, and the descriptors of the event
# catalog with their comments (proto/eventcatalog/events.binpb: generated Go
# code keeps no comments, the catalog's AsyncAPI document shows them). Uses
# the pinned tools in bin/ (`make tools`); local plugins only, since the buf
# registry is unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"

find proto/comfortech proto/openapi -type f \
	\( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) -delete
buf generate
for gw in main admin auth; do
	buf generate --template "buf.gen.openapi-$gw.yaml"
done
buf build --path proto/comfortech/events --exclude-imports -o proto/eventcatalog/events.binpb
