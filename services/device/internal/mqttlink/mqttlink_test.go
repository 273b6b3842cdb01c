package mqttlink_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.uber.org/zap/zaptest"

	"github.com/comfortech/platform/services/device/internal/mqttlink"
)

const dev = "0190c1a2-0000-7000-8000-000000000001"

func TestParse(t *testing.T) {
	t.Parallel()
	cid := "0190c1a2-0000-7000-8000-0000000000c1"
	cases := []struct {
		topic string
		kind  mqttlink.Kind
		ok    bool
	}{
		{"devices/" + dev + "/telemetry", mqttlink.KindTelemetry, true},
		{"devices/" + dev + "/state/reported", mqttlink.KindReported, true},
		{"devices/" + dev + "/status", mqttlink.KindStatus, true},
		{"devices/" + dev + "/events", mqttlink.KindEvent, true},
		{"devices/" + dev + "/commands/" + cid + "/result", mqttlink.KindCommandResult, true},
		{"devices/" + dev + "/commands/x/result", 0, false},
		{"devices/not-a-uuid/telemetry", 0, false},
		{"devices/" + dev + "/state/desired", 0, false},
		{"other/" + dev + "/telemetry", 0, false},
	}
	for _, c := range cases {
		m, ok := mqttlink.Parse(c.topic)
		if ok != c.ok || m.Kind != c.kind || (ok && m.DeviceID != dev) {
			t.Errorf("Parse(%q) = %+v, %v", c.topic, m, ok)
		}
	}
}

// startBroker runs an in-memory mochi broker that admits everyone.
func startBroker(t *testing.T) string {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr})); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { _ = srv.Close() })
	return "tcp://" + addr
}

// collector gathers what a link hands over, and acknowledges it unless
// told to hold the acknowledgements.
type collector struct {
	mu   sync.Mutex
	msgs []mqttlink.Message
	hold bool
}

func (c *collector) handle(m mqttlink.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
	if !c.hold {
		m.Ack()
	}
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dial(t *testing.T, url string, c *collector) *mqttlink.Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := mqttlink.Dial(ctx, mqttlink.Config{URL: url, Username: "svc", ClientID: "device-service-0",
		Handler: c.handle, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the link to subscribe", func() bool { return l.Check(ctx) == nil })
	return l
}

// TestLink checks delivery through the shared subscriptions, and that QoS
// 1 messages published while the service was away arrive when it comes
// back with the same client id (persistent session).
func TestLink(t *testing.T) {
	t.Parallel()
	url := startBroker(t)
	var c collector
	l := dial(t, url, &c)

	device := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(dev))
	if tok := device.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer device.Disconnect(0)
	pub := func(suffix, body string) {
		t.Helper()
		if tok := device.Publish("devices/"+dev+"/"+suffix, 1, false, body); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	pub("telemetry", `{"ts":1,"seq":1,"metrics":{"t":1}}`)
	pub("commands/0190c1a2-0000-7000-8000-0000000000c1/result", `{"status":"ok"}`)
	waitFor(t, "two messages", func() bool { return c.len() == 2 })
	if m := c.msgs[1]; m.Kind != mqttlink.KindCommandResult || m.DeviceID != dev || m.CommandID == "" {
		t.Errorf("result message: %+v", m)
	}

	// The service goes away; the broker keeps its session and queues.
	l.Close()
	for i := range 5 {
		pub("telemetry", fmt.Sprintf(`{"ts":1,"seq":%d,"metrics":{"t":1}}`, i+2))
	}
	var again collector
	l = dial(t, url, &again)
	defer l.Close()
	waitFor(t, "the messages queued while away", func() bool { return again.len() == 5 })
	if err := l.Publish(context.Background(), "devices/"+dev+"/state/desired", 1, true, []byte(`{"version":1}`)); err != nil {
		t.Fatal(err)
	}
}

// TestRedeliver: a message the handler leaves unacknowledged comes again
// after Redeliver reconnects, and one acknowledged late does not.
func TestRedeliver(t *testing.T) {
	t.Parallel()
	url := startBroker(t)
	c := &collector{hold: true}
	l := dial(t, url, c)
	defer l.Close()

	device := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(dev))
	if tok := device.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer device.Disconnect(0)
	for i := range 2 {
		body := fmt.Sprintf(`{"ts":1,"seq":%d,"metrics":{"t":1}}`, i+1)
		if tok := device.Publish("devices/"+dev+"/telemetry", 1, false, body); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	waitFor(t, "two messages", func() bool { return c.len() == 2 })
	c.mu.Lock()
	c.msgs[0].Ack() // the first is safe; the second is left to the broker
	c.hold = false
	c.mu.Unlock()

	l.Redeliver(10 * time.Millisecond)
	waitFor(t, "the unacknowledged message again", func() bool { return c.len() == 3 })
	time.Sleep(300 * time.Millisecond) // room for a wrong redelivery of the first
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) != 3 {
		t.Errorf("%d messages, want 3: the acknowledged one came again", len(c.msgs))
	}
	if got := string(c.msgs[2].Payload); got != string(c.msgs[1].Payload) {
		t.Errorf("delivered again: %s, want %s", got, c.msgs[1].Payload)
	}
}
