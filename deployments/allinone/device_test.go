package allinone_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// mqttDevice is one way of being a device on the platform's MQTT link:
// the paho library, or the mosquitto command-line clients.
type mqttDevice interface {
	// publish sends payload on topic at QoS 1 and waits for the broker.
	publish(topic, payload string, retained bool) error
	// receive subscribes to filter at QoS 1 and returns, once the broker
	// has acknowledged the subscription, a function that waits up to
	// timeout for the first message. Nothing may be published between the
	// two calls: the command-line clients share the device's client id, so
	// a publish would take the session over.
	receive(filter string, timeout time.Duration) (wait func() (message, error), err error)
	// dropAbruptly closes the device's connection without DISCONNECT, so
	// that the broker publishes the last will: "offline", retained.
	dropAbruptly() error
	// refused connects as the device with secret and reports whether the
	// broker refused the connection as not authorised, with what the
	// client said.
	refused(secret string) (bool, string)
}

// message is one MQTT message a device received.
type message struct {
	topic, payload string
	// retained says the broker sent it from its retained store.
	retained bool
}

// pahoDevice is a device on one held paho connection, with its last will
// and "online" published as the protocol asks.
type pahoDevice struct {
	broker, id string
	client     paho.Client
	mu         sync.Mutex
	conn       net.Conn
}

// newPahoDevice connects device id with secret through paho.
func newPahoDevice(t testing.TB, broker, id, secret string) *pahoDevice {
	t.Helper()
	d := &pahoDevice{broker: broker, id: id}
	opts := d.options(secret).SetWill("devices/"+id+"/status", "offline", 1, true).
		SetCustomOpenConnectionFn(func(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
			c, err := net.DialTimeout("tcp", u.Host, o.ConnectTimeout)
			d.mu.Lock()
			d.conn = c
			d.mu.Unlock()
			return c, err
		})
	d.client = paho.NewClient(opts)
	if tok := d.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("paho device %s: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { d.client.Disconnect(0) })
	return d
}

func (d *pahoDevice) options(secret string) *paho.ClientOptions {
	return paho.NewClientOptions().AddBroker(d.broker).SetClientID(d.id).SetUsername(d.id).SetPassword(secret).
		SetProtocolVersion(4).SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetConnectRetry(false)
}

func (d *pahoDevice) publish(topic, payload string, retained bool) error {
	tok := d.client.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("publish %s: no acknowledgement", topic)
	}
	return tok.Error()
}

func (d *pahoDevice) receive(filter string, timeout time.Duration) (func() (message, error), error) {
	got := make(chan paho.Message, 1)
	tok := d.client.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		select {
		case got <- m:
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe %s: %v", filter, tok.Error())
	}
	return func() (message, error) {
		defer func() { d.client.Unsubscribe(filter).WaitTimeout(5 * time.Second) }()
		select {
		case m := <-got:
			return message{topic: m.Topic(), payload: string(m.Payload()), retained: m.Retained()}, nil
		case <-time.After(timeout):
			return message{}, fmt.Errorf("nothing on %s within %s", filter, timeout)
		}
	}, nil
}

func (d *pahoDevice) dropAbruptly() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return errors.New("not connected")
	}
	return d.conn.Close()
}

func (d *pahoDevice) refused(secret string) (bool, string) {
	c := paho.NewClient(d.options(secret))
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return false, "connect timed out"
	}
	err := tok.Error()
	if err == nil {
		c.Disconnect(0)
		return false, "connected"
	}
	return errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword), err.Error()
}

// cliDevice is a device driven by the Debian mosquitto_pub and
// mosquitto_sub clients, one connection per action.
type cliDevice struct {
	t                  testing.TB
	host, port, id, pw string
}

// newCLIDevice returns device id with secret on broker addr, or skips the
// test when the mosquitto clients are not installed.
func newCLIDevice(t testing.TB, addr, id, secret string) *cliDevice {
	t.Helper()
	for _, bin := range []string{"mosquitto_pub", "mosquitto_sub", "stdbuf"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (scripts/test-services.sh installs it): %v", bin, err)
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return &cliDevice{t: t, host: host, port: port, id: id, pw: secret}
}

// args are the connection arguments of every client run.
func (d *cliDevice) args(secret string, more ...string) []string {
	return append([]string{"-h", d.host, "-p", d.port, "-V", "mqttv311", "-i", d.id, "-u", d.id, "-P", secret, "-q", "1"}, more...)
}

// run runs a client to its end and returns its output with the error.
func (d *cliDevice) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", name, err, out)
	}
	return string(out), nil
}

