package simulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"go.uber.org/zap/zaptest"

	"github.com/comfortech/platform/services/device/simulator"
)

// startBroker starts an embedded mochi broker on a free port and returns
// its URL.
func startBroker(t testing.TB) string {
	t.Helper()
	// Warnings only: the broker would otherwise log every connection.
	s := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := s.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return "tcp://" + l.Address()
}

// observer is a plain paho client recording every message it sees.
type observer struct {
	c    mqtt.Client
	mu   sync.Mutex
	msgs []mqtt.Message
}

// observe connects an observer subscribed to filters.
func observe(t *testing.T, broker string, filters ...string) *observer {
	t.Helper()
	o := &observer{}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("observer-%d", time.Now().UnixNano())).
		SetOrderMatters(true)
	o.c = mqtt.NewClient(opts)
	if tok := o.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("observer connect: %v", tok.Error())
	}
	t.Cleanup(func() { o.c.Disconnect(0) })
	for _, f := range filters {
		tok := o.c.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) {
			o.mu.Lock()
			o.msgs = append(o.msgs, m)
			o.mu.Unlock()
		})
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	return o
}

// on returns the messages seen on topic.
func (o *observer) on(topic string) []mqtt.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []mqtt.Message
	for _, m := range o.msgs {
		if m.Topic() == topic {
			out = append(out, m)
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// publish sends a QoS 1 message from the observer.
func (o *observer) publish(t *testing.T, topic string, retained bool, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if tok := o.c.Publish(topic, 1, retained, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// creds returns n device credentials.
func creds(n int) []simulator.Credential {
	out := make([]simulator.Credential, n)
	for i := range out {
		out[i] = simulator.Credential{ID: fmt.Sprintf("dev-%04d", i), Secret: "s3cret", Serial: fmt.Sprintf("SN%06d", i), Model: "TH-100"}
	}
	out[n-1].Model = "AP-7 purifier"
	return out
}

// startFleet runs a fleet on broker until the test ends and waits until
// every device is connected.
func startFleet(t *testing.T, cfg simulator.Config) *simulator.Fleet {
	t.Helper()
	f, err := simulator.New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "all devices connected", 10*time.Second, func() bool { return f.Stats().Connected == len(cfg.Devices) })
	return f
}

func TestFleet(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	obs := observe(t, broker, "devices/+/telemetry", "devices/+/status", "devices/+/state/reported", "devices/+/commands/+/result")
	const n = 20
	f := startFleet(t, simulator.Config{Broker: broker, Devices: creds(n), Interval: 100 * time.Millisecond, ConnectRate: 500})

	t.Run("telemetry", func(t *testing.T) {
		time.Sleep(1500 * time.Millisecond)
		for _, id := range f.DeviceIDs() {
			msgs := obs.on(simulator.Topic(id, "telemetry"))
			if len(msgs) < 5 {
				t.Errorf("%s: %d telemetry messages in 1.5 s at 10/s, want ≥ 5", id, len(msgs))
				continue
			}
			var last uint64
			for _, m := range msgs {
				var tm simulator.Telemetry
				dec := json.NewDecoder(bytes.NewReader(m.Payload()))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&tm); err != nil {
					t.Fatalf("%s: %s: %v", id, m.Payload(), err)
				}
				if tm.Seq <= last {
					t.Errorf("%s: seq %d after %d", id, tm.Seq, last)
				}
				last = tm.Seq
				if d := time.Since(time.UnixMilli(tm.TS)); d < 0 || d > 10*time.Second {
					t.Errorf("%s: ts %d is %v from now", id, tm.TS, d)
				}
				for _, k := range []string{"temperature", "humidity", "power"} {
					if _, ok := tm.Metrics[k]; !ok {
						t.Errorf("%s: no %s in %s", id, k, m.Payload())
					}
				}
				if temp := tm.Metrics["temperature"]; temp < 5 || temp > 35 {
					t.Errorf("%s: temperature %v", id, temp)
				}
			}
			if st := obs.on(simulator.Topic(id, "status")); len(st) == 0 || string(st[len(st)-1].Payload()) != simulator.Online {
				t.Errorf("%s: no online status", id)
			}
		}
		if s := f.Stats(); s.Published == 0 || s.Acked == 0 {
			t.Errorf("stats %v", s)
		}
	})

	cmdCases := []struct {
		name, id, status string
		cmd              map[string]any
		want             map[string]any
	}{
		{"set target", "c-1", simulator.StatusOK,
			map[string]any{"name": "set_target_temperature", "params": map[string]any{"value": 23.5}, "expires_at": time.Now().Add(time.Minute).UnixMilli()},
			map[string]any{"target_temperature": 23.5}},
		{"set mode", "c-2", simulator.StatusOK,
			map[string]any{"name": "set_mode", "params": map[string]any{"mode": "cool"}},
			map[string]any{"mode": "cool"}},
		{"bad mode", "c-3", simulator.StatusError, map[string]any{"name": "set_mode", "params": map[string]any{"mode": "party"}}, nil},
		{"unknown", "c-4", simulator.StatusError, map[string]any{"name": "self_destruct"}, nil},
		{"reboot", "c-5", simulator.StatusOK, map[string]any{"name": "reboot"}, map[string]any{"rebooting": true}},
	}
	for i, tc := range cmdCases {
		t.Run("command "+tc.name, func(t *testing.T) {
			id := f.DeviceIDs()[i+1]
			obs.publish(t, simulator.Topic(id, "commands/"+tc.id), false, tc.cmd)
			topic := simulator.Topic(id, "commands/"+tc.id+"/result")
			waitFor(t, "result on "+topic, 5*time.Second, func() bool { return len(obs.on(topic)) > 0 })
			var res simulator.CommandResult
			if err := json.Unmarshal(obs.on(topic)[0].Payload(), &res); err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.status || (tc.status == simulator.StatusError) != (res.Error != "") {
				t.Fatalf("result %+v, want status %s", res, tc.status)
			}
			for k, v := range tc.want {
				if res.Result[k] != v {
					t.Errorf("result[%s] = %v, want %v", k, res.Result[k], v)
				}
			}
		})
	}

	t.Run("expired command", func(t *testing.T) {
		id := f.DeviceIDs()[10]
		before := f.Stats().CommandsExpired
		obs.publish(t, simulator.Topic(id, "commands/c-old"), false,
			map[string]any{"name": "set_target_temperature", "params": map[string]any{"value": 30}, "expires_at": time.Now().Add(-time.Second).UnixMilli()})
		waitFor(t, "expiry counted", 5*time.Second, func() bool { return f.Stats().CommandsExpired == before+1 })
		time.Sleep(200 * time.Millisecond)
		if r := obs.on(simulator.Topic(id, "commands/c-old/result")); len(r) > 0 {
			t.Errorf("expired command answered: %s", r[0].Payload())
		}
		for _, m := range obs.on(simulator.Topic(id, "state/reported")) {
			if strings.Contains(string(m.Payload()), `"target_temperature":30`) {
				t.Errorf("expired command applied: %s", m.Payload())
			}
		}
	})

	t.Run("desired state", func(t *testing.T) {
		id := f.DeviceIDs()[11]
		obs.publish(t, simulator.Topic(id, "state/desired"), true, map[string]any{"version": 3, "mode": "eco", "target_temperature": 19, "child_lock": true})
		topic := simulator.Topic(id, "state/reported")
		var got map[string]any
		waitFor(t, "reported version 3", 5*time.Second, func() bool {
			for _, m := range obs.on(topic) {
				var r map[string]any
				if json.Unmarshal(m.Payload(), &r) == nil && r["version"] == 3.0 {
					got = r
					return true
				}
			}
			return false
		})
		if got["mode"] != "eco" || got["target_temperature"] != 19.0 || got["child_lock"] != true {
			t.Errorf("reported %v", got)
		}
	})

	t.Run("drop abruptly: will fires", func(t *testing.T) {
		id := f.DeviceIDs()[12]
		if err := f.Drop(id, true, 0); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "offline status", 5*time.Second, func() bool {
			st := obs.on(simulator.Topic(id, "status"))
			return len(st) > 0 && string(st[len(st)-1].Payload()) == simulator.Offline
		})
		// A new subscriber sees the retained will.
		late := observe(t, broker, simulator.Topic(id, "status"))
		waitFor(t, "retained offline", 5*time.Second, func() bool {
			st := late.on(simulator.Topic(id, "status"))
			return len(st) == 1 && st[0].Retained() && string(st[0].Payload()) == simulator.Offline
		})
		if err := f.Reconnect(id); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "back online", 5*time.Second, func() bool {
			st := late.on(simulator.Topic(id, "status"))
			return string(st[len(st)-1].Payload()) == simulator.Online
		})
	})

	t.Run("drop cleanly", func(t *testing.T) {
		id := f.DeviceIDs()[13]
		if err := f.Drop(id, false, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		topic := simulator.Topic(id, "status")
		waitFor(t, "offline then online again", 5*time.Second, func() bool {
			st := obs.on(topic)
			n := len(st)
			return n >= 3 && string(st[n-2].Payload()) == simulator.Offline && string(st[n-1].Payload()) == simulator.Online
		})
	})

	if err := f.Drop("nope", true, 0); err == nil {
		t.Error("Drop of an unknown device succeeded")
	}
}

func TestFlappingFleet(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	obs := observe(t, broker, "devices/+/status", "devices/+/events")
	f := startFleet(t, simulator.Config{
		// Clean sessions: paho 1.5.1 races (go test -race) setting DUP on
		// in-flight messages it resumes from a persistent session.
		Broker: broker, Devices: creds(10), Rate: 100, ConnectRate: 1000, CleanSession: true,
		FlapProbability: 0.05, FlapDowntime: 100 * time.Millisecond, EventProbability: 0.1,
	})
	waitFor(t, "flaps and reconnections", 15*time.Second, func() bool {
		s := f.Stats()
		return s.Drops >= 3 && s.Connects >= 13 && s.Events > 0
	})
	obs.mu.Lock()
	defer obs.mu.Unlock()
	for _, m := range obs.msgs {
		if strings.HasSuffix(m.Topic(), "/events") {
			var e simulator.Event
			if err := json.Unmarshal(m.Payload(), &e); err != nil || e.Type == "" || e.Level == "" || e.TS == 0 {
				t.Errorf("event %s: %v", m.Payload(), err)
			}
		}
	}
}

func TestWrongSecretIsCounted(t *testing.T) {
	t.Parallel()
	s := mochi.New(nil)
	_ = s.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{Auth: auth.AuthRules{
		{Username: "dev-0000", Password: "s3cret", Allow: true},
	}}})
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	_ = s.AddListener(l)
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	cs := creds(2)
	cs[1].Secret = "wrong"
	f, err := simulator.New(simulator.Config{Broker: "tcp://" + l.Address(), Devices: cs, Interval: 50 * time.Millisecond}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.Run(ctx) }()
	waitFor(t, "one connected, one refused", 5*time.Second, func() bool {
		s := f.Stats()
		return s.Connected == 1 && s.ConnectFailures >= 1
	})
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	ok := creds(1)
	cases := []struct {
		name string
		cfg  simulator.Config
	}{
		{"no broker", simulator.Config{Devices: ok}},
		{"bad scheme", simulator.Config{Broker: "http://x:1", Devices: ok}},
		{"no devices", simulator.Config{Broker: "tcp://x:1"}},
		{"duplicate", simulator.Config{Broker: "tcp://x:1", Devices: append(creds(1), creds(1)...)}},
		{"wildcard id", simulator.Config{Broker: "tcp://x:1", Devices: []simulator.Credential{{ID: "a/+"}}}},
		{"jitter", simulator.Config{Broker: "tcp://x:1", Devices: ok, Jitter: 1}},
		{"probability", simulator.Config{Broker: "tcp://x:1", Devices: ok, FlapProbability: 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := simulator.New(tc.cfg, nil); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestLoadCredentials(t *testing.T) {
	t.Parallel()
	want := []simulator.Credential{{ID: "a", Secret: "x", Serial: "S1", Model: "TH"}, {ID: "b", Secret: "y"}}
	cases := map[string]string{
		"c.json":    `[{"id":"a","secret":"x","serial":"S1","model":"TH"},{"id":"b","secret":"y"}]`,
		"w.json":    `{"devices":[{"id":"a","secret":"x","serial":"S1","model":"TH"},{"id":"b","secret":"y"}]}`,
		"c.csv":     "secret,id,model,serial\nx,a,TH,S1\ny,b,,\n",
		"short.csv": "id,secret,serial,model\na,x,S1,TH\nb,y\n",
	}
	dir := t.TempDir()
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := simulator.LoadCredentials(p)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	bad := filepath.Join(dir, "bad.csv")
	_ = os.WriteFile(bad, []byte("name,password\n"), 0o600)
	if _, err := simulator.LoadCredentials(bad); err == nil {
		t.Error("CSV without id/secret columns accepted")
	}
}

// TestSaveCredentials writes credentials in each format, reads them back
// with LoadCredentials, and checks a second save never overwrites the
// secrets of the first.
func TestSaveCredentials(t *testing.T) {
	t.Parallel()
	want := []simulator.Credential{{ID: "a", Secret: "x,\"y", Serial: "S1", Model: "TH", ClaimCode: "PRINTED-1"}, {ID: "b", Secret: "z"}}
	dir := t.TempDir()
	for _, name := range []string{"creds.json", "creds.csv", "creds"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, name)
			if err := simulator.SaveCredentials(p, want); err != nil {
				t.Fatal(err)
			}
			got, err := simulator.LoadCredentials(p)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("read back %v, want %v", got, want)
			}
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("file mode: %v %v, want 0600", fi.Mode(), err)
			}
			if err := simulator.SaveCredentials(p, want[:1]); err == nil {
				t.Error("overwrote an existing credentials file")
			}
			if got, _ := simulator.LoadCredentials(p); len(got) != len(want) {
				t.Errorf("after a refused save the file holds %d devices, want %d", len(got), len(want))
			}
		})
	}
}
