package device_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/config"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	"github.com/comfortech/platform/libs/metrics"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/rpc"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/data"
	"github.com/comfortech/platform/services/device"
	"github.com/comfortech/platform/services/device/brokerclient"
	"github.com/comfortech/platform/services/device/mqttauth"
	"github.com/comfortech/platform/services/device/simulator"
)

const model = "thermo-x1"

// stack is the device service running for real: the data service on
// SQLite, the identity provider, kfake, and a mochi broker whose auth hook
// asks the device service (unless the test runs its own broker, a real
// Mosquitto).
type stack struct {
	idp     *idptest.Server
	kafka   *kfake.Cluster
	brokers []string
	// mqttURL is the broker the device service is linked to.
	mqttURL  string
	dataConn *grpc.ClientConn
	devConn  *grpc.ClientConn
	admin    context.Context
	// devOps is the device service's ops address (/metrics).
	devOps string
	// data is the data service, which a test may stop and start again.
	data *dataService
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// run runs f until the test ends.
func run(t testing.TB, name string, f func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not return", name)
		}
	})
}

func dialGRPC(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func waitServing(t testing.TB, c *grpc.ClientConn) {
	t.Helper()
	eventually(t, "the service to be ready", 20*time.Second, func() bool {
		r, err := healthpb.NewHealthClient(c).Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
}

func eventually(t testing.TB, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func as(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// start runs the stack; edit adjusts the device service's configuration.
// An edit that sets MQTT.URL links the service to that broker, and no
// mochi broker is started.
func start(t testing.TB, edit func(*device.Config)) *stack {
	t.Helper()
	idp := idptest.Start(t)
	s := &stack{idp: idp}
	labelled(partKafka, func() { s.kafka = kafkatest.NewCluster(t) })
	s.brokers = s.kafka.ListenAddrs()

	dataGRPC := listen(t)
	s.data = &dataService{t: t, addr: dataGRPC.Addr().String(), cfg: data.Config{Auth: auth.Settings{Issuer: idp.Issuer()},
		DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "data.db"), KafkaBrokers: s.brokers,
		ClaimAttempts: 10, ClaimPeriod: time.Minute}}
	s.data.start(dataGRPC)
	t.Cleanup(s.data.stop)
	s.dataConn = dialGRPC(t, s.data.addr)
	waitServing(t, s.dataConn)

	devGRPC, devOps := listen(t), listen(t)
	s.devOps = devOps.Addr().String()
	svcAuth := auth.Settings{Issuer: idp.Issuer(), ClientID: "comfortech-device",
		ClientSecret: config.Secret(idp.ClientSecret(t, "comfortech-device"))}
	cfg := device.Config{Auth: svcAuth, DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "device.db"),
		DataAddr: s.data.addr, BrokerMode: device.BrokerEmbedded, KafkaBrokers: s.brokers,
		MQTT: device.MQTTConfig{Username: serviceUser, Password: servicePass, ClientID: "device-service-test"},
		Telemetry: device.TelemetryConfig{MaxPayload: 64 << 10, BatchSize: 500, BatchWait: 20 * time.Millisecond,
			Buffer: 10000, EnqueueWait: time.Second},
	}
	if edit != nil {
		edit(&cfg)
	}
	// A test that sets its own broker gets no idle mochi beside it.
	if cfg.MQTT.URL == "" {
		cfg.MQTT.URL = startBroker(t, devGRPC.Addr().String(), svcAuth)
	}
	s.mqttURL = cfg.MQTT.URL
	run(t, "device.Run", func(ctx context.Context) error {
		ctx = pprof.WithLabels(ctx, pprof.Labels(partLabel, partDevice))
		pprof.SetGoroutineLabels(ctx)
		return device.Run(ctx, cfg, zaptest.NewLogger(t).Named("device"),
			process.WithGRPCListener(devGRPC), process.WithOpsListener(devOps))
	})
	s.devConn = dialGRPC(t, devGRPC.Addr().String())
	waitServing(t, s.devConn)

	s.admin = as(idp.AdminLogin(t).AccessToken)
	if _, err := datav1.NewDeviceModelServiceClient(s.dataConn).PutDeviceModel(s.admin, &datav1.PutDeviceModelRequest{
		Model: &datav1.DeviceModel{Id: model, Title: "Thermostat", Commands: []string{"reboot", "set_mode", "set_target_temperature"}}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// dataService is a data service that the test can stop and start again on
// the same address and database.
type dataService struct {
	t      testing.TB
	cfg    data.Config
	addr   string
	ops    string // the ops address (/metrics) of the current run
	cancel context.CancelFunc
	done   chan error
}

func (d *dataService) start(l net.Listener) {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan error, 1)
	ops := listen(d.t)
	d.ops = ops.Addr().String()
	go func() {
		pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels(partLabel, partData)))
		d.done <- data.Run(ctx, d.cfg, zaptest.NewLogger(d.t).Named("data"),
			process.WithGRPCListener(l), process.WithOpsListener(ops))
	}()
}

// stop stops the service; a stopped service stays stopped.
func (d *dataService) stop() {
	d.t.Helper()
	if d.done == nil {
		return
	}
	d.cancel()
	defer func() { d.done = nil }()
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Errorf("data.Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		d.t.Fatal("data.Run did not return")
	}
}

// restart starts the service again on its old address.
func (d *dataService) restart() {
	d.t.Helper()
	l, err := net.Listen("tcp", d.addr)
	if err != nil {
		d.t.Fatalf("listen again on %s: %v", d.addr, err)
	}
	d.start(l)
}

// The goroutines of each part of the stack carry the pprof label
// partLabel, so that a CPU profile tells the parts apart (cpuByPart).
const (
	partLabel  = "part"
	partDevice = "device"
	partData   = "data"
	partBroker = "broker"
	partKafka  = "kafka"
)

// labelled runs f with the part label set, so that the goroutines it
// starts carry it.
func labelled(part string, f func()) {
	pprof.Do(context.Background(), pprof.Labels(partLabel, part), func(context.Context) { f() })
}

const serviceUser, servicePass = "comfort-device-service", "service-secret"

// startBroker runs a mochi broker whose hook asks the device service at
// deviceAddr (which may not be up yet) with the service's token.
func startBroker(t testing.TB, deviceAddr string, svc auth.Settings) string {
	t.Helper()
	ts, err := svc.NewTokenSource()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := rpc.Dial(deviceAddr, metrics.New(), rpc.WithPerRPCCredentials(ts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	srv := mqtt.New(&mqtt.Options{InlineClient: true})
	if err := srv.AddHook(mqttauth.New(mqttauth.Options{Authorizer: brokerclient.New(conn),
		ServiceUsername: serviceUser, ServicePassword: servicePass}), nil); err != nil {
		t.Fatal(err)
	}
	l := listen(t)
	addr := l.Addr().String()
	_ = l.Close()
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr})); err != nil {
		t.Fatal(err)
	}
	labelled(partBroker, func() { go func() { _ = srv.Serve() }() })
	t.Cleanup(func() { _ = srv.Close() })
	return "tcp://" + addr
}

// provisioned is a device with its credentials and claim code.
type provisioned struct {
	simulator.Credential
	ClaimCode string
}

// provision creates n devices.
func (s *stack) provision(t testing.TB, n int) []provisioned {
	t.Helper()
	out, err := s.provisionBatch(n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// provisionBatch creates n devices in one BatchProvisionDevices call; unlike
// provision it may run on any goroutine.
func (s *stack) provisionBatch(n int) ([]provisioned, error) {
	reqs := make([]*devicev1.ProvisionDeviceRequest, n)
	for i := range reqs {
		reqs[i] = &devicev1.ProvisionDeviceRequest{Serial: fmt.Sprintf("SN-%d-%d", time.Now().UnixNano(), i), Model: model}
	}
	resp, err := devicev1.NewDeviceAdminServiceClient(s.devConn).BatchProvisionDevices(s.admin,
		&devicev1.BatchProvisionDevicesRequest{Requests: reqs})
	if err != nil {
		return nil, err
	}
	out := make([]provisioned, n)
	for i, d := range resp.GetItems() {
		out[i] = provisioned{simulator.Credential{ID: d.GetDeviceId(), Secret: d.GetSecret(), Serial: d.GetSerial(), Model: model}, d.GetClaimCode()}
	}
	return out, nil
}

// user creates a user with an account and returns the user's context.
func (s *stack) user(t testing.TB, phone string) context.Context {
	t.Helper()
	u := s.idp.CreateUser(t, phone)
	if _, err := datav1.NewDataInternalServiceClient(s.dataConn).CreateAccount(as(s.idp.ServiceToken(t, "comfortech-device")),
		&datav1.CreateAccountRequest{AccountId: u.ID, Phone: phone, Name: "User " + phone}); err != nil {
		t.Fatal(err)
	}
	return as(s.idp.Login(t, u.Username, u.Password).AccessToken)
}

// owner creates a user who claims d, and returns the user's context.
func (s *stack) owner(t testing.TB, phone string, d provisioned) context.Context {
	t.Helper()
	ctx := s.user(t, phone)
	if _, err := datav1.NewDeviceServiceClient(s.dataConn).ClaimDevice(ctx, &datav1.ClaimDeviceRequest{
		Serial: d.Serial, ClaimCode: d.ClaimCode}); err != nil {
		t.Fatalf("claim: %v", err)
	}
	return ctx
}

// fleet runs the simulator with devs until the test ends.
func (s *stack) fleet(t testing.TB, ps []provisioned, interval time.Duration) *simulator.Fleet {
	t.Helper()
	devs := make([]simulator.Credential, len(ps))
	for i, p := range ps {
		devs[i] = p.Credential
	}
	f, err := simulator.New(simulator.Config{Broker: s.mqttURL, Devices: devs, Interval: interval}, zaptest.NewLogger(t).Named("sim"))
	if err != nil {
		t.Fatal(err)
	}
	run(t, "fleet", f.Run)
	eventually(t, "the devices to connect", 15*time.Second, func() bool { return f.Stats().Connected == len(devs) })
	return f
}

// device connects a raw MQTT client as a device.
func (s *stack) device(t testing.TB, c provisioned) paho.Client {
	t.Helper()
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(s.mqttURL).SetClientID(c.ID).SetUsername(c.ID).SetPassword(c.Secret))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(0) })
	return cl
}

func publish(t testing.TB, c paho.Client, topic string, body []byte) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// TestTelemetry: a simulated device's telemetry reaches the data service
// and device.telemetry; malformed and oversized messages land in the DLQ
// with their reason.
func TestTelemetry(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	devs := s.provision(t, 3)
	s.fleet(t, devs[:2], 100*time.Millisecond)

	// The data service has the readings: the owner sees them.
	ownerCtx := s.owner(t, "+79510000101", devs[0])
	eventually(t, "telemetry in the data service", 20*time.Second, func() bool {
		r, err := datav1.NewTelemetryServiceClient(s.dataConn).GetLatestTelemetry(ownerCtx,
			&datav1.GetLatestTelemetryRequest{DeviceId: devs[0].ID})
		return err == nil && len(r.GetMetrics()) > 0
	})

	// The simulator reports its state on connecting: the data service has it.
	eventually(t, "reported state in the data service", 20*time.Second, func() bool {
		r, err := datav1.NewDeviceStateServiceClient(s.dataConn).GetDeviceState(ownerCtx,
			&datav1.GetDeviceStateRequest{DeviceId: devs[0].ID})
		return err == nil && len(r.GetState().GetReported().GetState().GetFields()) > 0
	})

	// The telemetry events carry the devices' samples and model.
	msgs := kafkatest.ReadTopic(t, s.brokers, "device.telemetry", 4, 20*time.Second)
	for _, m := range msgs {
		var e eventsv1.TelemetryReported
		if _, err := kafka.DecodeEvent(&m, &e); err != nil {
			t.Fatal(err)
		}
		if (e.GetDeviceId() != devs[0].ID && e.GetDeviceId() != devs[1].ID) || string(m.Key) != e.GetDeviceId() ||
			e.GetModel() != model || len(e.GetSamples()) == 0 || len(e.GetSamples()[0].GetMetrics()) == 0 {
			t.Errorf("event: key %s, %v", m.Key, &e)
		}
	}

	// A misbehaving device: every bad message lands in the DLQ with its
	// reason, and the service goes on.
	raw := s.device(t, devs[2])
	topic := "devices/" + devs[2].ID + "/telemetry"
	now := time.Now().UnixMilli()
	bad := []struct{ body, reason string }{
		{`not json`, "invalid_json"},
		{fmt.Sprintf(`{"ts":%d,"seq":-1,"metrics":{"t":1}}`, now), "invalid_seq"},
		{fmt.Sprintf(`[{"ts":%d,"seq":1,"metrics":{"Temp":1}}]`, now), "invalid_metric_name"},
		{fmt.Sprintf(`{"ts":%d,"seq":1,"metrics":{"t":1},"pad":"%s"}`, now, strings.Repeat("x", 70<<10)), "too_large"},
		{`{"seq":1,"metrics":{"t":1}}`, "invalid_ts"},
	}
	for _, b := range bad {
		publish(t, raw, topic, []byte(b.body))
	}
	publish(t, raw, topic, []byte(fmt.Sprintf(`{"ts":%d,"seq":7,"metrics":{"temperature":20.5}}`, now)))
	dlq := kafkatest.ReadTopic(t, s.brokers, "device.telemetry.dlq", len(bad), 20*time.Second)
	for i, m := range dlq {
		if got := m.Header(kafka.HeaderDLQReason); got != bad[i].reason || m.Header("device_id") != devs[2].ID ||
			m.Header("dlq_mqtt_topic") != topic || string(m.Key) != devs[2].ID {
			t.Errorf("dlq[%d]: reason %q device %q topic %q, want reason %q", i, got, m.Header("device_id"),
				m.Header("dlq_mqtt_topic"), bad[i].reason)
		}
	}
	// The good message after them went through.
	eventually(t, "the good message's event", 20*time.Second, func() bool {
		return telemetryOf(t, s, devs[2].ID)
	})
}

// telemetryOf says whether device.telemetry holds an event of deviceID.
func telemetryOf(t testing.TB, s *stack, deviceID string) bool {
	t.Helper()
	n := int(kafkatest.EndOffset(t, s.brokers, "device.telemetry"))
	for _, m := range kafkatest.ReadTopic(t, s.brokers, "device.telemetry", n, 5*time.Second) {
		if string(m.Key) == deviceID {
			return true
		}
	}
	return false
}

// presenceEvents returns the DevicePresenceChanged events of deviceID on
// device.lifecycle so far.
func presenceEvents(t testing.TB, s *stack, deviceID string) []*eventsv1.DevicePresenceChanged {
	t.Helper()
	n := int(kafkatest.EndOffset(t, s.brokers, "device.lifecycle"))
	if n == 0 {
		return nil
	}
	var out []*eventsv1.DevicePresenceChanged
	for _, m := range kafkatest.ReadTopic(t, s.brokers, "device.lifecycle", n, 5*time.Second) {
		if m.Header("ce_type") != "comfortech.device.presence.v1" || string(m.Key) != deviceID {
			continue
		}
		var e eventsv1.DevicePresenceChanged
		if _, err := kafka.DecodeEvent(&m, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, &e)
	}
	return out
}

// TestPresence: a device's `online` and its last will become presence
// events (debounced) and reach the data service; a flap is ignored.
func TestPresence(t *testing.T) {
	t.Parallel()
	s := start(t, func(c *device.Config) { c.PresenceDebounce = 300 * time.Millisecond })
	devs := s.provision(t, 2)
	ownerCtx := s.owner(t, "+79510000201", devs[0])
	f := s.fleet(t, devs[:1], time.Second)
	devices := datav1.NewDeviceServiceClient(s.dataConn)

	eventually(t, "the online event", 20*time.Second, func() bool {
		es := presenceEvents(t, s, devs[0].ID)
		return len(es) == 1 && es[0].GetOnline() && es[0].GetReason() == eventsv1.PresenceReason_PRESENCE_REASON_CONNECTED
	})
	eventually(t, "online in the data service", 10*time.Second, func() bool {
		d, err := devices.GetDevice(ownerCtx, &datav1.GetDeviceRequest{DeviceId: devs[0].ID})
		return err == nil && d.GetDevice().GetOnline()
	})
	if n := counter(t, s.devOps, "comfort_device_online_devices ", ""); n != 1 {
		t.Errorf("comfort_device_online_devices = %d with one device online, want 1", n)
	}

	// The connection drops: the broker publishes the last will.
	if err := f.Drop(devs[0].ID, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the offline event", 20*time.Second, func() bool {
		es := presenceEvents(t, s, devs[0].ID)
		return len(es) == 2 && !es[1].GetOnline()
	})
	eventually(t, "offline in the data service", 10*time.Second, func() bool {
		d, err := devices.GetDevice(ownerCtx, &datav1.GetDeviceRequest{DeviceId: devs[0].ID})
		return err == nil && !d.GetDevice().GetOnline()
	})
	if n := counter(t, s.devOps, "comfort_device_online_devices ", ""); n != 0 {
		t.Errorf("comfort_device_online_devices = %d once the device dropped, want 0", n)
	}

	// The history, through PresenceService (owner) and DeviceAdminService.
	pres := devicev1.NewPresenceServiceClient(s.devConn)
	eventually(t, "the history", 10*time.Second, func() bool {
		p, err := pres.GetPresence(ownerCtx, &devicev1.GetPresenceRequest{DeviceId: devs[0].ID})
		return err == nil && !p.GetPresence().GetOnline() && p.GetPresence().GetSinceTime() != nil &&
			p.GetPresence().GetReason() == devicev1.PresenceReason_PRESENCE_REASON_DISCONNECTED
	})
	h, err := pres.ListPresenceEvents(ownerCtx, &devicev1.ListPresenceEventsRequest{DeviceId: devs[0].ID})
	if err != nil || len(h.GetItems()) != 2 || h.GetItems()[0].GetOnline() || !h.GetItems()[1].GetOnline() ||
		h.GetItems()[1].GetReason() != devicev1.PresenceReason_PRESENCE_REASON_CONNECTED {
		t.Fatalf("history: %v, %v", h, err)
	}
	page, err := devicev1.NewDeviceAdminServiceClient(s.devConn).ListDevicePresenceEvents(s.admin,
		&devicev1.ListDevicePresenceEventsRequest{DeviceId: devs[0].ID, PageSize: 1})
	if err != nil || len(page.GetItems()) != 1 || page.GetItems()[0].GetOnline() || page.GetNextPageToken() == "" {
		t.Fatalf("admin page: %v, %v", page, err)
	}
	if _, err := pres.GetPresence(s.user(t, "+79510000202"), &devicev1.GetPresenceRequest{DeviceId: devs[0].ID}); status.Code(err) != codes.NotFound {
		t.Errorf("another account: %v, want NotFound", err)
	}

	// A device that comes online and drops back within the window: no
	// change at all.
	raw := s.device(t, devs[1])
	for _, st := range []string{"online", "offline"} {
		if tok := raw.Publish("devices/"+devs[1].ID+"/status", 1, true, st); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	time.Sleep(time.Second)
	if es := presenceEvents(t, s, devs[1].ID); len(es) != 0 {
		t.Errorf("flap produced events: %v", es)
	}
}

// TestDesiredState: the owner changes the desired state through the data
// service; the device receives the retained document, applies it and
// reports it back.
func TestDesiredState(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	devs := s.provision(t, 1)
	ownerCtx := s.owner(t, "+79510000301", devs[0])
	s.fleet(t, devs, time.Second)

	desired, err := structpb.NewStruct(map[string]any{"mode": "eco", "night_light": true})
	if err != nil {
		t.Fatal(err)
	}
	states := datav1.NewDeviceStateServiceClient(s.dataConn)
	if _, err := states.UpdateDesiredState(ownerCtx, &datav1.UpdateDesiredStateRequest{DeviceId: devs[0].ID, Desired: desired}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the device to report the desired state", 30*time.Second, func() bool {
		r, err := states.GetDeviceState(ownerCtx, &datav1.GetDeviceStateRequest{DeviceId: devs[0].ID})
		f := r.GetState().GetReported().GetState().GetFields()
		return err == nil && f["mode"].GetStringValue() == "eco" && f["night_light"].GetBoolValue()
	})
}

