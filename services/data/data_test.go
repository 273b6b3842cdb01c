package data_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	"github.com/comfortech/platform/libs/process"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/data"
	"github.com/comfortech/platform/services/data/internal/store/storetest"
)

// service is a running data service and its clients.
type service struct {
	conn    *grpc.ClientConn
	idp     *idptest.Server
	brokers []string
	ops     string
}

// start runs the whole service (Run) on SQLite or PostgreSQL, with the
// embedded identity provider and Kafka, until the test ends.
func start(t *testing.T, databaseURL string) *service {
	t.Helper()
	return startWith(t, databaseURL, zaptest.NewLogger(t))
}

// startWith is start with the service's logger.
func startWith(t testing.TB, databaseURL string, log *zap.Logger) *service {
	t.Helper()
	idp := idptest.Start(t)
	cluster := kafkatest.NewCluster(t)
	grpcL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opsL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := data.Config{
		Auth:        auth.Settings{Issuer: idp.Issuer()},
		DatabaseURL: databaseURL, KafkaBrokers: cluster.ListenAddrs(),
		ClaimAttempts: 3, ClaimPeriod: time.Hour,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- data.Run(ctx, cfg, log, process.WithGRPCListener(grpcL), process.WithOpsListener(opsL))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return")
		}
	})
	conn, err := grpc.NewClient(grpcL.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s := &service{conn: conn, idp: idp, brokers: cluster.ListenAddrs(), ops: "http://" + opsL.Addr().String()}
	eventually(t, "the service to be ready", func() bool {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	return s
}

func eventually(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// as returns a context carrying token.
func as(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

func code(t *testing.T, name string, err error, want codes.Code) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != want {
		t.Errorf("%s: %v, want %v", name, err, want)
	}
	return st
}

func must[T any](t *testing.T, name string) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
}

// TestService drives the service through gRPC with real tokens: account
// creation from account.events and the internal API, claims, sharing,
// isolation, state, roles, error codes and the events it emits.
func TestService(t *testing.T) {
	t.Parallel()
	for name, url := range map[string]func(t testing.TB) string{
		"sqlite":   func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "data.db") },
		"postgres": storetest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testService(t, url(t))
		})
	}
}

