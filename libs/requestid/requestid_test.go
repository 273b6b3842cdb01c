package requestid_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/comfortech/platform/libs/requestid"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"keeps a caller id", "abc-123", true},
		{"replaces an empty id", "", false},
		{"replaces an id with spaces", "a b", false},
		{"replaces an overlong id", strings.Repeat("x", 200), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var seen string
			h := requestid.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				seen = requestid.From(r.Context())
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set(requestid.Header, tt.incoming)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if seen == "" || rec.Header().Get(requestid.Header) != seen {
				t.Fatalf("context id %q, header %q", seen, rec.Header().Get(requestid.Header))
			}
			if (seen == tt.incoming) != tt.keep {
				t.Fatalf("id %q, incoming %q, keep %v", seen, tt.incoming, tt.keep)
			}
		})
	}
}

// idHealth records the request id each Check saw.
type idHealth struct {
	*health.Server
	seen chan string
}

func (h *idHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.seen <- requestid.From(ctx)
	return h.Server.Check(ctx, req)
}

func TestGRPCPropagation(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(requestid.UnaryServerInterceptor()))
	h := &idHealth{Server: health.NewServer(), seen: make(chan string, 2)}
	healthpb.RegisterHealthServer(srv, h)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(requestid.UnaryClientInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := healthpb.NewHealthClient(conn)

	if _, err := client.Check(requestid.With(t.Context(), "from-gateway"), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := <-h.seen; got != "from-gateway" {
		t.Fatalf("server saw %q, want from-gateway", got)
	}
	if _, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := <-h.seen; got == "" {
		t.Fatal("server made no id for a call without one")
	}
}
