#!/usr/bin/env bash
# Regenerates everything derived from proto/comfortech: Go messages, gRPC
# stubs and grpc-gateway handlers beside the protos, and one merged OpenAPI
# document per gateway in proto/openapi. Uses the pinned tools in bin/
# (`make tools`); local plugins only, since the buf registry is unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"

find proto/comfortech proto/openapi -type f \
	\( -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' \) -delete
buf generate
for gw in main admin auth; do
	buf generate --template "buf.gen.openapi-$gw.yaml"
done
