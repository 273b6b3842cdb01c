package telemetry_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/health"
	"github.com/comfortech/platform/libs/metrics"
	"github.com/comfortech/platform/libs/rpc"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/telemetry"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore/tsstoretest"
)

// TestRealTokens serves the service on the platform's gRPC server (token
// verification, role check, protovalidate) with tokens of the embedded
// identity provider, as the data service will.
func TestRealTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	idp := idptest.Start(t)
	owner, stranger := idp.CreateUser(t, "+79516519741"), idp.CreateUser(t, "+79516519742")
	ownerTok := idp.Login(t, owner.Username, owner.Password).AccessToken
	strangerTok := idp.Login(t, stranger.Username, stranger.Password).AccessToken

	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: idp.Issuer(), AllowedClients: []string{idptest.AppClient}})
	if err != nil {
		t.Fatal(err)
	}
	_, db := tsstoretest.OpenSQLite(t)
	f := newFixture(t, db, telemetry.Config{})
	f.access.set(owner.ID, f.device, app.AccessOwner)
	roles := map[string]string{
		rpc.ServicePrefix(&datav1.TelemetryService_ServiceDesc): auth.RoleUser,
		rpc.ServicePrefix(&datav1.AlertRuleService_ServiceDesc): auth.RoleUser,
	}
	srv, err := rpc.NewServer(zap.NewNop(), metrics.New(), health.New(time.Second), rpc.WithAuth(v, auth.WithMethodRoles(roles)))
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	rules := datav1.NewAlertRuleServiceClient(conn)
	bearer := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}

	created, err := rules.CreateAlertRule(bearer(ownerTok), &datav1.CreateAlertRuleRequest{DeviceId: f.device, Name: "Too cold", Condition: tooCold()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ctx  context.Context
		req  *datav1.GetAlertRuleRequest
		want codes.Code
	}{
		{"owner", bearer(ownerTok), &datav1.GetAlertRuleRequest{DeviceId: f.device, RuleId: created.Rule.Id}, codes.OK},
		{"another account", bearer(strangerTok), &datav1.GetAlertRuleRequest{DeviceId: f.device, RuleId: created.Rule.Id}, codes.NotFound},
		{"no token", ctx, &datav1.GetAlertRuleRequest{DeviceId: f.device, RuleId: created.Rule.Id}, codes.Unauthenticated},
		{"forged token", bearer(ownerTok + "x"), &datav1.GetAlertRuleRequest{DeviceId: f.device, RuleId: created.Rule.Id}, codes.Unauthenticated},
		{"not a uuid", bearer(ownerTok), &datav1.GetAlertRuleRequest{DeviceId: "dev-1", RuleId: created.Rule.Id}, codes.InvalidArgument},
	}
	for _, c := range cases {
		_, err := rules.GetAlertRule(c.ctx, c.req)
		if got := status.Code(err); got != c.want {
			t.Errorf("%s: %v (%v), want %v", c.name, got, err, c.want)
		}
	}
}
