package web

import (
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/comfortech/platform/libs/tracing"
)

// Tracing makes a server span of every request to the HTTP server named
// server, child of the caller's span when the request carries a
// traceparent; the gRPC calls the handler makes with the request's context
// are its children. Until the route is known the span is named after the
// method and the server (paths carry ids); routeSpanName renames it after
// the grpc-gateway route. Without tracing (tracing.Disabled) requests pass
// as they are.
func Tracing(tp trace.TracerProvider, server string) func(http.Handler) http.Handler {
	if tracing.Disabled(tp) {
		return func(next http.Handler) http.Handler { return next }
	}
	return func(next http.Handler) http.Handler {
		return otelhttp.NewHandler(next, server,
			otelhttp.WithTracerProvider(tp),
			otelhttp.WithPropagators(tracing.Propagator),
			// Requests are counted by the Prometheus middleware; otelhttp
			// must not fall back to OpenTelemetry's global meter.
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + server }),
		)
	}
}

// routeSpanName names the request's span after its route pattern, as the
// HTTP semantic conventions ask ("GET /v1/devices/{device_id}").
func routeSpanName(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		// HTTPPattern, not HTTPPathPattern: middlewares run before the
		// generated handler annotates the context with the latter.
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			// "/v1/devices/{device_id=*}" reads "/v1/devices/{device_id}".
			pattern := strings.ReplaceAll(p.String(), "=*}", "}")
			span := trace.SpanFromContext(r.Context())
			span.SetName(r.Method + " " + pattern)
			span.SetAttributes(attribute.String("http.route", pattern))
		}
		next(w, r, params)
	}
}
