package web

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"
	"google.golang.org/grpc"

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
	// OpenAPI document at /docs/openapi.json and its reader at /docs.
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
	g.Routes.HandleFunc("GET /docs", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(docsPage)
	})
	return g
}

// HandlerRegistrar registers one gRPC service's REST handlers, calling
// the service over a client connection: a generated
// Register<Service>Handler function.
type HandlerRegistrar = func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error

// Route exposes services on the gateway's API, each call forwarded over
// conn to the service that implements it.
func (g *Gateway) Route(ctx context.Context, conn *grpc.ClientConn, services ...HandlerRegistrar) error {
	for _, register := range services {
		if err := register(ctx, g.API, conn); err != nil {
			return err
		}
	}
	return nil
}

// docsPage renders the OpenAPI document with Redoc, which the reader's
// browser loads from its CDN; the document itself is served here.
var docsPage = []byte(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Comfortech API</title>
</head>
<body>
<redoc spec-url="/docs/openapi.json"></redoc>
<noscript>The API reference needs JavaScript; the raw document is at <a href="/docs/openapi.json">/docs/openapi.json</a>.</noscript>
<script src="https://cdn.redoc.ly/redoc/v2.5.0/bundles/redoc.standalone.js"></script>
</body>
</html>
`)

// Handler wraps the gateway's routes with the middleware every public
// server uses, outermost first: request id, call log fields, access log,
// panic recovery, body limit, then mw (authentication).
func (g *Gateway) Handler(log *zap.Logger, bodyLimit int64, mw ...Middleware) http.Handler {
	all := append([]Middleware{requestid.Middleware, CallFields, AccessLog(log), Recover(log), LimitBody(bodyLimit)}, mw...)
	return Chain(g.Routes, all...)
}
