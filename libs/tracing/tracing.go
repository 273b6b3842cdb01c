// Package tracing builds a part's OpenTelemetry TracerProvider from the
// standard OTEL_* environment variables, and names the propagator every
// part uses (W3C Trace Context).
//
// Spans are exported by OTLP only when an endpoint is configured
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
// otherwise the provider is OpenTelemetry's no-op one: spans cost a
// context value, nothing is recorded, and trace context received from
// callers still passes through to Kafka headers and logs.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Propagator carries trace context across gRPC metadata, HTTP headers and
// Kafka headers: W3C traceparent and tracestate, as the architecture
// brief's CloudEvents headers name them.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Config is the part of the standard OpenTelemetry environment that decides
// whether and how spans are exported. The exporter and the SDK read the
// other standard variables themselves (OTEL_EXPORTER_OTLP_HEADERS,
// _TIMEOUT, _COMPRESSION, _CERTIFICATE, _INSECURE, OTEL_TRACES_SAMPLER and
// _ARG, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*).
type Config struct {
	// Endpoint is the OTLP collector's base URL, e.g. http://otel-collector:4318.
	Endpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	// TracesEndpoint overrides Endpoint for traces (the full URL with
	// http/protobuf).
	TracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	// Protocol is http/protobuf (default) or grpc.
	Protocol string `env:"OTEL_EXPORTER_OTLP_PROTOCOL" envDefault:"http/protobuf"`
	// TracesProtocol overrides Protocol for traces.
	TracesProtocol string `env:"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"`
	// Exporter is otlp (default) or none.
	Exporter string `env:"OTEL_TRACES_EXPORTER" envDefault:"otlp"`
	// Disabled turns the SDK off whatever else is set.
	Disabled bool `env:"OTEL_SDK_DISABLED"`
	// ServiceName overrides the part's name as service.name.
	ServiceName string `env:"OTEL_SERVICE_NAME"`
}

// Enabled reports whether spans are to be exported.
func (c Config) Enabled() bool {
	return !c.Disabled && c.Exporter != "none" && (c.Endpoint != "" || c.TracesEndpoint != "")
}

func (c Config) protocol() string {
	if c.TracesProtocol != "" {
		return c.TracesProtocol
	}
	return c.Protocol
}

// Validate reports a value the exporter cannot use.
func (c Config) Validate() error {
	switch c.Exporter {
	case "", "otlp", "none":
	default:
		return fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (otlp or none)", c.Exporter)
	}
	switch c.protocol() {
	case "", "http/protobuf", "grpc":
	default:
		return fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported (http/protobuf or grpc)", c.protocol())
	}
	return nil
}

// Provider is a part's TracerProvider with its shutdown.
type Provider struct {
	trace.TracerProvider
	shutdown func(context.Context) error
}

// Shutdown flushes the spans not exported yet and stops the exporter; it
// does nothing for a no-op or borrowed provider.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.shutdown == nil {
		return nil
	}
	return p.shutdown(ctx)
}

// Disabled reports whether tp records nothing: nil, or OpenTelemetry's
// no-op provider, bare or in a Provider. Servers and clients then leave
// their instrumentation out, which costs a part that does not trace
// nothing; such a part also stops propagating its callers' trace context,
// so a deployment traces every part or none.
func Disabled(tp trace.TracerProvider) bool {
	if p, ok := tp.(*Provider); ok && p != nil {
		tp = p.TracerProvider
	}
	switch tp.(type) {
	case nil, noop.TracerProvider:
		return true
	}
	return false
}

// Borrowed wraps a provider its owner shuts down, such as a test's.
func Borrowed(tp trace.TracerProvider) *Provider { return &Provider{TracerProvider: tp} }

// New returns the provider for the part named service: exporting with
// OTLP in batches when cfg is Enabled, OpenTelemetry's no-op provider
// otherwise.
func New(ctx context.Context, cfg Config, service string) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return &Provider{TracerProvider: noop.NewTracerProvider()}, nil
	}
	// The endpoint is passed explicitly, so a Config built in code (the
	// all-in-one's) works like one parsed from the environment.
	var client otlptrace.Client
	switch {
	case cfg.protocol() == "grpc" && cfg.TracesEndpoint != "":
		client = otlptracegrpc.NewClient(otlptracegrpc.WithEndpointURL(cfg.TracesEndpoint))
	case cfg.protocol() == "grpc":
		client = otlptracegrpc.NewClient(otlptracegrpc.WithEndpointURL(cfg.Endpoint))
	case cfg.TracesEndpoint != "":
		client = otlptracehttp.NewClient(otlptracehttp.WithEndpointURL(cfg.TracesEndpoint))
	default:
		// As the specification says: the signal's path is appended to
		// the base endpoint.
		client = otlptracehttp.NewClient(otlptracehttp.WithEndpointURL(strings.TrimSuffix(cfg.Endpoint, "/") + "/v1/traces"))
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	name := cfg.ServiceName
	if name == "" {
		name = service
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost(),
		resource.WithAttributes(semconv.ServiceName(name), semconv.ServiceNamespace("comfortech")))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	// OTEL_RESOURCE_ATTRIBUTES adds the rest (deployment.environment,
	// k8s.pod.name, ...); the service name is the part's unless
	// OTEL_SERVICE_NAME replaces it.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(5*time.Second)), sdktrace.WithResource(res))
	return &Provider{TracerProvider: tp, shutdown: tp.Shutdown}, nil
}