func testService(t *testing.T, databaseURL string) {
	s := start(t, databaseURL)
	accounts := datav1.NewAccountServiceClient(s.conn)
	homes := datav1.NewHomeServiceClient(s.conn)
	devices := datav1.NewDeviceServiceClient(s.conn)
	sharing := datav1.NewSharingServiceClient(s.conn)
	states := datav1.NewDeviceStateServiceClient(s.conn)
	models := datav1.NewDeviceModelServiceClient(s.conn)
	internal := datav1.NewDataInternalServiceClient(s.conn)
	svc := as(s.idp.ServiceToken(t, "comfortech-device"))
	admin := as(s.idp.AdminLogin(t).AccessToken)

	// Alice registers: the auth gateway's event creates her account.
	alice := s.idp.CreateUser(t, "+79510000001")
	aliceCtx := as(s.idp.Login(t, alice.Username, alice.Password).AccessToken)
	_, err := accounts.GetMe(aliceCtx, &datav1.GetMeRequest{})
	code(t, "GetMe before the account exists", err, codes.NotFound)
	publish(t, s.brokers, &eventsv1.AccountRegistered{AccountId: alice.ID, Phone: "+79510000001", Name: "Alice", Locale: "ru"})
	eventually(t, "the account from AccountRegistered", func() bool {
		_, err := accounts.GetMe(aliceCtx, &datav1.GetMeRequest{})
		return err == nil
	})
	me := must[*datav1.UpdateMeResponse](t, "UpdateMe")(accounts.UpdateMe(aliceCtx, &datav1.UpdateMeRequest{Email: ptr("alice@example.com")}))
	if me.GetAccount().GetName() != "Alice" || me.GetAccount().GetEmail() != "alice@example.com" || me.GetAccount().GetLocale() != "ru" {
		t.Errorf("alice: %v", me.GetAccount())
	}

	// Bob is created through the internal API, which users may not call.
	bob := s.idp.CreateUser(t, "+79510000002")
	bobCtx := as(s.idp.Login(t, bob.Username, bob.Password).AccessToken)
	create := &datav1.CreateAccountRequest{AccountId: bob.ID, Phone: "+79510000002", Name: "Bob"}
	_, err = internal.CreateAccount(bobCtx, create)
	code(t, "CreateAccount with a user token", err, codes.PermissionDenied)
	for i, want := range []bool{true, false} {
		resp := must[*datav1.CreateAccountResponse](t, "CreateAccount")(internal.CreateAccount(svc, create))
		if resp.GetCreated() != want {
			t.Errorf("CreateAccount #%d created = %v", i, resp.GetCreated())
		}
	}
	_, err = internal.CreateAccount(svc, &datav1.CreateAccountRequest{AccountId: uuid.NewString(), Phone: "+79510000002"})
	code(t, "CreateAccount with a taken phone", err, codes.AlreadyExists)

	// Models are for admins.
	model := &datav1.DeviceModel{Id: "thermo-x1", Title: "Thermostat", Commands: []string{"reboot"},
		DefaultAlertRules: []*datav1.AlertRuleTemplate{{Name: "Too cold", Condition: &datav1.AlertCondition{
			Metric: "temperature", Operator: datav1.Operator_OPERATOR_LESS_THAN, Threshold: 10, Level: "warning"}}}}
	_, err = models.PutDeviceModel(aliceCtx, &datav1.PutDeviceModelRequest{Model: model})
	code(t, "PutDeviceModel as a user", err, codes.PermissionDenied)
	must[*datav1.PutDeviceModelResponse](t, "PutDeviceModel")(models.PutDeviceModel(admin, &datav1.PutDeviceModelRequest{Model: model}))

	// The device service registers a device; Alice claims it.
	deviceID := uuid.NewString()
	must[*datav1.RegisterDeviceResponse](t, "RegisterDevice")(internal.RegisterDevice(svc, &datav1.RegisterDeviceRequest{
		DeviceId: deviceID, Serial: "SN-000001", Model: "thermo-x1", ClaimCode: "ABC-123-XYZ"}))
	home := must[*datav1.CreateHomeResponse](t, "CreateHome")(homes.CreateHome(aliceCtx, &datav1.CreateHomeRequest{Name: "Flat"})).GetHome()
	_, err = homes.CreateHome(aliceCtx, &datav1.CreateHomeRequest{Name: ""})
	code(t, "CreateHome without a name", err, codes.InvalidArgument)
	_, err = devices.ClaimDevice(aliceCtx, &datav1.ClaimDeviceRequest{Serial: "SN-000001", ClaimCode: "WRONG-CODE"})
	code(t, "claim with a wrong code", err, codes.NotFound)
	claimed := must[*datav1.ClaimDeviceResponse](t, "ClaimDevice")(devices.ClaimDevice(aliceCtx, &datav1.ClaimDeviceRequest{
		Serial: "SN-000001", ClaimCode: "ABC-123-XYZ", HomeId: home.GetId()})).GetDevice()
	if claimed.GetAccessRole() != datav1.AccessRole_ACCESS_ROLE_OWNER || claimed.GetName() != "Thermostat" || claimed.GetHomeId() != home.GetId() {
		t.Errorf("claimed: %v", claimed)
	}
	// Claiming created the model's default alert rules.
	rules := must[*datav1.ListAlertRulesResponse](t, "ListAlertRules")(
		datav1.NewAlertRuleServiceClient(s.conn).ListAlertRules(aliceCtx, &datav1.ListAlertRulesRequest{DeviceId: deviceID}))
	if len(rules.GetItems()) != 1 || rules.GetItems()[0].GetName() != "Too cold" {
		t.Errorf("default rules after the claim: %v", rules.GetItems())
	}
	_, err = devices.ClaimDevice(bobCtx, &datav1.ClaimDeviceRequest{Serial: "SN-000001", ClaimCode: "ABC-123-XYZ"})
	code(t, "claim a claimed device", err, codes.AlreadyExists)

	// Bob cannot see it until Alice shares it, and then only as a member.
	for name, call := range map[string]func() error{
		"GetDevice": func() error {
			_, err := devices.GetDevice(bobCtx, &datav1.GetDeviceRequest{DeviceId: deviceID})
			return err
		},
		"GetDeviceState": func() error {
			_, err := states.GetDeviceState(bobCtx, &datav1.GetDeviceStateRequest{DeviceId: deviceID})
			return err
		},
		"ListShares": func() error {
			_, err := sharing.ListShares(bobCtx, &datav1.ListSharesRequest{DeviceId: deviceID})
			return err
		},
		"GetHome": func() error {
			_, err := homes.GetHome(bobCtx, &datav1.GetHomeRequest{HomeId: home.GetId()})
			return err
		},
	} {
		code(t, name+" of another account's", call(), codes.NotFound)
	}
	share := must[*datav1.CreateShareResponse](t, "CreateShare")(sharing.CreateShare(aliceCtx, &datav1.CreateShareRequest{
		DeviceId: deviceID, Phone: "+79510000002"})).GetShare()
	if share.GetPhoneMasked() != "+7******0002" || share.GetName() != "Bob" {
		t.Errorf("share: %v", share)
	}
	seen := must[*datav1.GetDeviceResponse](t, "member GetDevice")(devices.GetDevice(bobCtx, &datav1.GetDeviceRequest{DeviceId: deviceID})).GetDevice()
	if seen.GetAccessRole() != datav1.AccessRole_ACCESS_ROLE_MEMBER || seen.GetHomeId() != "" {
		t.Errorf("member's view: %v", seen)
	}
	_, err = devices.UpdateDevice(bobCtx, &datav1.UpdateDeviceRequest{DeviceId: deviceID, Name: ptr("Mine")})
	code(t, "member renames", err, codes.PermissionDenied)
	if access := must[*datav1.CheckDeviceAccessResponse](t, "CheckDeviceAccess")(internal.CheckDeviceAccess(svc,
		&datav1.CheckDeviceAccessRequest{DeviceId: deviceID, AccountId: bob.ID})); access.GetRole() != datav1.AccessRole_ACCESS_ROLE_MEMBER || access.GetModel() != "thermo-x1" {
		t.Errorf("CheckDeviceAccess: %v", access)
	}

	// State: the member commands, the app's stale write is aborted, the
	// device reports, the delta shrinks.
	patch, _ := structpb.NewStruct(map[string]any{"mode": "heat", "target": 21.5})
	upd := must[*datav1.UpdateDesiredStateResponse](t, "UpdateDesiredState")(states.UpdateDesiredState(bobCtx,
		&datav1.UpdateDesiredStateRequest{DeviceId: deviceID, Desired: patch, ExpectedVersion: ptr(int64(0))}))
	if upd.GetState().GetDesired().GetVersion() != 1 || len(upd.GetState().GetDelta().GetFields()) != 2 {
		t.Errorf("after desired update: %v", upd.GetState())
	}
	_, err = states.UpdateDesiredState(aliceCtx, &datav1.UpdateDesiredStateRequest{DeviceId: deviceID, Desired: patch, ExpectedVersion: ptr(int64(0))})
	code(t, "stale expected_version", err, codes.Aborted)
	reported, _ := structpb.NewStruct(map[string]any{"mode": "heat"})
	rep := must[*datav1.ReportDeviceStateResponse](t, "ReportDeviceState")(internal.ReportDeviceState(svc, &datav1.ReportDeviceStateRequest{
		DeviceId: deviceID, Reported: reported, ReportTime: timestamppb.Now()}))
	if delta := rep.GetState().GetDelta().AsMap(); len(delta) != 1 || delta["target"] != 21.5 {
		t.Errorf("delta after report: %v", delta)
	}

	// Bob's claim attempts run out (one spent above).
	var last error
	for range 3 {
		_, last = devices.ClaimDevice(bobCtx, &datav1.ClaimDeviceRequest{Serial: "SN-000009", ClaimCode: "NOPE-NOPE"})
	}
	st := code(t, "claims beyond the limit", last, codes.ResourceExhausted)
	if ri := retryInfo(st); ri == nil || ri.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("rate-limit status lacks RetryInfo: %v", st.Details())
	}

	_, err = homes.DeleteHome(aliceCtx, &datav1.DeleteHomeRequest{HomeId: home.GetId()})
	code(t, "delete a home with devices", err, codes.FailedPrecondition)
	appended := must[*datav1.AppendTelemetryResponse](t, "AppendTelemetry")(internal.AppendTelemetry(svc, &datav1.AppendTelemetryRequest{Records: []*datav1.TelemetryRecord{{
		DeviceId: deviceID, Seq: 1, Time: timestamppb.Now(), Metrics: map[string]float64{"temperature": 20}}}}))
	if appended.GetAccepted() != 1 {
		t.Errorf("AppendTelemetry accepted %d", appended.GetAccepted())
	}
	_, err = internal.AppendTelemetry(aliceCtx, &datav1.AppendTelemetryRequest{Records: []*datav1.TelemetryRecord{{
		DeviceId: deviceID, Seq: 2, Time: timestamppb.Now(), Metrics: map[string]float64{"temperature": 20}}}})
	code(t, "AppendTelemetry with a user token", err, codes.PermissionDenied)

	// Bob deletes his account: the share ends, AccountDeleted goes out.
	must[*datav1.DeleteMeResponse](t, "DeleteMe")(accounts.DeleteMe(bobCtx, &datav1.DeleteMeRequest{}))
	_, err = devices.GetDevice(bobCtx, &datav1.GetDeviceRequest{DeviceId: deviceID})
	code(t, "device after deleting the account", err, codes.NotFound)

	// The events reached Kafka through the outbox, keyed and typed.
	lifecycle := kafkatest.ReadTopic(t, s.brokers, "device.lifecycle", 5, 20*time.Second)
	wantTypes(t, lifecycle, "comfortech.device.claimed.v1", "comfortech.device.shared.v1",
		"comfortech.device.state.desired.v1", "comfortech.device.state.reported.v1", "comfortech.device.unshared.v1")
	for _, m := range lifecycle {
		if string(m.Key) != deviceID || m.Header(kafka.HeaderSource) != "/services/data" {
			t.Errorf("lifecycle event %s: key %q source %q", m.Header(kafka.HeaderType), m.Key, m.Header(kafka.HeaderSource))
		}
	}
	// account.events spreads accounts over partitions: order holds per key.
	accountEvents := kafkatest.ReadTopic(t, s.brokers, "account.events", 5, 20*time.Second)
	wantTypes(t, byKey(accountEvents, alice.ID), "comfortech.account.registered.v1", "comfortech.account.created.v1",
		"comfortech.account.updated.v1")
	wantTypes(t, byKey(accountEvents, bob.ID), "comfortech.account.created.v1", "comfortech.account.deleted.v1")

	resp, err := http.Get(s.ops + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("readyz: %v %v", resp, err)
	}
	if resp != nil {
		_ = resp.Body.Close()
	}
}

