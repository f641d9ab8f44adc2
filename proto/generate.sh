#!/bin/sh
# Regenerates internal/api/gen from proto/ . Run from anywhere:
#   go generate ./internal/api
# Needs protoc (apt-get install protobuf-compiler) and the two plugins at the
# versions pinned in go.mod:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PATH="$PATH:$(go env GOPATH)/bin"
rm -rf internal/api/gen
mkdir -p internal/api/gen
protoc -I proto \
  --go_out=. --go_opt=module=github.com/aquarium-fish/aquarium-fish \
  --connect-go_out=. --connect-go_opt=module=github.com/aquarium-fish/aquarium-fish \
  proto/aquarium/v2/*.proto
