package device_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/device"
)

// TestTelemetryDataServiceOutage: the data service goes away for a few
// seconds while a device publishes telemetry and reports its state.
// Telemetry keeps reaching Kafka meanwhile (the state report waiting for
// the data service does not hold it up); once the data service is back,
// every sample the broker accepted and the reported state are in it.
func TestTelemetryDataServiceOutage(t *testing.T) {
	t.Parallel()
	s := start(t, nil)

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
	s.data.stop()
	publish(t, raw, "devices/"+devs[0].ID+"/state/reported", []byte(`{"mode":"eco"}`))
	for down := time.Now(); time.Since(down) < 3*time.Second; {
		send(1)
	}
	if !hasSeq(t, s, int64(seq)) {
		t.Errorf("sample %d, sent while the data service is away, is not in device.telemetry", seq)
	}
	s.data.restart()
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
	eventually(t, "the state reported during the outage", 60*time.Second, func() bool {
		r, err := datav1.NewDeviceStateServiceClient(s.dataConn).GetDeviceState(ownerCtx,
			&datav1.GetDeviceStateRequest{DeviceId: devs[0].ID})
		return err == nil && r.GetState().GetReported().GetState().GetFields()["mode"].GetStringValue() == "eco"
	})
	for i := int64(1); i <= int64(total); i++ {
		if !got[i] {
			t.Errorf("sample %d lost", i)
		}
	}
}

// TestBrokerRestart: Mosquitto (with persistence) restarts while a device
// publishes QoS 1 telemetry. The service reconnects and subscribes again,
// and every sample the broker acknowledged to the device before it stopped
// or after the service was back reaches device.telemetry — including those
// the service had received but not yet acknowledged, which the broker
// delivers again from the persistent session.
//
// Mosquitto 2.0 does not restore shared subscriptions from its
// persistence file: what devices publish between the restart and the
// service's new SUBSCRIBE has no subscriber and is dropped by the broker.
// Those samples are counted and logged, not checked.
func TestBrokerRestart(t *testing.T) {
	t.Parallel()
	const adminPass = "dynsec-admin-secret"
	m := startMosquitto(t, adminPass, true)
	s := start(t, func(c *device.Config) {
		c.BrokerMode = device.BrokerMosquitto
		c.Mosquitto = device.MosquittoConfig{URL: m.URL, Username: "admin", Password: adminPass}
		c.MQTT.URL = m.URL
	})
	d := s.provision(t, 1)[0]
	dev := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL).SetClientID(d.ID).SetUsername(d.ID).SetPassword(d.Secret).
		SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond))
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	t.Cleanup(func() { dev.Disconnect(0) })

	// The device publishes until told to stop; acked holds when the broker
	// acknowledged each sample.
	var (
		mu    sync.Mutex
		acked = map[int64]time.Time{}
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for seq := int64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			tok := dev.Publish("devices/"+d.ID+"/telemetry", 1, false,
				fmt.Appendf(nil, `{"ts":%d,"seq":%d,"metrics":{"temperature":21}}`, time.Now().UnixMilli(), seq))
			if tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
				mu.Lock()
				acked[seq] = time.Now()
				mu.Unlock()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	eventually(t, "samples before the restart", 10*time.Second, func() bool { return count() >= 200 })
	stoppedAt := time.Now()
	m.Stop()
	time.Sleep(300 * time.Millisecond)
	m.Start()
	eventually(t, "the service subscribed again", 20*time.Second, func() bool { return ready(s.devOps) })
	backAt := time.Now()
	before := count()
	eventually(t, "samples after the restart", 20*time.Second, func() bool { return count() >= before+200 })
	close(stop)
	<-done

	mu.Lock()
	defer mu.Unlock()
	var gap int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got := telemetrySeqs(t, s)
		var missing []int64
		gap = 0
		for seq, at := range acked {
			switch {
			case at.After(stoppedAt) && at.Before(backAt):
				gap++
			case !got[seq]:
				missing = append(missing, seq)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			slices.Sort(missing)
			t.Fatalf("%d of %d samples the broker acknowledged are not in device.telemetry: %v", len(missing), len(acked), missing)
		}
	}
	t.Logf("%d samples acknowledged by the broker: all in Kafka but %d published while the service was not subscribed yet",
		len(acked), gap)
}

// hasSeq says whether device.telemetry holds a sample numbered seq,
// waiting a few seconds for it.
func hasSeq(t *testing.T, s *stack, seq int64) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if telemetrySeqs(t, s)[seq] {
			return true
		}
	}
	return false
}

// telemetrySeqs returns the seqs of the samples on device.telemetry so far.
func telemetrySeqs(t *testing.T, s *stack) map[int64]bool {
	t.Helper()
	got := map[int64]bool{}
	n := int(kafkatest.EndOffset(t, s.brokers, "device.telemetry"))
	for _, msg := range kafkatest.ReadTopic(t, s.brokers, "device.telemetry", n, 10*time.Second) {
		var e eventsv1.TelemetryReported
		if _, err := kafka.DecodeEvent(&msg, &e); err != nil {
			t.Fatal(err)
		}
		for _, smp := range e.GetSamples() {
			got[smp.GetSeq()] = true
		}
	}
	return got
}

// ready says whether the ops listener at addr answers /readyz with 200.
func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
