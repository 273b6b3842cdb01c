package dynsec_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"

	"github.com/comfortech/platform/services/device/dynsec"
	"github.com/comfortech/platform/services/device/internal/secret"
)

const plugin = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"

// startMosquitto runs a real mosquitto with the dynamic-security plugin
// on a private port until t ends and returns its URL. A missing broker or
// plugin skips t, or fails it when CI=true.
func startMosquitto(t *testing.T, adminPass string) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/mosquitto"); statErr == nil {
			bin, err = "/usr/sbin/mosquitto", nil
		}
	}
	_, pluginErr := os.Stat(plugin)
	if err != nil || pluginErr != nil {
		msg := fmt.Sprintf("mosquitto or its dynamic-security plugin missing: %v %v", err, pluginErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	dsFile := filepath.Join(dir, "dynamic-security.json")
	if ctrl, err := exec.LookPath("mosquitto_ctrl"); err == nil {
		if out, err := exec.Command(ctrl, "dynsec", "init", dsFile, "admin", adminPass).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_ctrl dynsec init: %v: %s", err, out)
		}
	} else {
		t.Fatalf("mosquitto_ctrl missing: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("per_listener_settings false\nplugin %s\nplugin_opt_config_file %s\nlistener %d 127.0.0.1\nallow_anonymous false\npersistence false\n",
		plugin, dsFile, port)
	if os.Geteuid() == 0 {
		// Run as root, mosquitto would switch to user mosquitto, who cannot
		// read the test's temporary directory.
		body += "user root\n"
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	logFile, err := os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("mosquitto log:\n%s", b)
			}
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "tcp://" + addr
}

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
	url := startMosquitto(t, "admin-pass")
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
