package auth_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/comfortech/platform/libs/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// Methods of the grpc.testing.TestService used as a stand-in for a service.
const (
	methodEmpty         = "/grpc.testing.TestService/EmptyCall"
	methodUnary         = "/grpc.testing.TestService/UnaryCall"
	methodUnimplemented = "/grpc.testing.TestService/UnimplementedCall"
)

// whoamiService answers with the caller's principal: UnaryCall puts the
// subject in Username and azp in OauthScope; StreamingOutputCall streams the
// subject as the payload body.
type whoamiService struct {
	testpb.UnimplementedTestServiceServer
}

func (whoamiService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func (whoamiService) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no principal in handler context")
	}
	return &testpb.SimpleResponse{Username: p.Subject, OauthScope: p.ClientID}, nil
}

func (whoamiService) StreamingOutputCall(_ *testpb.StreamingOutputCallRequest, ss grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	p, ok := auth.PrincipalFrom(ss.Context())
	if !ok {
		return status.Error(codes.Internal, "no principal in stream context")
	}
	return ss.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: []byte(p.Subject)}})
}

// startGRPC serves the whoami and health services behind the auth
// interceptors on a bufconn listener and returns a client connection factory.
func startGRPC(t *testing.T, v *auth.Verifier, opts ...auth.GRPCOption) func(...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(auth.UnaryServerInterceptor(v, opts...)),
		grpc.ChainStreamInterceptor(auth.StreamServerInterceptor(v, opts...)),
	)
	testpb.RegisterTestServiceServer(srv, whoamiService{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return func(dopts ...grpc.DialOption) *grpc.ClientConn {
		t.Helper()
		dopts = append([]grpc.DialOption{
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
		}, dopts...)
		conn, err := grpc.NewClient("passthrough:///bufnet", dopts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
}

func TestGRPCServerInterceptors(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss)
	dial := startGRPC(t, v,
		auth.WithMethodRoles(map[string]string{methodUnary: auth.RoleAdmin, "/grpc.testing.TestService/": auth.RoleUser}),
		auth.WithPublicMethods(methodUnimplemented),
	)
	conn := dial()
	client := testpb.NewTestServiceClient(conn)
	healthClient := healthpb.NewHealthClient(conn)
	userTok := iss.mint(iss.userClaims())
	adminTok := iss.mint(iss.adminClaims())
	svcTok := iss.mint(iss.serviceClaims(time.Minute))

	unary := func(ctx context.Context) error {
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
		return err
	}
	empty := func(ctx context.Context) error {
		_, err := client.EmptyCall(ctx, &testpb.Empty{})
		return err
	}
	stream := func(ctx context.Context) error {
		s, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
		if err != nil {
			return err
		}
		for {
			if _, err := s.Recv(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	}
	tests := []struct {
		name  string
		call  func(context.Context) error
		token string
		raw   string // authorization value used as is, when set
		want  codes.Code
	}{
		{name: "unary without token", call: empty, want: codes.Unauthenticated},
		{name: "unary with garbage", call: empty, token: "garbage", want: codes.Unauthenticated},
		{name: "unary with basic auth", call: empty, raw: "Basic dXNlcjpwYXNz", want: codes.Unauthenticated},
		{name: "unary with user token", call: empty, token: userTok, want: codes.OK},
		{name: "lower-case scheme", call: empty, raw: "bearer " + userTok, want: codes.OK},
		{name: "service token lacks prefix role", call: empty, token: svcTok, want: codes.PermissionDenied},
		{name: "exact role beats prefix: user", call: unary, token: userTok, want: codes.PermissionDenied},
		{name: "exact role beats prefix: admin", call: unary, token: adminTok, want: codes.OK},
		{name: "stream without token", call: stream, want: codes.Unauthenticated},
		{name: "stream with user token", call: stream, token: userTok, want: codes.OK},
		{name: "stream with service token", call: stream, token: svcTok, want: codes.PermissionDenied},
		{name: "public method skips auth", call: func(ctx context.Context) error {
			_, err := client.UnimplementedCall(ctx, &testpb.Empty{})
			return err
		}, want: codes.Unimplemented},
		{name: "health is always public", call: func(ctx context.Context) error {
			_, err := healthClient.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}, want: codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			switch {
			case tc.raw != "":
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tc.raw)
			case tc.token != "":
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", bearer(tc.token))
			}
			err := tc.call(ctx)
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code = %v, want %v (err %v)", got, tc.want, err)
			}
		})
	}
}

func TestGRPCPrincipalReachesHandlers(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss)
	client := testpb.NewTestServiceClient(startGRPC(t, v)())
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", bearer(iss.mint(iss.userClaims())))

	resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetUsername() != userSub || resp.GetOauthScope() != appClient {
		t.Errorf("unary handler saw sub %q azp %q", resp.GetUsername(), resp.GetOauthScope())
	}
	s, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.GetPayload().GetBody()) != userSub {
		t.Errorf("stream handler saw sub %q", msg.GetPayload().GetBody())
	}
}