func (d *cliDevice) publish(topic, payload string, retained bool) error {
	args := d.args(d.pw, "-t", topic, "-m", payload)
	if retained {
		args = append(args, "-r")
	}
	_, err := d.run("mosquitto_pub", args...)
	return err
}

func (d *cliDevice) receive(filter string, timeout time.Duration) (func() (message, error), error) {
	sub, err := d.subscribe(filter, "-C", "1")
	if err != nil {
		return nil, err
	}
	return func() (message, error) {
		defer sub.stop()
		select {
		case m, ok := <-sub.messages:
			if !ok {
				return message{}, fmt.Errorf("mosquitto_sub %s ended: %s", filter, sub.output())
			}
			return m, nil
		case <-time.After(timeout):
			return message{}, fmt.Errorf("nothing on %s within %s: %s", filter, timeout, sub.output())
		}
	}, nil
}

func (d *cliDevice) dropAbruptly() error {
	// A client that stays connected with the last will; SIGKILL closes its
	// socket without DISCONNECT.
	sub, err := d.subscribe("devices/"+d.id+"/state/desired",
		"--will-topic", "devices/"+d.id+"/status", "--will-payload", "offline", "--will-retain", "--will-qos", "1")
	if err != nil {
		return err
	}
	return sub.cmd.Process.Kill()
}

// cliSub is a running mosquitto_sub.
type cliSub struct {
	cmd *exec.Cmd
	// messages receives each message.
	messages chan message
	mu       sync.Mutex
	lines    []string
}

// subscribe starts mosquitto_sub on filter (with more arguments) and
// returns once the broker has granted the subscription, which -d prints:
// from then on no message on filter is missed.
func (d *cliDevice) subscribe(filter string, more ...string) (*cliSub, error) {
	s := &cliSub{messages: make(chan message, 16)}
	// stdbuf: mosquitto_sub flushes its output after messages but not
	// after the -d lines, which a pipe would otherwise hold back. It execs
	// mosquitto_sub, so killing it kills the client.
	s.cmd = exec.Command("stdbuf", append([]string{"-oL", "mosquitto_sub"}, d.args(d.pw, append([]string{"-d", "-v", "-t", filter}, more...)...)...)...)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	d.t.Cleanup(s.stop)
	granted := make(chan string, 1)
	go func() {
		defer close(s.messages)
		sc := bufio.NewScanner(stdout)
		retained := false
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.lines = append(s.lines, line)
			s.mu.Unlock()
			switch {
			case strings.HasPrefix(line, "Subscribed (mid: "):
				_, qos, _ := strings.Cut(line, "): ")
				granted <- qos
			case strings.Contains(line, " received PUBLISH ("):
				// -d: "Client x received PUBLISH (d0, q1, r1, m1, 'topic', ...)";
				// -v prints the message on the next line.
				retained = strings.Contains(line, ", r1, ")
			case strings.HasPrefix(line, "devices/"):
				topic, payload, _ := strings.Cut(line, " ")
				s.messages <- message{topic: topic, payload: payload, retained: retained}
			}
		}
	}()
	select {
	case qos := <-granted:
		if qos != "1" {
			s.stop()
			return nil, fmt.Errorf("mosquitto_sub %s: subscription refused (%s)", filter, qos)
		}
		return s, nil
	case <-time.After(10 * time.Second):
		s.stop()
		return nil, fmt.Errorf("mosquitto_sub %s: not subscribed within 10s: %s", filter, s.output())
	}
}

// stop ends the client if it still runs.
func (s *cliSub) stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// output is what the client printed so far.
func (s *cliSub) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

func (d *cliDevice) refused(secret string) (bool, string) {
	out, err := d.run("mosquitto_pub", d.args(secret, "-t", "devices/"+d.id+"/telemetry", "-m", `{"ts":0,"seq":0,"metrics":{}}`)...)
	if err == nil {
		return false, "connected: " + out
	}
	// mosquitto_pub exits with the CONNACK code: 4 bad user name or
	// password, 5 not authorised.
	var exit *exec.ExitError
	return errors.As(err, &exit) && (exit.ExitCode() == 4 || exit.ExitCode() == 5), err.Error()
}

// telemetryPoint is a point as the main gateway answers it.
type telemetryPoint struct {
	Seq     string             `json:"seq"`
	Metrics map[string]float64 `json:"metrics"`
}

