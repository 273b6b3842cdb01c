package dynsec_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"

	"github.com/comfortech/platform/services/device/dynsec"
	"github.com/comfortech/platform/services/device/internal/mosquittotest"
	"github.com/comfortech/platform/services/device/internal/secret"
)

func connect(t *testing.T, url, id, pass string, h paho.MessageHandler) (paho.Client, error) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(id).SetPassword(pass).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetDefaultPublishHandler(h).SetProtocolVersion(4))
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

func must(t *testing.T, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("timed out")
	}
	if err := tok.Error(); err != nil {
		t.Fatal(err)
	}
}

func TestDynamicSecurity(t *testing.T) {
	t.Parallel()
	url := mosquittotest.Start(t, mosquittotest.Options{AdminPassword: "admin-pass"}).URL
	ctx := context.Background()
	ds, err := dynsec.Dial(ctx, dynsec.Config{Broker: url, Username: "admin", Password: "admin-pass"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)

	a, b := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	aSecret, bSecret := secret.New(), secret.New()
	for id, s := range map[string]string{a: aSecret, b: bSecret} {
		if err := ds.AddDevice(ctx, id, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := ds.AddDevice(ctx, a, aSecret); err != nil {
		t.Errorf("AddDevice again: %v", err)
	}

	// The admin account may subscribe to everything (dynsec init's role).
	got := make(chan string, 100)
	admin, err := connect(t, url, "admin", "admin-pass", func(_ paho.Client, m paho.Message) {
		got <- m.Topic() + " " + string(m.Payload())
	})
	if err != nil {
		t.Fatal(err)
	}
	must(t, admin.Subscribe("devices/#", 1, nil))

	if _, err := connect(t, url, a, bSecret, nil); err == nil {
		t.Error("wrong secret accepted")
	}
	devA, err := connect(t, url, a, aSecret, nil)
	if err != nil {
		t.Fatalf("device with its secret: %v", err)
	}
	devA.Publish("devices/"+b+"/telemetry", 1, false, "denied").WaitTimeout(2 * time.Second)
	devA.Publish("devices/"+a+"/state/desired", 1, false, "denied").WaitTimeout(2 * time.Second)
	must(t, devA.Publish("devices/"+a+"/telemetry", 1, false, "marker"))
	select {
	case m := <-got:
		if m != "devices/"+a+"/telemetry marker" {
			t.Errorf("admin received %q before the marker", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("admin did not receive the device's telemetry")
	}

	// B may not subscribe to A's subtree: once the admin has A's next
	// message, B must not have it.
	bGot := make(chan string, 10)
	devB, err := connect(t, url, b, bSecret, func(_ paho.Client, m paho.Message) { bGot <- m.Topic() })
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"devices/" + a + "/#", "devices/#", "devices/+/telemetry"} {
		devB.Subscribe(f, 1, nil).WaitTimeout(2 * time.Second)
	}
	must(t, devB.Subscribe("devices/"+b+"/commands/+", 1, nil))
	must(t, devA.Publish("devices/"+a+"/telemetry", 1, false, "second"))
	select {
	case m := <-got:
		if m != "devices/"+a+"/telemetry second" {
			t.Errorf("admin received %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("admin did not receive the device's second message")
	}
	select {
	case m := <-bGot:
		t.Errorf("B received %q from A's subtree", m)
	case <-time.After(200 * time.Millisecond):
	}

	// Revoke: the device is disconnected and refused.
	if err := ds.DisableDevice(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, url, a, aSecret, nil); err == nil {
		t.Error("disabled device connected")
	}
	// Rotate: the new secret works, the old does not.
	newSecret := secret.New()
	if err := ds.SetSecret(ctx, a, newSecret); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, url, a, aSecret, nil); err == nil {
		t.Error("old secret accepted after rotation")
	}
	if _, err := connect(t, url, a, newSecret, nil); err != nil {
		t.Errorf("new secret: %v", err)
	}
	// Remove: gone, and removing again is fine.
	if err := ds.RemoveDevice(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := ds.RemoveDevice(ctx, a); err != nil {
		t.Errorf("RemoveDevice again: %v", err)
	}
	if _, err := connect(t, url, a, newSecret, nil); err == nil {
		t.Error("removed device connected")
	}
	if err := ds.DisableDevice(ctx, a); !isNotFound(err) {
		t.Errorf("DisableDevice of a removed device: %v, want not found", err)
	}
}

func isNotFound(err error) bool {
	e, ok := err.(*dynsec.Error)
	return ok && e.NotFound()
}