// TestForwarding runs the request path of §3: an HTTP gateway verifies the
// user's token and calls a gRPC service, which verifies the forwarded token
// again. Calls without a user fall back to the gateway's service token.
func TestForwarding(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss)
	svcTS, err := auth.NewTokenSource(auth.ClientCredentialsConfig{Issuer: iss.URL, ClientID: svcClientID, ClientSecret: svcClientSec})
	if err != nil {
		t.Fatal(err)
	}
	conn := startGRPC(t, v)(grpc.WithPerRPCCredentials(auth.ForwardCredentials(svcTS)))
	backend := testpb.NewTestServiceClient(conn)

	// The gateway: authenticates the user, then calls the backend with the
	// request context, answering "<sub seen by backend> <azp seen by backend>".
	gateway := httptest.NewServer(auth.Middleware(v, envelopeError, auth.WithPublicPaths("/public"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			resp, err := backend.UnaryCall(r.Context(), &testpb.SimpleRequest{})
			if err != nil {
				http.Error(w, status.Code(err).String(), http.StatusBadGateway)
				return
			}
			_, _ = io.WriteString(w, resp.GetUsername()+" "+resp.GetOauthScope())
		})))
	t.Cleanup(gateway.Close)

	tests := []struct {
		name  string
		path  string
		token string
		want  string
	}{
		{name: "user token forwarded", path: "/v1/me", token: iss.mint(iss.userClaims()), want: userSub + " " + appClient},
		{name: "admin token forwarded", path: "/v1/me", token: iss.mint(iss.adminClaims()), want: adminSub + " " + appClient},
		{name: "no user: service token", path: "/public", want: svcSub + " " + svcClientID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, gateway.URL+tc.path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", bearer(tc.token))
			}
			resp, err := gateway.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != tc.want {
				t.Errorf("gateway answered %d %q, want 200 %q", resp.StatusCode, body, tc.want)
			}
		})
	}

	// An explicit authorization in the outgoing metadata wins over forwarding.
	ctx := auth.WithPrincipal(t.Context(), &auth.Principal{Subject: "ignored"})
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", bearer(iss.mint(iss.adminClaims())))
	resp, err := backend.UnaryCall(ctx, &testpb.SimpleRequest{})
	if err != nil || resp.GetUsername() != adminSub {
		t.Errorf("explicit metadata: resp %v, err %v", resp, err)
	}
}

func TestForwardCredentialsWithoutFallback(t *testing.T) {
	t.Parallel()
	iss := newIssuer(t)
	v := newVerifier(t, iss)
	conn := startGRPC(t, v)(grpc.WithPerRPCCredentials(auth.ForwardCredentials(nil)))
	_, err := testpb.NewTestServiceClient(conn).EmptyCall(t.Context(), &testpb.Empty{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("call without principal or fallback: %v, want Unauthenticated", err)
	}
}