// telemetry reads deviceID's points of the last hour through the main
// gateway.
func telemetry(api call, token, deviceID string) ([]telemetryPoint, string) {
	api.t.Helper()
	now := time.Now()
	q := url.Values{"start_time": {now.Add(-time.Hour).UTC().Format(time.RFC3339)}, "end_time": {now.Add(time.Minute).UTC().Format(time.RFC3339)}}
	code, env := api.do(http.MethodGet, "/v1/devices/"+deviceID+"/telemetry?"+q.Encode(), token, nil)
	if code != http.StatusOK {
		return nil, fmt.Sprintf("%d %+v", code, env.Error)
	}
	return decode[struct{ Items []telemetryPoint }](api.t, env).Items, string(env.Data)
}

// onlineAt reads deviceID's presence through the main gateway, both the
// device service's presence and the device's own view.
func onlineAt(api call, token, deviceID string) (presence, view bool, state string) {
	api.t.Helper()
	_, env := api.do(http.MethodGet, "/v1/devices/"+deviceID+"/presence", token, nil)
	presence = decode[struct{ Presence struct{ Online bool } }](api.t, env).Presence.Online
	_, env2 := api.do(http.MethodGet, "/v1/devices/"+deviceID, token, nil)
	view = decode[struct{ Device struct{ Online bool } }](api.t, env2).Device.Online
	return presence, view, string(env.Data) + " " + string(env2.Data)
}

