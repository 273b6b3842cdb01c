package mqttauth_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/comfortech/platform/services/device/brokerclient"
	"github.com/comfortech/platform/services/device/internal/app"
	"github.com/comfortech/platform/services/device/internal/grpcapi"
	"github.com/comfortech/platform/services/device/internal/store/sqlstore"
	"github.com/comfortech/platform/services/device/internal/store/storetest"
	"github.com/comfortech/platform/services/device/mqttauth"
)

const serviceUser, servicePass = "device-service", "service-secret"

// nopRegistry accepts every registration (the data service is not part
// of this test).
type nopRegistry struct{}

func (nopRegistry) RegisterDevice(context.Context, app.NewDevice) error { return nil }
func (nopRegistry) UnregisterDevice(context.Context, string) error      { return nil }

// stack is the device service's BrokerAuthService over gRPC and a mochi
// broker whose hook asks it through brokerclient.
type stack struct {
	app  *app.App
	addr string
}

func start(t *testing.T) *stack {
	t.Helper()
	st := sqlstore.New(storetest.OpenSQLite(t))
	a := app.New(st, nopRegistry{}, app.Config{})
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	grpcapi.Register(gs, a, app.NewCommands(st, st, nil, app.CommandsConfig{}),
		app.NewPresenceHistory(st, st, nil), zaptest.NewLogger(t))
	go func() { _ = gs.Serve(gl) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	srv := mqtt.New(&mqtt.Options{InlineClient: true})
	if err := srv.AddHook(mqttauth.New(mqttauth.Options{Authorizer: brokerclient.New(conn),
		ServiceUsername: serviceUser, ServicePassword: servicePass}), nil); err != nil {
		t.Fatal(err)
	}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ml.Addr().String()
	_ = ml.Close()
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &stack{app: a, addr: addr}
}

func connect(t *testing.T, addr, clientID, user, pass string) (paho.Client, error) {
	t.Helper()
	return connectTo(t, addr, clientID, user, pass, nil)
}

// connectTo connects with every received message going to h (paho would
// call a per-subscription handler once per matching filter).
func connectTo(t *testing.T, addr, clientID, user, pass string, h paho.MessageHandler) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().SetDefaultPublishHandler(h).
		AddBroker("tcp://" + addr).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).SetCleanSession(true)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// inbox collects the messages a client receives.
type inbox struct {
	mu  sync.Mutex
	got []string
	ch  chan string
}

func newInbox() *inbox { return &inbox{ch: make(chan string, 100)} }

func (b *inbox) handler(_ paho.Client, m paho.Message) {
	b.mu.Lock()
	b.got = append(b.got, m.Topic()+" "+string(m.Payload()))
	b.mu.Unlock()
	b.ch <- m.Topic() + " " + string(m.Payload())
}

// waitFor waits until msg arrives and returns everything received so far.
func (b *inbox) waitFor(t *testing.T, msg string) []string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-b.ch:
			if m == msg {
				b.mu.Lock()
				defer b.mu.Unlock()
				return append([]string(nil), b.got...)
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %q", msg)
		}
	}
}

func wait(t *testing.T, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("timed out")
	}
	if err := tok.Error(); err != nil {
		t.Fatal(err)
	}
}

func TestHook(t *testing.T) {
	t.Parallel()
	s := start(t)
	ctx := context.Background()
	a, err := s.app.Provision(ctx, app.ProvisionRequest{Serial: "SN-A001", Model: "ac-1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.app.Provision(ctx, app.ProvisionRequest{Serial: "SN-B001", Model: "ac-1"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("connect", func(t *testing.T) {
		cases := []struct {
			name                 string
			client, user, secret string
			ok                   bool
		}{
			{"right secret", a.DeviceID, a.DeviceID, a.Secret, true},
			{"wrong secret", a.DeviceID, a.DeviceID, b.Secret, false},
			{"another device's id", b.DeviceID, a.DeviceID, a.Secret, false},
			{"service account", "svc-1", serviceUser, servicePass, true},
			{"service account, wrong password", "svc-2", serviceUser, "nope", false},
			{"anonymous", "anon", "", "", false},
		}
		for _, c := range cases {
			_, err := connect(t, s.addr, c.client, c.user, c.secret)
			if (err == nil) != c.ok {
				t.Errorf("%s: connect error %v, want ok=%v", c.name, err, c.ok)
			}
		}
	})

	t.Run("topics", func(t *testing.T) {
		svcIn := newInbox()
		svc, err := connectTo(t, s.addr, "svc-topics", serviceUser, servicePass, svcIn.handler)
		if err != nil {
			t.Fatal(err)
		}
		wait(t, svc.Subscribe("devices/#", 1, nil))

		// A publishes outside its subtree, each time on a fresh connection
		// (a broker may drop a client for a denied publish), then a marker
		// in it: the marker arrives after anything published before it, and
		// nothing else may arrive.
		for i, topic := range []string{
			"devices/" + b.DeviceID + "/telemetry",
			"devices/" + a.DeviceID + "/state/desired",
			"devices/" + a.DeviceID + "/commands/c1",
			"devices/" + a.DeviceID + "/telemetry/x",
			"elsewhere/x",
		} {
			c, err := connect(t, s.addr, a.DeviceID, a.DeviceID, a.Secret)
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			c.Publish(topic, 1, false, "denied").WaitTimeout(2 * time.Second)
			c.Disconnect(50)
		}
		devA, err := connect(t, s.addr, a.DeviceID, a.DeviceID, a.Secret)
		if err != nil {
			t.Fatal(err)
		}
		wait(t, devA.Publish("devices/"+a.DeviceID+"/telemetry", 1, false, "marker"))
		if got := svcIn.waitFor(t, "devices/"+a.DeviceID+"/telemetry marker"); len(got) != 1 {
			t.Errorf("service received %q, want only the marker", got)
		}

		// B subscribes to A's commands and to a wildcard (denied) and to
		// its own (allowed); the service publishes to A, then to B.
		bIn := newInbox()
		devB, err := connectTo(t, s.addr, b.DeviceID, b.DeviceID, b.Secret, bIn.handler)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"devices/" + a.DeviceID + "/commands/+", "devices/#", "devices/" + b.DeviceID + "/#"} {
			devB.Subscribe(f, 1, nil).WaitTimeout(5 * time.Second)
		}
		wait(t, devB.Subscribe("devices/"+b.DeviceID+"/commands/+", 1, nil))
		wait(t, svc.Publish("devices/"+a.DeviceID+"/commands/c2", 1, false, "for A"))
		wait(t, svc.Publish("devices/"+b.DeviceID+"/telemetry", 1, false, "B telemetry"))
		wait(t, svc.Publish("devices/"+b.DeviceID+"/commands/c3", 1, false, "for B"))
		if got := bIn.waitFor(t, "devices/"+b.DeviceID+"/commands/c3 for B"); len(got) != 1 {
			t.Errorf("B received %q, want only its command", got)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		if err := s.app.RevokeSecret(ctx, b.DeviceID); err != nil {
			t.Fatal(err)
		}
		if _, err := connect(t, s.addr, b.DeviceID, b.DeviceID, b.Secret); err == nil {
			t.Error("revoked device connected")
		}
	})
}
