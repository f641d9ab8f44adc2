package api

// Regenerate the protobuf and Connect code from proto/ (needs protoc,
// protoc-gen-go and protoc-gen-connect-go on PATH; see scripts in proto/README.md).
//go:generate sh ../../proto/generate.sh