// deviceLife drives one claimed device through the protocol, checking
// each effect through the main gateway as its owner sees it: online,
// telemetry, a command and its result, the desired state, the last will.
func deviceLife(t *testing.T, api call, owner string, dev mqttDevice, id, secret string) {
	base := "devices/" + id + "/"
	if refused, said := dev.refused(secret + "x"); !refused {
		t.Fatalf("a wrong secret was not refused at connect: %s", said)
	}

	if err := dev.publish(base+"status", "online", true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "online", func() (bool, string) {
		presence, view, state := onlineAt(api, owner, id)
		return presence && view, state
	})

	ts := time.Now().UnixMilli()
	for seq, temp := range []float64{21.5, 21.75} {
		msg := fmt.Sprintf(`{"ts":%d,"seq":%d,"metrics":{"temperature":%v,"humidity":40}}`, ts+int64(seq), seq+1, temp)
		if err := dev.publish(base+"telemetry", msg, false); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "telemetry through the main gateway", func() (bool, string) {
		points, state := telemetry(api, owner, id)
		return len(points) == 2 && points[0].Seq == "1" && points[1].Metrics["temperature"] == 21.75 && points[1].Metrics["humidity"] == 40, state
	})

	wait, err := dev.receive(base+"commands/+", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	code, env := api.do(http.MethodPost, "/v1/devices/"+id+"/commands", owner, map[string]any{"name": "set_mode", "params": map[string]any{"mode": "eco"}, "ttl": "60s"})
	if code != http.StatusOK {
		t.Fatalf("send command: %d %+v", code, env.Error)
	}
	cid := decode[struct{ Command struct{ ID string } }](t, env).Command.ID
	m, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	topic, payload := m.topic, m.payload
	var cmd struct {
		Name   string         `json:"name"`
		Params map[string]any `json:"params"`
	}
	if err := json.Unmarshal([]byte(payload), &cmd); err != nil || topic != base+"commands/"+cid || cmd.Name != "set_mode" || cmd.Params["mode"] != "eco" {
		t.Fatalf("command received on %s: %s (%v), want set_mode %s", topic, payload, err, cid)
	}
	if err := dev.publish(topic+"/result", `{"status":"ok","result":{"mode":"eco"}}`, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "command SUCCEEDED", func() (bool, string) {
		_, env := api.do(http.MethodGet, "/v1/devices/"+id+"/commands/"+cid, owner, nil)
		c := decode[struct {
			Command struct {
				Status string
				Result map[string]any
			}
		}](t, env).Command
		return c.Status == "COMMAND_STATUS_SUCCEEDED" && c.Result["mode"] == "eco", string(env.Data)
	})

	code, env = api.do(http.MethodPatch, "/v1/devices/"+id+"/state", owner, map[string]any{"desired": map[string]any{"target_temperature": 22.5}})
	if code != http.StatusOK {
		t.Fatalf("desired state: %d %+v", code, env.Error)
	}
	eventually(t, 20*time.Second, "the retained desired state", func() (bool, string) {
		wait, err := dev.receive(base+"state/desired", 5*time.Second)
		if err != nil {
			return false, err.Error()
		}
		m, err := wait()
		var doc map[string]any
		if err != nil || json.Unmarshal([]byte(m.payload), &doc) != nil {
			return false, fmt.Sprint(m, err)
		}
		return m.retained && doc["target_temperature"] == 22.5 && doc["version"] == 1.0, fmt.Sprint(m)
	})

	if err := dev.dropAbruptly(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "offline after the last will", func() (bool, string) {
		presence, view, state := onlineAt(api, owner, id)
		return !presence && !view, state
	})
}

// TestDeviceEndToEnd runs the device protocol against the running platform
// with real MQTT clients — paho, and the mosquitto command-line clients —
// from provisioning through the admin API and claiming by a user to
// telemetry, commands, desired state and presence as the user sees them
// through the main gateway; then checks that a device reaches nothing of
// another's.
func TestDeviceEndToEnd(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	api := call{t, "http://" + p.Addr("main-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	broker := p.Addr("mqtt", "mqtt")
	stamp := time.Now().UnixNano() % 1_000_000

	serials := []string{fmt.Sprintf("CT-E2E-%d-P", stamp), fmt.Sprintf("CT-E2E-%d-M", stamp)}
	code, env := adminAPI.do(http.MethodPost, "/v1/fleet/devices:batch-provision", adminToken(t, p, authAPI), map[string]any{
		"requests": []map[string]string{{"serial": serials[0], "model": "thermostat-t1"}, {"serial": serials[1], "model": "thermostat-t1"}}})
	if code != http.StatusOK {
		t.Fatalf("provision: %d %+v", code, env.Error)
	}
	devs := decode[struct{ Items []provisioned }](t, env).Items
	owner := newAppUser(t, authAPI, api, fmt.Sprintf("+7957%06d1", stamp))
	for i, d := range devs {
		checkProvisioned(t, d, serials[i])
		code, env := api.do(http.MethodPost, "/v1/devices:claim", owner.token, map[string]string{"serial": d.Serial, "claim_code": d.ClaimCode})
		if code != http.StatusOK {
			t.Fatalf("claim %s: %d %+v", d.Serial, code, env.Error)
		}
	}
	pahoDev, cliDev := devs[0], devs[1]

	t.Run("clients", func(t *testing.T) {
		t.Run("paho", func(t *testing.T) {
			t.Parallel()
			dev := newPahoDevice(t, "tcp://"+broker, pahoDev.DeviceID, pahoDev.Secret)
			deviceLife(t, call{t, api.base}, owner.token, dev, pahoDev.DeviceID, pahoDev.Secret)
		})
		t.Run("mosquitto-cli", func(t *testing.T) {
			t.Parallel()
			dev := newCLIDevice(t, broker, cliDev.DeviceID, cliDev.Secret)
			deviceLife(t, call{t, api.base}, owner.token, dev, cliDev.DeviceID, cliDev.Secret)
		})
	})

	t.Run("isolation", func(t *testing.T) {
		isolation(t, p.Addr("mqtt", "mqtt"), p.MQTTServiceUser, p.MQTTServicePassword.Reveal(), call{t, api.base}, owner.token, pahoDev, cliDev)
	})
}

// isolation checks by effect that rogue, a connected device, neither
// receives what is meant for victim, online meanwhile, nor publishes into
// victim's topics: rogue gets none of victim's command and desired state,
// an observer on the broker sees none of rogue's messages there, the
// platform ingests none and victim stays online — while victim gets its
// command and rogue's own telemetry, sent after, arrives.
func isolation(t *testing.T, broker, serviceUser, servicePassword string, api call, owner string, rogue, victim provisioned) {
	vbase := "devices/" + victim.DeviceID + "/"
	v := newPahoDevice(t, "tcp://"+broker, victim.DeviceID, victim.Secret)
	if err := v.publish(vbase+"status", "online", true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "victim online", func() (bool, string) {
		presence, view, state := onlineAt(api, owner, victim.DeviceID)
		return presence && view, state
	})

	var mu sync.Mutex
	var stolen, observed []string
	record := func(into *[]string) paho.MessageHandler {
		return func(_ paho.Client, m paho.Message) {
			mu.Lock()
			defer mu.Unlock()
			*into = append(*into, m.Topic()+" "+string(m.Payload()))
		}
	}
	// The observer is the device service's own account, which may read
	// every device's topics.
	observer := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(fmt.Sprintf("observer-%d", time.Now().UnixNano())).
		SetUsername(serviceUser).SetPassword(servicePassword).SetAutoReconnect(false))
	if tok := observer.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("observer: %v", tok.Error())
	}
	defer observer.Disconnect(0)
	if tok := observer.Subscribe(vbase+"#", 1, record(&observed)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("observer subscribe: %v", tok.Error())
	}

	// rogue tries every filter that would reach the victim and publishes
	// into its topics; the broker may refuse or drop the connection, so
	// nothing is asserted on its answers, only on what arrives.
	rc := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(rogue.DeviceID).
		SetUsername(rogue.DeviceID).SetPassword(rogue.Secret).SetAutoReconnect(false).SetDefaultPublishHandler(record(&stolen)))
	if tok := rc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("rogue connect: %v", tok.Error())
	}
	defer rc.Disconnect(0)
	for _, f := range []string{vbase + "commands/+", vbase + "state/desired", vbase + "#", "devices/+/commands/+", "#"} {
		rc.Subscribe(f, 1, record(&stolen)).WaitTimeout(5 * time.Second)
	}
	for _, m := range []struct{ topic, payload string }{
		{"telemetry", fmt.Sprintf(`{"ts":%d,"seq":4242,"metrics":{"intrusion":1}}`, time.Now().UnixMilli())},
		{"status", "offline"},
		{"state/reported", `{"intrusion":1}`},
	} {
		rc.Publish(vbase+m.topic, 1, m.topic == "status", m.payload).WaitTimeout(5 * time.Second)
	}

	// Traffic for the victim: a command, which the victim gets, and a new
	// desired state, which the observer sees.
	wait, err := v.receive(vbase+"commands/+", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	code, env := api.do(http.MethodPost, "/v1/devices/"+victim.DeviceID+"/commands", owner, map[string]any{"name": "reboot"})
	if code != http.StatusOK {
		t.Fatalf("command: %d %+v", code, env.Error)
	}
	if _, err := wait(); err != nil {
		t.Fatalf("the victim's command: %v", err)
	}
	code, env = api.do(http.MethodPatch, "/v1/devices/"+victim.DeviceID+"/state", owner, map[string]any{"desired": map[string]any{"mode": "away"}})
	if code != http.StatusOK {
		t.Fatalf("desired state: %d %+v", code, env.Error)
	}
	eventually(t, 20*time.Second, "observer sees the victim's new desired state", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(observed, "\n"), `"mode":"away"`), strings.Join(observed, "\n")
	})

	// The rogue's own telemetry, sent after its intrusions, is ingested.
	own := newPahoDevice(t, "tcp://"+broker, rogue.DeviceID, rogue.Secret)
	if err := own.publish("devices/"+rogue.DeviceID+"/telemetry", fmt.Sprintf(`{"ts":%d,"seq":99,"metrics":{"temperature":20}}`, time.Now().UnixMilli()), false); err != nil {
		t.Fatalf("rogue's own telemetry: %v", err)
	}
	eventually(t, 20*time.Second, "rogue's own telemetry ingested", func() (bool, string) {
		points, state := telemetry(api, owner, rogue.DeviceID)
		return len(points) > 0 && points[len(points)-1].Seq == "99", state
	})
	// A presence change commits after the debounce window (2 s): wait it
	// out before reading the victim's.
	time.Sleep(3 * time.Second)

	mu.Lock()
	defer mu.Unlock()
	if len(stolen) > 0 {
		t.Errorf("the rogue device received another device's messages: %q", stolen)
	}
	for _, m := range observed {
		if strings.Contains(m, "intrusion") || strings.HasSuffix(m, "/status offline") {
			t.Errorf("the broker passed on the rogue's publish: %s", m)
		}
	}
	points, _ := telemetry(api, owner, victim.DeviceID)
	for _, pt := range points {
		if _, ok := pt.Metrics["intrusion"]; ok || pt.Seq == "4242" {
			t.Errorf("the platform ingested the rogue's telemetry for the victim: %+v", pt)
		}
	}
	if presence, view, state := onlineAt(api, owner, victim.DeviceID); !presence || !view {
		t.Errorf("the rogue's status publish took the victim offline: %s", state)
	}
	code, env = api.do(http.MethodGet, "/v1/devices/"+victim.DeviceID+"/state", owner, nil)
	if code != http.StatusOK || strings.Contains(string(env.Data), "intrusion") {
		t.Errorf("the rogue's reported state reached the victim's: %d %s", code, env.Data)
	}
}
