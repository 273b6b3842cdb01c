package web

import (
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/requestid"
)

// DefaultBodyLimit bounds request bodies of the public gateways.
const DefaultBodyLimit = 1 << 20

// Gateway is the public HTTP surface of a gateway: a grpc-gateway mux that
// speaks the envelope, and the OpenAPI document of what it serves.
type Gateway struct {
	// API receives the generated Register...Handler calls.
	API *runtime.ServeMux
	// Routes holds the non-gRPC routes: the API is mounted at "/", the
	// OpenAPI document at /docs/openapi.json.
	Routes *http.ServeMux
}

// NewGateway returns a Gateway serving the OpenAPI document spec.
func NewGateway(spec []byte, opts ...runtime.ServeMuxOption) *Gateway {
	g := &Gateway{API: runtime.NewServeMux(append(MuxOptions(), opts...)...), Routes: http.NewServeMux()}
	g.Routes.Handle("/", g.API)
	g.Routes.HandleFunc("GET /docs/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(spec)
	})
	return g
}

// Handler wraps the gateway's routes with the middleware every public
// server uses, outermost first: request id, call log fields, access log,
// panic recovery, body limit, then mw (authentication).
func (g *Gateway) Handler(log *zap.Logger, bodyLimit int64, mw ...Middleware) http.Handler {
	all := append([]Middleware{requestid.Middleware, CallFields, AccessLog(log), Recover(log), LimitBody(bodyLimit)}, mw...)
	return Chain(g.Routes, all...)
}
