// Package asyncapi holds the validation of ../asyncapi.yaml, the published
// device protocol (ARCHITECTURE §6): asyncapi_test.go runs the official
// @asyncapi/parser (pinned by package-lock.json) on it through node.
package asyncapi