// TestCommands: commands through CommandService and DeviceAdminService,
// answered by a simulated device; offline devices get them when they come
// back, unless they expired; only the owner and members may command.
func TestCommands(t *testing.T) {
	t.Parallel()
	s := start(t, func(c *device.Config) {
		c.PresenceDebounce = 200 * time.Millisecond
		c.CommandSweep = 100 * time.Millisecond
	})
	devs := s.provision(t, 1)
	dev := devs[0].ID
	ownerCtx := s.owner(t, "+79510000401", devs[0])
	f := s.fleet(t, devs, time.Second)
	cmds := devicev1.NewCommandServiceClient(s.devConn)
	eventually(t, "the device online", 20*time.Second, func() bool {
		es := presenceEvents(t, s, dev)
		return len(es) > 0 && es[len(es)-1].GetOnline()
	})

	send := func(t *testing.T, ctx context.Context, req *devicev1.SendCommandRequest) *devicev1.Command {
		t.Helper()
		req.DeviceId = dev
		r, err := cmds.SendCommand(ctx, req)
		if err != nil {
			t.Fatalf("send %s: %v", req.GetName(), err)
		}
		return r.GetCommand()
	}
	params := func(m map[string]any) *structpb.Struct {
		p, err := structpb.NewStruct(m)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	var succeeded string

	t.Run("round trip", func(t *testing.T) {
		c := send(t, ownerCtx, &devicev1.SendCommandRequest{Name: "set_mode", Params: params(map[string]any{"mode": "cool"}),
			WaitForResult: true})
		if c.GetStatus() != devicev1.CommandStatus_COMMAND_STATUS_SUCCEEDED || c.GetResult().GetFields()["mode"].GetStringValue() != "cool" ||
			c.GetSentTime() == nil || c.GetCompleteTime() == nil {
			t.Fatalf("command: %v", c)
		}
		succeeded = c.GetId()
		g, err := cmds.GetCommand(ownerCtx, &devicev1.GetCommandRequest{DeviceId: dev, CommandId: c.GetId()})
		if err != nil || g.GetCommand().GetStatus() != devicev1.CommandStatus_COMMAND_STATUS_SUCCEEDED {
			t.Errorf("get: %v, %v", g, err)
		}
	})

	t.Run("unknown command fails", func(t *testing.T) {
		c := send(t, ownerCtx, &devicev1.SendCommandRequest{Name: "self_destruct", WaitForResult: true})
		if c.GetStatus() != devicev1.CommandStatus_COMMAND_STATUS_FAILED || !strings.Contains(c.GetError(), "unknown command") {
			t.Fatalf("command: %v", c)
		}
	})

	t.Run("another account", func(t *testing.T) {
		other := s.user(t, "+79510000402")
		_, err := cmds.SendCommand(other, &devicev1.SendCommandRequest{DeviceId: dev, Name: "reboot"})
		if status.Code(err) != codes.NotFound {
			t.Errorf("send: %v, want NotFound", err)
		}
		_, err = cmds.GetCommand(other, &devicev1.GetCommandRequest{DeviceId: dev, CommandId: succeeded})
		if status.Code(err) != codes.NotFound {
			t.Errorf("get: %v, want NotFound", err)
		}
		_, err = cmds.ListCommands(other, &devicev1.ListCommandsRequest{DeviceId: dev})
		if status.Code(err) != codes.NotFound {
			t.Errorf("list: %v, want NotFound", err)
		}
	})

	t.Run("member", func(t *testing.T) {
		member := s.user(t, "+79510000403")
		if _, err := datav1.NewSharingServiceClient(s.dataConn).CreateShare(ownerCtx,
			&datav1.CreateShareRequest{DeviceId: dev, Phone: "+79510000403"}); err != nil {
			t.Fatal(err)
		}
		c := send(t, member, &devicev1.SendCommandRequest{Name: "set_target_temperature",
			Params: params(map[string]any{"value": 22}), WaitForResult: true})
		if c.GetStatus() != devicev1.CommandStatus_COMMAND_STATUS_SUCCEEDED {
			t.Fatalf("command: %v", c)
		}
	})

	t.Run("offline device", func(t *testing.T) {
		if err := f.Drop(dev, true, 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the device offline", 20*time.Second, func() bool {
			es := presenceEvents(t, s, dev)
			return len(es) > 0 && !es[len(es)-1].GetOnline()
		})
		c := send(t, ownerCtx, &devicev1.SendCommandRequest{Name: "set_mode", Params: params(map[string]any{"mode": "heat"}),
			Ttl: durationpb.New(time.Minute)})
		if c.GetStatus() != devicev1.CommandStatus_COMMAND_STATUS_QUEUED || c.GetSentTime() != nil {
			t.Fatalf("command: %v", c)
		}
		expiring := send(t, ownerCtx, &devicev1.SendCommandRequest{Name: "reboot", Ttl: durationpb.New(time.Second)})
		eventually(t, "the command to expire", 10*time.Second, func() bool {
			g, err := cmds.GetCommand(ownerCtx, &devicev1.GetCommandRequest{DeviceId: dev, CommandId: expiring.GetId()})
			return err == nil && g.GetCommand().GetStatus() == devicev1.CommandStatus_COMMAND_STATUS_EXPIRED
		})
		if err := f.Reconnect(dev); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the queued command to succeed", 20*time.Second, func() bool {
			g, err := cmds.GetCommand(ownerCtx, &devicev1.GetCommandRequest{DeviceId: dev, CommandId: c.GetId()})
			return err == nil && g.GetCommand().GetStatus() == devicev1.CommandStatus_COMMAND_STATUS_SUCCEEDED &&
				g.GetCommand().GetSentTime() != nil
		})
		g, _ := cmds.GetCommand(ownerCtx, &devicev1.GetCommandRequest{DeviceId: dev, CommandId: expiring.GetId()})
		if g.GetCommand().GetStatus() != devicev1.CommandStatus_COMMAND_STATUS_EXPIRED {
			t.Errorf("expired command after reconnect: %v", g.GetCommand())
		}
	})

	t.Run("operator", func(t *testing.T) {
		admin := devicev1.NewDeviceAdminServiceClient(s.devConn)
		r, err := admin.SendOperatorCommand(s.admin, &devicev1.SendOperatorCommandRequest{DeviceId: dev, Name: "set_mode",
			Params: params(map[string]any{"mode": "auto"}), WaitForResult: true})
		if err != nil || r.GetCommand().GetStatus() != devicev1.CommandStatus_COMMAND_STATUS_SUCCEEDED {
			t.Fatalf("operator command: %v, %v", r, err)
		}
		l, err := admin.ListDeviceCommands(s.admin, &devicev1.ListDeviceCommandsRequest{DeviceId: dev, PageSize: 2})
		if err != nil || len(l.GetItems()) != 2 || l.GetItems()[0].GetId() != r.GetCommand().GetId() || l.GetNextPageToken() == "" {
			t.Fatalf("list: %v, %v", l, err)
		}
		l2, err := cmds.ListCommands(ownerCtx, &devicev1.ListCommandsRequest{DeviceId: dev,
			Status: devicev1.CommandStatus_COMMAND_STATUS_EXPIRED})
		if err != nil || len(l2.GetItems()) != 1 {
			t.Errorf("expired only: %v, %v", l2, err)
		}
	})

	t.Run("result events", func(t *testing.T) {
		got := map[eventsv1.CommandStatus]int{}
		eventually(t, "the result events", 20*time.Second, func() bool {
			clear(got)
			n := int(kafkatest.EndOffset(t, s.brokers, "device.lifecycle"))
			for _, m := range kafkatest.ReadTopic(t, s.brokers, "device.lifecycle", n, 5*time.Second) {
				if m.Header("ce_type") != device.CommandResultType {
					continue
				}
				var e eventsv1.CommandCompleted
				if _, err := kafka.DecodeEvent(&m, &e); err != nil {
					t.Fatal(err)
				}
				if string(m.Key) == dev && e.GetDeviceId() == dev {
					got[e.GetStatus()]++
				}
			}
			return got[eventsv1.CommandStatus_COMMAND_STATUS_SUCCEEDED] == 4 && got[eventsv1.CommandStatus_COMMAND_STATUS_FAILED] == 1 &&
				got[eventsv1.CommandStatus_COMMAND_STATUS_EXPIRED] == 1
		})
	})
}

