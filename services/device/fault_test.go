package device_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/config"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	"github.com/comfortech/platform/libs/process"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data"
	"github.com/comfortech/platform/services/device"
)

// dataService is a data service that the test can stop and start again on
// the same address and database.
type dataService struct {
	t      *testing.T
	cfg    data.Config
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func (d *dataService) start(l net.Listener) {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan error, 1)
	ops := listen(d.t)
	go func() {
		d.done <- data.Run(ctx, d.cfg, zaptest.NewLogger(d.t).Named("data"),
			process.WithGRPCListener(l), process.WithOpsListener(ops))
	}()
}

func (d *dataService) stop() {
	d.t.Helper()
	d.cancel()
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

// TestTelemetryDataServiceOutage: the data service goes away for a few
// seconds while a device publishes telemetry; once it is back, every
// sample the broker accepted is in it.
func TestTelemetryDataServiceOutage(t *testing.T) {
	t.Parallel()
	idp := idptest.Start(t)
	cluster := kafkatest.NewCluster(t)
	s := &stack{idp: idp, brokers: cluster.ListenAddrs()}

	dataGRPC := listen(t)
	ds := &dataService{t: t, addr: dataGRPC.Addr().String(), cfg: data.Config{Auth: auth.Settings{Issuer: idp.Issuer()},
		DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "data.db"), KafkaBrokers: s.brokers,
		ClaimAttempts: 10, ClaimPeriod: time.Minute}}
	ds.start(dataGRPC)
	t.Cleanup(ds.stop)
	s.dataConn = dialGRPC(t, ds.addr)
	waitServing(t, s.dataConn)

	devGRPC, devOps := listen(t), listen(t)
	s.devOps = devOps.Addr().String()
	svcAuth := auth.Settings{Issuer: idp.Issuer(), ClientID: "comfortech-device",
		ClientSecret: config.Secret(idp.ClientSecret(t, "comfortech-device"))}
	s.mqttURL = startBroker(t, devGRPC.Addr().String(), svcAuth)
	cfg := device.Config{Auth: svcAuth, DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "device.db"),
		DataAddr: ds.addr, BrokerMode: device.BrokerEmbedded, KafkaBrokers: s.brokers,
		MQTT: device.MQTTConfig{URL: s.mqttURL, Username: serviceUser, Password: servicePass, ClientID: "device-service-test"},
		Telemetry: device.TelemetryConfig{MaxPayload: 64 << 10, BatchSize: 500, BatchWait: 20 * time.Millisecond,
			Buffer: 10000, EnqueueWait: time.Second},
	}
	run(t, "device.Run", func(ctx context.Context) error {
		return device.Run(ctx, cfg, zaptest.NewLogger(t).Named("device"),
			process.WithGRPCListener(devGRPC), process.WithOpsListener(devOps))
	})
	s.devConn = dialGRPC(t, devGRPC.Addr().String())
	waitServing(t, s.devConn)
	s.admin = as(idp.AdminLogin(t).AccessToken)
	if _, err := datav1.NewDeviceModelServiceClient(s.dataConn).PutDeviceModel(s.admin, &datav1.PutDeviceModelRequest{
		Model: &datav1.DeviceModel{Id: model, Title: "Thermostat"}}); err != nil {
		t.Fatal(err)
	}

	devs := s.provision(t, 1)
	ownerCtx := s.owner(t, "+79510000951", devs[0])
	raw := s.device(t, devs[0])
	topic := "devices/" + devs[0].ID + "/telemetry"
	begin := time.Now().Add(-time.Minute)

	// Every publish below is acknowledged by the broker (publish fails the
	// test otherwise): these are the samples that must not be lost.
	seq := 0
	send := func(n int) {
		for range n {
			seq++
			publish(t, raw, topic, []byte(fmt.Sprintf(`{"ts":%d,"seq":%d,"metrics":{"temperature":%d}}`,
				time.Now().UnixMilli(), seq, 20+seq%5)))
			time.Sleep(15 * time.Millisecond)
		}
	}
	send(50)
	ds.stop()
	for down := time.Now(); time.Since(down) < 3*time.Second; {
		send(1)
	}
	ds.restart()
	send(50)
	total := seq

	telemetry := datav1.NewTelemetryServiceClient(s.dataConn)
	got := map[int64]bool{}
	eventually(t, "every sample in the data service", 60*time.Second, func() bool {
		clear(got)
		req := &datav1.QueryTelemetryRequest{DeviceId: devs[0].ID, StartTime: timestamppb.New(begin),
			EndTime: timestamppb.New(time.Now().Add(time.Minute)), PageSize: 1000}
		r, err := telemetry.QueryTelemetry(ownerCtx, req)
		if err != nil {
			return false
		}
		for _, p := range r.GetItems() {
			got[p.GetSeq()] = true
		}
		return len(got) == total
	})
	for i := int64(1); i <= int64(total); i++ {
		if !got[i] {
			t.Errorf("sample %d lost", i)
		}
	}
}
