// Package asyncapi holds the validation of the platform's AsyncAPI
// documents: ../asyncapi.yaml, the published device protocol (ARCHITECTURE
// §6), and the Kafka event catalog of package eventcatalog, as the admin
// gateway serves it. asyncapi_test.go runs the official @asyncapi/parser
// (pinned by package-lock.json) on each through node.
package asyncapi