// TestAlarms: a device's alarm becomes a device.lifecycle event and a
// notification for its owner on notifications.outbox; malformed alarms
// are dropped without harm.
func TestAlarms(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	devs := s.provision(t, 1)
	dev := devs[0].ID
	s.owner(t, "+79510000501", devs[0])
	raw := s.device(t, devs[0])
	topic := "devices/" + dev + "/events"
	publish(t, raw, topic, []byte(`not json`))
	publish(t, raw, topic, []byte(`{"ts": 1, "type": "fault", "level": "doom"}`))

	// The owner projection follows the claim event asynchronously: alarms
	// raised before it arrives have nobody to notify, so raise until one
	// is notified.
	var notes []kafka.Message
	var ts int64
	eventually(t, "a notification", 30*time.Second, func() bool {
		ts = time.Now().UnixMilli()
		publish(t, raw, topic, []byte(fmt.Sprintf(`{"ts": %d, "type": "co_detected", "level": "critical", "message": "CO detected", "data": {"ppm": 120}}`, ts)))
		time.Sleep(300 * time.Millisecond)
		n := int(kafkatest.EndOffset(t, s.brokers, "notifications.outbox"))
		if n == 0 {
			return false
		}
		notes = kafkatest.ReadTopic(t, s.brokers, "notifications.outbox", n, 5*time.Second)
		return true
	})
	var n eventsv1.OutboxNotification
	if _, err := kafka.DecodeEvent(&notes[len(notes)-1], &n); err != nil {
		t.Fatal(err)
	}
	if n.GetApplication() != "comfortech" || n.GetEventType() != "device.co_detected" || n.GetLevel() != "critical" ||
		n.GetMessage() != "CO detected" || n.GetAccountId() == "" || string(notes[len(notes)-1].Key) != n.GetAccountId() ||
		!strings.HasPrefix(n.GetId(), dev+":") || !strings.HasSuffix(n.GetId(), ":co_detected") ||
		n.GetPayload().GetFields()["device_id"].GetStringValue() != dev {
		t.Errorf("notification: %v", &n)
	}

	var raised []*eventsv1.DeviceEventRaised
	end := int(kafkatest.EndOffset(t, s.brokers, "device.lifecycle"))
	for _, m := range kafkatest.ReadTopic(t, s.brokers, "device.lifecycle", end, 5*time.Second) {
		if m.Header("ce_type") != "comfortech.device.event.v1" {
			continue
		}
		var e eventsv1.DeviceEventRaised
		if _, err := kafka.DecodeEvent(&m, &e); err != nil {
			t.Fatal(err)
		}
		raised = append(raised, &e)
	}
	if len(raised) == 0 {
		t.Fatal("no DeviceEventRaised")
	}
	for _, e := range raised {
		if e.GetDeviceId() != dev || e.GetName() != "co_detected" || e.GetLevel() != "critical" || e.GetModel() != model ||
			e.GetData().GetFields()["ppm"].GetNumberValue() != 120 {
			t.Errorf("event: %v", e)
		}
	}
}
