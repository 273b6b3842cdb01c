package allinone_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/comfortech/platform/services/device/simulator"
	"github.com/comfortech/platform/services/device/simulator/provision"
)

// eventually polls cond every 100 ms until it holds or timeout passes;
// then it fails with what and cond's last state.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last: %s)", what, timeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// presenceOf reads a device's presence through the admin gateway.
func presenceOf(adminAPI call, token, deviceID string) (online bool, state string) {
	adminAPI.t.Helper()
	code, env := adminAPI.do(http.MethodGet, "/v1/fleet/devices/"+deviceID+"/presence", token, nil)
	if code != http.StatusOK {
		return false, string(env.Data) + " " + env.Error.Message
	}
	return decode[struct {
		Presence struct{ Online bool }
	}](adminAPI.t, env).Presence.Online, string(env.Data)
}

// TestSimulatorProvisions provisions a simulated fleet through the admin
// API as the simulator command does — logging the admin in, batches
// smaller than the fleet — saves and reloads its credentials, runs it
// against the platform's broker, and sees the telemetry acknowledged and
// every device online, then offline once the fleet stops.
func TestSimulatorProvisions(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	ctx := t.Context()
	authURL := "http://" + p.Addr("auth-gateway", "http")
	adminURL := "http://" + p.Addr("admin-gateway", "http")
	adminAPI := call{t, adminURL}

	if _, err := provision.Login(ctx, nil, authURL, "admin", "wrong-password"); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	user := call{t, authURL}.tokens("/v1/auth/register", map[string]string{"phone": "+79560000001", "password": "Comfort-2026"}).AccessToken
	_, err := (&provision.Client{AdminURL: adminURL, Token: user}).Provision(ctx, provision.Request{Count: 1})
	if apiErr, ok := errors.AsType[*provision.APIError](err); !ok || apiErr.Status != http.StatusForbidden {
		t.Fatalf("an app user provisioned: %v", err)
	}

	token, err := provision.Login(ctx, nil, authURL, "admin", p.AdminPassword.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	client := &provision.Client{AdminURL: adminURL, Token: token}
	creds, err := client.Provision(ctx, provision.Request{Count: 5, BatchSize: 2, SerialPrefix: "SIM-TEST"})
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 5 {
		t.Fatalf("provisioned %d devices, want 5", len(creds))
	}
	ids := map[string]bool{}
	for i, c := range creds {
		if c.ID == "" || c.Secret == "" || c.Model != provision.DefaultModel || c.Serial != fmt.Sprintf("SIM-TEST-%06d", i+1) {
			t.Fatalf("device %d: %+v", i, c)
		}
		ids[c.ID] = true
	}
	if len(ids) != len(creds) {
		t.Fatalf("device ids repeat: %v", ids)
	}
	// A second run with the same serials is refused whole, naming one.
	_, err = client.Provision(ctx, provision.Request{Count: 2, SerialPrefix: "SIM-TEST"})
	if apiErr, ok := errors.AsType[*provision.APIError](err); !ok || apiErr.Status != http.StatusConflict {
		t.Fatalf("provisioning the same serials again: %v", err)
	}

	file := filepath.Join(t.TempDir(), "fleet.json")
	if err := simulator.SaveCredentials(file, creds); err != nil {
		t.Fatal(err)
	}
	creds, err = simulator.LoadCredentials(file)
	if err != nil {
		t.Fatal(err)
	}
	fleet, err := simulator.New(simulator.Config{Broker: "tcp://" + p.Addr("mqtt", "mqtt"), Devices: creds,
		Interval: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fleetCtx, stopFleet := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fleet.Run(fleetCtx) }()
	stopped := false
	stopRun := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stopFleet()
		return <-done
	}
	defer func() { _ = stopRun() }()

	eventually(t, 20*time.Second, "the fleet connects and its telemetry is acknowledged", func() (bool, string) {
		s := fleet.Stats()
		return s.Connected == len(creds) && s.Acked >= uint64(2*len(creds)) && s.ConnectFailures == 0, s.String()
	})
	for _, c := range creds {
		eventually(t, 20*time.Second, c.ID+" online", func() (bool, string) { return presenceOf(adminAPI, token, c.ID) })
	}
	if err := stopRun(); err != nil {
		t.Fatal(err)
	}
	for _, c := range creds {
		eventually(t, 20*time.Second, c.ID+" offline after the fleet stopped", func() (bool, string) {
			online, state := presenceOf(adminAPI, token, c.ID)
			return !online, state
		})
	}
}
