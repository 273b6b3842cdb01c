package dynsec_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
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
	m := mosquittotest.Start(t, mosquittotest.Options{AdminPassword: "admin-pass"})
	url := m.URL
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

	confined(t, m, "admin-pass", a, aSecret, b, bSecret)

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

// confined checks that devices a and b (with their secrets) connect only
// with their own secret and are confined to their own topics: a's
// publishes to b's subtree or to its own desired state are dropped, b
// cannot subscribe to a's subtree, and b receives what is published to
// its own filters. The broker's dynamic-security admin (password
// adminPass) sees everything; confined adds a service account that may
// publish anywhere.
func confined(t *testing.T, m *mosquittotest.Broker, adminPass, a, aSecret, b, bSecret string) {
	t.Helper()
	url := m.URL
	// The admin account may subscribe to everything (dynsec init's role).
	got := make(chan string, 100)
	admin, err := connect(t, url, "admin", adminPass, func(_ paho.Client, m paho.Message) {
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

	// B receives what the platform sends to its own filters.
	m.AddClient("confined-service", "service-pass")
	svc, err := connect(t, url, "confined-service", "service-pass", nil)
	if err != nil {
		t.Fatal(err)
	}
	must(t, devB.Subscribe("devices/"+b+"/state/desired", 1, nil))
	for _, topic := range []string{"devices/" + b + "/commands/c1", "devices/" + b + "/state/desired"} {
		must(t, svc.Publish(topic, 1, false, "for B"))
		select {
		case m := <-bGot:
			if m != topic {
				t.Errorf("B received %q, want %q", m, topic)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("B did not receive %s", topic)
		}
	}
}

// TestSeededDevices: devices written into the plugin's configuration file
// by mosquittotest.Seed (how the fleet benchmark puts 10,000 devices into
// Mosquitto) are what AddDevice creates: the plugin holds the same client
// and role for them as for a device added through its control topic, and
// they connect with their own secret only and are confined to their own
// topics.
func TestSeededDevices(t *testing.T) {
	t.Parallel()
	m := mosquittotest.Start(t, mosquittotest.Options{AdminPassword: "admin-pass"})
	a, b := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	aSecret, bSecret := secret.New(), secret.New()
	var devs []dynsec.Device
	for id, s := range map[string]string{a: aSecret, b: bSecret} {
		d, err := dynsec.NewDevice(id, s)
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
	}
	m.Stop()
	m.Seed(devs)
	m.Start()

	// After a change through the control topic the plugin saves all it
	// holds: the seeded devices as it loaded them beside the added one.
	ctx := context.Background()
	ds, err := dynsec.Dial(ctx, dynsec.Config{Broker: m.URL, Username: "admin", Password: "admin-pass"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	added := uuid.Must(uuid.NewV7()).String()
	if err := ds.AddDevice(ctx, added, secret.New()); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(m.SecurityFile())
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		Clients []map[string]any `json:"clients"`
		Roles   []map[string]any `json:"roles"`
	}
	if err := json.Unmarshal(body, &saved); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a, b} {
		for _, c := range []struct {
			list []map[string]any
			key  string
			name func(string) string
		}{
			{saved.Clients, "username", func(id string) string { return id }},
			{saved.Roles, "rolename", dynsec.RoleName},
		} {
			got, want := entry(t, c.list, c.key, c.name(id)), entry(t, c.list, c.key, c.name(added))
			// The same text but for the device id; the salted hashes differ.
			w, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			want = nil
			if err := json.Unmarshal([]byte(strings.ReplaceAll(string(w), added, id)), &want); err != nil {
				t.Fatal(err)
			}
			for _, m := range []map[string]any{got, want} {
				delete(m, "password")
				delete(m, "salt")
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("the plugin holds for seeded %s\n%v\nand for AddDevice's\n%v", c.key, got, want)
			}
		}
	}

	confined(t, m, "admin-pass", a, aSecret, b, bSecret)
}

// entry returns the element of list whose key is name.
func entry(t *testing.T, list []map[string]any, key, name string) map[string]any {
	t.Helper()
	for _, e := range list {
		if e[key] == name {
			return e
		}
	}
	t.Fatalf("no %s %s in the plugin's configuration", key, name)
	return nil
}

func isNotFound(err error) bool {
	e, ok := err.(*dynsec.Error)
	return ok && e.NotFound()
}