func wantTypes(t *testing.T, msgs []kafka.Message, types ...string) {
	t.Helper()
	if len(msgs) != len(types) {
		t.Errorf("%d events, want %d", len(msgs), len(types))
		return
	}
	for i, m := range msgs {
		if got := m.Header(kafka.HeaderType); got != types[i] {
			t.Errorf("event %d is %s, want %s", i, got, types[i])
		}
	}
}

// byKey returns the messages with key, in order.
func byKey(msgs []kafka.Message, key string) []kafka.Message {
	var out []kafka.Message
	for _, m := range msgs {
		if string(m.Key) == key {
			out = append(out, m)
		}
	}
	return out
}

func retryInfo(st *status.Status) *errdetails.RetryInfo {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri
		}
	}
	return nil
}

// publish sends an AccountRegistered as the auth gateway does.
func publish(t *testing.T, brokers []string, ev *eventsv1.AccountRegistered) {
	t.Helper()
	p, err := kafka.NewProducer(kafkatest.Config(brokers), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	m, err := kafka.EncodeEvent(context.Background(), "account.events", kafka.Event{
		Source: "/gateways/auth", Type: "comfortech.account.registered.v1", Key: ev.GetAccountId(), Data: ev})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestConfig: the required settings are named when missing.
func TestConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  data.Config
		want string
	}{
		{"no database", data.Config{KafkaBrokers: []string{"k:9092"}}, "DATABASE_URL"},
		{"no kafka", data.Config{DatabaseURL: "sqlite:x.db"}, "KAFKA_BROKERS"},
		{"negative attempts", data.Config{DatabaseURL: "sqlite:x.db", KafkaBrokers: []string{"k:9092"}, ClaimAttempts: -1}, "CLAIM_ATTEMPTS"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
		if err := data.Run(context.Background(), tc.cfg, zaptest.NewLogger(t)); err == nil {
			t.Errorf("%s: Run started", tc.name)
		}
	}
	if err := (data.Config{DatabaseURL: "sqlite:x.db", KafkaBrokers: []string{"k:9092"}}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// TestTelemetryFromKafka: the samples the device service publishes on
// device.telemetry are stored once each (a redelivered sample is a
// duplicate) and visible to the device's owner; a malformed event goes to
// device.telemetry.dlq with the reason, and the events behind it are
// stored.
func TestTelemetryFromKafka(t *testing.T) {
	t.Parallel()
	s := start(t, "sqlite:"+filepath.Join(t.TempDir(), "data.db"))
	internal := datav1.NewDataInternalServiceClient(s.conn)
	svc := as(s.idp.ServiceToken(t, "comfortech-device"))
	owner := s.idp.CreateUser(t, "+79510000077")
	must[*datav1.CreateAccountResponse](t, "CreateAccount")(internal.CreateAccount(svc,
		&datav1.CreateAccountRequest{AccountId: owner.ID, Phone: "+79510000077"}))
	ownerCtx := as(s.idp.Login(t, owner.Username, owner.Password).AccessToken)
	deviceID := uuid.NewString()
	must[*datav1.RegisterDeviceResponse](t, "RegisterDevice")(internal.RegisterDevice(svc, &datav1.RegisterDeviceRequest{
		DeviceId: deviceID, Serial: "SN-TEL-1", Model: "thermo-x1", ClaimCode: "TEL-CODE-1"}))
	must[*datav1.ClaimDeviceResponse](t, "ClaimDevice")(datav1.NewDeviceServiceClient(s.conn).ClaimDevice(ownerCtx,
		&datav1.ClaimDeviceRequest{Serial: "SN-TEL-1", ClaimCode: "TEL-CODE-1"}))

	p, err := kafka.NewProducer(kafkatest.Config(s.brokers), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	event := func(seqs ...int64) kafka.Message {
		e := &eventsv1.TelemetryReported{DeviceId: deviceID, Model: "thermo-x1", ReceiveTime: timestamppb.Now()}
		for _, seq := range seqs {
			e.Samples = append(e.Samples, &eventsv1.TelemetrySample{Seq: seq,
				Time: timestamppb.New(at.Add(time.Duration(seq) * time.Second)), Metrics: map[string]float64{"temperature": 20 + float64(seq)}})
		}
		m, err := kafka.EncodeEvent(context.Background(), "device.telemetry", kafka.Event{Source: "/services/device",
			Type: "comfortech.device.telemetry.v1", Key: deviceID, Data: e})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	malformed := event(9)
	malformed.Value = []byte(`{"device_id": 42}`)
	if err := p.PublishBatch(context.Background(), []kafka.Message{event(1, 2), malformed, event(2, 3)}); err != nil {
		t.Fatal(err)
	}

	telemetry := datav1.NewTelemetryServiceClient(s.conn)
	var got []*datav1.TelemetryPoint
	eventually(t, "three samples stored", func() bool {
		r, err := telemetry.QueryTelemetry(ownerCtx, &datav1.QueryTelemetryRequest{DeviceId: deviceID,
			StartTime: timestamppb.New(at), EndTime: timestamppb.New(at.Add(time.Minute))})
		got = r.GetItems()
		return err == nil && len(got) == 3
	})
	for i, rec := range got {
		if rec.GetSeq() != int64(i+1) || rec.GetMetrics()["temperature"] != float64(21+i) {
			t.Errorf("record %d: %v", i, rec)
		}
	}
	dlq := kafkatest.ReadTopic(t, s.brokers, "device.telemetry.dlq", 1, 20*time.Second)
	if reason := dlq[0].Header(kafka.HeaderDLQReason); !strings.Contains(reason, "invalid event") {
		t.Errorf("dead letter reason %q", reason)
	}
	// The duplicate was counted as such.
	eventually(t, "the duplicate counted", func() bool {
		resp, err := http.Get(s.ops + "/metrics")
		if err != nil {
			return false
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `comfort_data_telemetry_records_total{result="duplicate"} 1`) &&
			strings.Contains(string(body), `comfort_data_telemetry_records_total{result="stored"} 3`)
	})
}

// TestAdminServices drives FleetService and AccountAdminService through
// gRPC with real tokens: administrators only; the fleet list filters and
// totals; a device's picture joins the registry and its telemetry; a
// suspension is recorded and announced on account.events with its reason
// and the operator.
func TestAdminServices(t *testing.T) {
	t.Parallel()
	s := start(t, "sqlite:"+filepath.Join(t.TempDir(), "data.db"))
	internal := datav1.NewDataInternalServiceClient(s.conn)
	fleet := datav1.NewFleetServiceClient(s.conn)
	accounts := datav1.NewAccountAdminServiceClient(s.conn)
	svc := as(s.idp.ServiceToken(t, "comfortech-device"))
	adminToken := s.idp.AdminLogin(t).AccessToken
	admin := as(adminToken)
	owner := s.idp.CreateUser(t, "+79510000091")
	must[*datav1.CreateAccountResponse](t, "CreateAccount")(internal.CreateAccount(svc,
		&datav1.CreateAccountRequest{AccountId: owner.ID, Phone: "+79510000091", Name: "Olga"}))
	ownerCtx := as(s.idp.Login(t, owner.Username, owner.Password).AccessToken)

	must[*datav1.PutDeviceModelResponse](t, "PutDeviceModel")(datav1.NewDeviceModelServiceClient(s.conn).PutDeviceModel(admin,
		&datav1.PutDeviceModelRequest{Model: &datav1.DeviceModel{Id: "thermo-x1", Title: "Thermostat",
			DefaultAlertRules: []*datav1.AlertRuleTemplate{{Name: "Too hot", Condition: &datav1.AlertCondition{
				Metric: "temperature", Operator: datav1.Operator_OPERATOR_GREATER_THAN, Threshold: 30, Level: "warning"}}}}}))
	var ids []string
	for i := range 3 {
		id := uuid.NewString()
		must[*datav1.RegisterDeviceResponse](t, "RegisterDevice")(internal.RegisterDevice(svc, &datav1.RegisterDeviceRequest{
			DeviceId: id, Serial: fmt.Sprintf("SN-ADM-%d", i), Model: "thermo-x1", ClaimCode: fmt.Sprintf("ADM-CODE-%d", i)}))
		ids = append(ids, id)
	}
	must[*datav1.ClaimDeviceResponse](t, "ClaimDevice")(datav1.NewDeviceServiceClient(s.conn).ClaimDevice(ownerCtx,
		&datav1.ClaimDeviceRequest{Serial: "SN-ADM-1", ClaimCode: "ADM-CODE-1"}))
	seen := time.Now().Add(-time.Minute).Truncate(time.Second)
	must[*datav1.RecordPresenceResponse](t, "RecordPresence")(internal.RecordPresence(svc, &datav1.RecordPresenceRequest{
		DeviceId: ids[1], Online: true, LastSeenTime: timestamppb.New(seen), FirmwareVersion: "2.0.0"}))
	must[*datav1.AppendTelemetryResponse](t, "AppendTelemetry")(internal.AppendTelemetry(svc, &datav1.AppendTelemetryRequest{
		Records: []*datav1.TelemetryRecord{{DeviceId: ids[1], Seq: 1, Time: timestamppb.New(seen), Metrics: map[string]float64{"temperature": 35}}}}))

	// Administrators only.
	_, err := fleet.ListFleetDevices(ownerCtx, &datav1.ListFleetDevicesRequest{})
	code(t, "ListFleetDevices as a user", err, codes.PermissionDenied)
	_, err = accounts.ListAccounts(ownerCtx, &datav1.ListAccountsRequest{})
	code(t, "ListAccounts as a user", err, codes.PermissionDenied)
	_, err = accounts.SuspendAccount(context.Background(), &datav1.SuspendAccountRequest{AccountId: owner.ID, Reason: "x"})
	code(t, "SuspendAccount anonymously", err, codes.Unauthenticated)

	list := must[*datav1.ListFleetDevicesResponse](t, "ListFleetDevices")(fleet.ListFleetDevices(admin,
		&datav1.ListFleetDevicesRequest{PageSize: 2}))
	if len(list.GetItems()) != 2 || list.GetTotalSize() != 3 || list.GetNextPageToken() == "" || list.GetItems()[0].GetSerial() != "SN-ADM-0" {
		t.Errorf("first page: %v", list)
	}
	online := must[*datav1.ListFleetDevicesResponse](t, "ListFleetDevices online")(fleet.ListFleetDevices(admin,
		&datav1.ListFleetDevicesRequest{Online: ptr(true), Claimed: ptr(true), OwnerAccountId: owner.ID, FirmwareVersion: "2.0.0",
			LastSeenAfter: timestamppb.New(seen), SerialPrefix: "SN-ADM"}))
	if len(online.GetItems()) != 1 || online.GetItems()[0].GetId() != ids[1] || !online.GetItems()[0].GetOnline() || online.GetTotalSize() != 1 {
		t.Errorf("online page: %v", online)
	}
	_, err = fleet.ListFleetDevices(admin, &datav1.ListFleetDevicesRequest{Model: "Thermo X1"})
	code(t, "a model that is no model id", err, codes.InvalidArgument)

	fd := must[*datav1.GetFleetDeviceResponse](t, "GetFleetDevice")(fleet.GetFleetDevice(admin,
		&datav1.GetFleetDeviceRequest{DeviceId: ids[1]})).GetDevice()
	if fd.GetDevice().GetSerial() != "SN-ADM-1" || fd.GetOwner().GetId() != owner.ID || fd.GetState() == nil ||
		fd.GetLatestTelemetry()["temperature"].GetValue() != 35 || len(fd.GetAlertRules()) != 1 ||
		len(fd.GetRecentAlerts()) != 1 || fd.GetRecentAlerts()[0].GetState() != datav1.AlertState_ALERT_STATE_ACTIVE {
		t.Errorf("fleet device: %v", fd)
	}
	_, err = fleet.GetFleetDevice(admin, &datav1.GetFleetDeviceRequest{DeviceId: uuid.NewString()})
	code(t, "GetFleetDevice of an unknown device", err, codes.NotFound)

	found := must[*datav1.ListAccountsResponse](t, "ListAccounts")(accounts.ListAccounts(admin, &datav1.ListAccountsRequest{Query: "olg"}))
	if len(found.GetItems()) != 1 || found.GetItems()[0].GetId() != owner.ID {
		t.Errorf("accounts matching olg: %v", found)
	}
	overview := must[*datav1.GetAccountOverviewResponse](t, "GetAccountOverview")(accounts.GetAccountOverview(admin,
		&datav1.GetAccountOverviewRequest{AccountId: owner.ID}))
	if len(overview.GetDevices()) != 1 || overview.GetDevices()[0].GetAccessRole() != datav1.AccessRole_ACCESS_ROLE_OWNER {
		t.Errorf("overview: %v", overview)
	}
	_, err = accounts.SuspendAccount(admin, &datav1.SuspendAccountRequest{AccountId: owner.ID})
	code(t, "SuspendAccount without a reason", err, codes.InvalidArgument)
	susp := must[*datav1.SuspendAccountResponse](t, "SuspendAccount")(accounts.SuspendAccount(admin,
		&datav1.SuspendAccountRequest{AccountId: owner.ID, Reason: "chargeback"})).GetAccount()
	if susp.GetStatus() != datav1.AccountStatus_ACCOUNT_STATUS_SUSPENDED || susp.GetSuspendReason() != "chargeback" {
		t.Errorf("suspended account: %v", susp)
	}
	suspended := must[*datav1.ListAccountsResponse](t, "ListAccounts suspended")(accounts.ListAccounts(admin,
		&datav1.ListAccountsRequest{Status: datav1.AccountStatus_ACCOUNT_STATUS_SUSPENDED}))
	if len(suspended.GetItems()) != 1 || suspended.GetItems()[0].GetId() != owner.ID {
		t.Errorf("suspended accounts: %v", suspended)
	}
	must[*datav1.ReinstateAccountResponse](t, "ReinstateAccount")(accounts.ReinstateAccount(admin,
		&datav1.ReinstateAccountRequest{AccountId: owner.ID, Reason: "paid"}))

	events := byKey(kafkatest.ReadTopic(t, s.brokers, "account.events", 3, 20*time.Second), owner.ID)
	wantTypes(t, events, "comfortech.account.created.v1", "comfortech.account.suspended.v1", "comfortech.account.reinstated.v1")
	if len(events) == 3 {
		var ev eventsv1.AccountSuspended
		if _, err := kafka.DecodeEvent(&events[1], &ev); err != nil || ev.GetReason() != "chargeback" ||
			ev.GetActorId() != subject(t, adminToken) {
			t.Errorf("AccountSuspended %v, %v", &ev, err)
		}
	}
}

// subject returns the sub claim of a JWT (not verified: the test issued it).
func subject(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	var claims struct{ Sub string }
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err == nil {
		err = json.Unmarshal(payload, &claims)
	}
	if err != nil || claims.Sub == "" {
		t.Fatalf("token claims: %v", err)
	}
	return claims.Sub
}
