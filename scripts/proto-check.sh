#!/usr/bin/env bash
# proto-check: the API contracts pass `buf lint` (STANDARD) and `buf format`,
# and the generated Go and OpenAPI committed under proto/ match the protos.
# `make proto-check` runs `make generate` first, so any difference left in
# `git status` means someone changed a .proto without regenerating (or
# hand-edited generated code).
set -euo pipefail
cd "$(dirname "$0")/.."

bin/buf lint
bin/buf format --diff --exit-code --path proto/comfortech

changes=$(git status --porcelain -- proto buf.yaml 'buf.gen*.yaml')
if [ -n "$changes" ]; then
	echo "proto-check: proto/ differs from what is committed after 'make generate':" >&2
	echo "$changes" >&2
	git --no-pager diff --stat -- proto >&2 || true
	echo "proto-check: run 'make generate' and commit the result" >&2
	exit 1
fi
echo "proto-check: ok"
