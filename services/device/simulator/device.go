package simulator

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"
)

// Connection states of a virtual device.
const (
	stateOffline uint8 = iota
	stateConnecting
	stateConnected
	stateStopped
)

// Known device modes.
var modes = map[string]bool{"off": true, "heat": true, "cool": true, "auto": true, "eco": true, "fan": true}

// Bounds of target temperatures a device accepts, in °C.
const (
	minTarget = 5
	maxTarget = 35
)

// firmware is the version every virtual device reports.
const firmware = "sim-1.0.0"

// device is one virtual device. Its fields after mu are guarded by mu; it
// owns no goroutine: the fleet's workers call tick, paho's goroutines call
// the handlers.
type device struct {
	f      *Fleet
	cred   Credential
	client mqtt.Client
	topics topics

	// busy is set while a worker runs tick, so a slow device is skipped
	// rather than ticked twice at once.
	busy atomic.Bool
	// next and phased belong to the scheduler goroutine.
	next   time.Time
	phased bool

	mu            sync.Mutex
	state         uint8
	hold          bool      // stay offline until Reconnect
	offlineUntil  time.Time // earliest automatic reconnect
	failures      int       // consecutive failed connections
	connTok       mqtt.Token
	conn          *killableConn
	tearing       bool         // dropped abruptly; paho hasn't reported the loss yet
	pending       []mqtt.Token // unacknowledged telemetry
	rebootPending bool
	seq           uint64
	desiredVer    int64
	sim           climate
}

// topics are a device's topic names, built once.
type topics struct {
	prefix, telemetry, reported, status, events string
	subs                                        map[string]byte
}

// newTopics returns the topic names of device id.
func newTopics(id string) topics {
	p := "devices/" + id + "/"
	return topics{
		prefix: p, telemetry: p + "telemetry", reported: p + "state/reported",
		status: p + "status", events: p + "events",
		subs: map[string]byte{p + "commands/+": 1, p + "state/desired": 1},
	}
}

// climate is the simulated physical state of a device.
type climate struct {
	last       time.Time
	mode       string
	target     float64 // °C
	ambient    float64 // where the room drifts when the device is off
	temp       float64 // °C
	humidity   float64 // %RH
	purifier   bool
	pm25       float64 // µg/m³
	filterLife float64 // %
}

// newDevice builds device c of fleet f and its paho client.
func newDevice(f *Fleet, c Credential, dialer func(*device) mqtt.OpenConnectionFunc) *device {
	d := &device{f: f, cred: c, topics: newTopics(c.ID)}
	ambient := 16 + 4*rand.Float64()
	d.sim = climate{
		mode: "heat", target: 20 + float64(rand.IntN(5)), ambient: ambient,
		temp: ambient + rand.NormFloat64()*0.3, humidity: 35 + 15*rand.Float64(),
		purifier: strings.Contains(strings.ToLower(c.Model), "purifier"),
		pm25:     10 + 20*rand.Float64(), filterLife: 20 + 80*rand.Float64(),
	}
	if d.sim.purifier {
		d.sim.mode = "auto"
	}
	o := mqtt.NewClientOptions().
		AddBroker(f.cfg.Broker).
		SetClientID(c.ID).SetUsername(c.ID).SetPassword(c.Secret).
		SetProtocolVersion(4).
		SetCleanSession(f.cfg.CleanSession).
		SetKeepAlive(f.cfg.KeepAlive).
		SetAutoReconnect(false). // the fleet reconnects, rate-limited
		SetConnectRetry(false).
		SetConnectTimeout(10*time.Second).
		SetWriteTimeout(10*time.Second).
		SetBinaryWill(d.topics.status, []byte(Offline), 1, true).
		SetOnConnectHandler(d.onConnect).
		SetConnectionLostHandler(d.onConnectionLost).
		SetCustomOpenConnectionFn(dialer(d))
	d.client = mqtt.NewClient(o)
	return d
}

// tick advances the device by one period: it connects a device that is due
// to come back, reports connection failures, and publishes telemetry (or
// flaps, or reboots) when connected.
func (d *device) tick(now time.Time) {
	f := d.f
	d.mu.Lock()
	d.sweepLocked()
	switch d.state {
	case stateConnecting:
		if tok := d.connTok; tok != nil {
			select {
			case <-tok.Done():
				if err := tok.Error(); err != nil {
					d.connectFailedLocked(now, err)
				}
			default:
			}
		}
		d.mu.Unlock()
	case stateOffline:
		if d.hold || d.tearing || now.Before(d.offlineUntil) || !f.connLimit.Allow() {
			d.mu.Unlock()
			return
		}
		d.state = stateConnecting
		d.mu.Unlock()
		d.startConnect()
	case stateConnected:
		switch {
		case d.rebootPending:
			d.rebootPending = false
			d.mu.Unlock()
			d.drop(false, now.Add(f.cfg.RebootDowntime), false)
			return
		case f.cfg.FlapProbability > 0 && rand.Float64() < f.cfg.FlapProbability:
			d.mu.Unlock()
			d.drop(rand.IntN(2) == 0, now.Add(f.cfg.FlapDowntime), false)
			return
		case len(d.pending) >= f.cfg.MaxInflight:
			d.mu.Unlock()
			f.stats.skipped.Add(1)
			return
		}
		payload := d.sampleLocked(now)
		var event []byte
		if f.cfg.EventProbability > 0 && rand.Float64() < f.cfg.EventProbability {
			event = d.eventLocked(now)
		}
		d.mu.Unlock()
		tok := d.client.Publish(d.topics.telemetry, 1, false, payload)
		f.stats.published.Add(1)
		if event != nil {
			d.client.Publish(d.topics.events, 1, false, event)
			f.stats.events.Add(1)
		}
		d.mu.Lock()
		d.pending = append(d.pending, tok)
		d.mu.Unlock()
	default:
		d.mu.Unlock()
	}
}

// startConnect starts a connection attempt; the state must already be
// stateConnecting. Telemetry still unacknowledged from the previous
// connection is counted as lost.
func (d *device) startConnect() {
	d.mu.Lock()
	for _, t := range d.pending {
		d.countToken(t, true)
	}
	d.pending = d.pending[:0]
	d.mu.Unlock()
	tok := d.client.Connect()
	d.mu.Lock()
	d.connTok = tok
	d.mu.Unlock()
}

// connectFailedLocked schedules the next attempt with exponential backoff.
func (d *device) connectFailedLocked(now time.Time, err error) {
	d.state = stateOffline
	d.failures++
	d.offlineUntil = now.Add(backoff(d.failures))
	d.f.stats.connectFailures.Add(1)
	lvl := zap.DebugLevel
	if d.failures == 1 {
		lvl = zap.WarnLevel
	}
	d.f.log.Log(lvl, "device connect failed", zap.String("device_id", d.cred.ID), zap.Int("failures", d.failures), zap.Error(err))
}

// backoff returns the delay before attempt n+1: 1s doubling up to 30s, with
// ±50% jitter so a fleet that lost its broker doesn't return in lockstep.
func backoff(n int) time.Duration {
	b := time.Second << min(n-1, 5)
	b = min(b, 30*time.Second)
	return time.Duration(float64(b) * (0.5 + rand.Float64()))
}

// sweepLocked counts the telemetry acknowledgements that have arrived.
func (d *device) sweepLocked() {
	kept := d.pending[:0]
	for _, t := range d.pending {
		select {
		case <-t.Done():
			d.countToken(t, false)
		default:
			kept = append(kept, t)
		}
	}
	clear(d.pending[len(kept):])
	d.pending = kept
}

// countToken records the outcome of a telemetry publish; lost marks one
// abandoned unfinished.
func (d *device) countToken(t mqtt.Token, lost bool) {
	select {
	case <-t.Done():
		if t.Error() == nil {
			d.f.stats.acked.Add(1)
			return
		}
	default:
		if !lost {
			return
		}
	}
	d.f.stats.publishErrors.Add(1)
}

// onConnect runs on paho's goroutine once the broker accepts the device: it
// subscribes, announces presence and reports its state.
func (d *device) onConnect(c mqtt.Client) {
	d.mu.Lock()
	if d.state == stateStopped {
		d.mu.Unlock()
		c.Disconnect(0)
		return
	}
	d.state = stateConnected
	d.failures = 0
	report := d.fullReportLocked()
	d.mu.Unlock()
	d.f.connected.Add(1)
	d.f.stats.connects.Add(1)
	c.SubscribeMultiple(d.topics.subs, d.onMessage)
	c.Publish(d.topics.status, 1, true, Online)
	c.Publish(d.topics.reported, 1, false, report)
}

// onConnectionLost runs on paho's goroutine when the connection breaks
// without the fleet asking for it (broker restart, network): the device
// retries after a backoff.
func (d *device) onConnectionLost(_ mqtt.Client, err error) {
	d.mu.Lock()
	d.conn, d.tearing = nil, false
	was := d.state
	if was == stateConnected || was == stateConnecting {
		d.state = stateOffline
		d.failures++
		d.offlineUntil = time.Now().Add(backoff(d.failures))
	}
	d.mu.Unlock()
	if was == stateConnected {
		d.f.connected.Add(-1)
		d.f.stats.lost.Add(1)
		d.f.log.Debug("device connection lost", zap.String("device_id", d.cred.ID), zap.Error(err))
	}
}

// drop takes the device offline until until (or Reconnect when hold):
// abruptly (the socket closes without DISCONNECT, so the broker publishes
// the last will) or cleanly (the device publishes offline itself, then
// sends DISCONNECT).
func (d *device) drop(abrupt bool, until time.Time, hold bool) {
	d.mu.Lock()
	was := d.state
	if was == stateStopped {
		d.mu.Unlock()
		return
	}
	d.state, d.offlineUntil, d.hold = stateOffline, until, hold
	conn := d.conn
	abrupt = abrupt && conn != nil
	// paho reports the loss of a connection it had established, and only
	// then accepts Connect again.
	d.tearing = abrupt && was == stateConnected
	d.mu.Unlock()
	if was == stateOffline {
		return
	}
	if was == stateConnected {
		d.f.connected.Add(-1)
	}
	d.f.stats.drops.Add(1)
	if abrupt {
		conn.kill() // paho sees the loss; the broker fires the will
		return
	}
	if was == stateConnected {
		d.client.Publish(d.topics.status, 1, true, Offline).WaitTimeout(time.Second)
	}
	d.client.Disconnect(250)
}

// stop disconnects the device for good when the fleet stops.
func (d *device) stop() {
	d.mu.Lock()
	was := d.state
	d.state = stateStopped
	d.mu.Unlock()
	switch was {
	case stateConnected:
		d.f.connected.Add(-1)
		d.client.Publish(d.topics.status, 1, true, Offline).WaitTimeout(time.Second)
		d.client.Disconnect(250)
	case stateConnecting:
		d.client.Disconnect(0)
	}
}

// onMessage handles commands and desired state, on paho's goroutine.
func (d *device) onMessage(c mqtt.Client, m mqtt.Message) {
	suffix, ok := strings.CutPrefix(m.Topic(), d.topics.prefix)
	if !ok {
		return
	}
	switch {
	case suffix == "state/desired":
		d.onDesired(c, m.Payload())
	case strings.HasPrefix(suffix, "commands/"):
		id := strings.TrimPrefix(suffix, "commands/")
		if id != "" && !strings.Contains(id, "/") {
			d.onCommand(c, id, m.Payload())
		}
	}
}

// onCommand executes command id and publishes its result; a command past
// its expires_at is dropped without an answer, as the platform has already
// marked it expired.
func (d *device) onCommand(c mqtt.Client, id string, payload []byte) {
	f := d.f
	f.stats.commandsReceived.Add(1)
	res := CommandResult{Status: StatusOK}
	var cmd Command
	if err := json.Unmarshal(payload, &cmd); err != nil || cmd.Name == "" {
		res = CommandResult{Status: StatusError, Error: "malformed command"}
	} else if exp, err := cmd.Expiry(); err != nil {
		res = CommandResult{Status: StatusError, Error: err.Error()}
	} else if !exp.IsZero() && time.Now().After(exp) {
		f.stats.commandsExpired.Add(1)
		f.log.Debug("expired command dropped", zap.String("device_id", d.cred.ID), zap.String("command_id", id), zap.String("name", cmd.Name))
		return
	} else {
		result, report, err := d.execute(cmd)
		if err != nil {
			res = CommandResult{Status: StatusError, Error: err.Error()}
		} else {
			res.Result = result
		}
		if report != nil {
			c.Publish(d.topics.reported, 1, false, report)
		}
	}
	b, _ := json.Marshal(res)
	c.Publish(d.topics.prefix+"commands/"+id+"/result", 1, false, b)
	f.stats.commandsAnswered.Add(1)
}

// execute applies a known command to the simulated state and returns its
// result and, when state changed, the state/reported document to send.
func (d *device) execute(cmd Command) (map[string]any, []byte, error) {
	var p map[string]any
	if len(cmd.Params) > 0 && string(cmd.Params) != "null" {
		if err := json.Unmarshal(cmd.Params, &p); err != nil {
			return nil, nil, fmt.Errorf("params: want an object")
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch cmd.Name {
	case "reboot":
		d.rebootPending = true
		return map[string]any{"rebooting": true, "downtime_ms": d.f.cfg.RebootDowntime.Milliseconds()}, nil, nil
	case "set_mode":
		m, _ := p["mode"].(string)
		if !modes[m] {
			return nil, nil, fmt.Errorf("params.mode: want one of off, heat, cool, auto, eco, fan")
		}
		d.sim.mode = m
		r := map[string]any{"mode": m}
		return r, mustJSON(r), nil
	case "set_target_temperature":
		v, ok := firstNumber(p, "value", "target_temperature", "temperature")
		if !ok || v < minTarget || v > maxTarget {
			return nil, nil, fmt.Errorf("params.value: want a temperature between %d and %d °C", minTarget, maxTarget)
		}
		d.sim.target = v
		r := map[string]any{"target_temperature": v}
		return r, mustJSON(r), nil
	default:
		return nil, nil, fmt.Errorf("unknown command %q", cmd.Name)
	}
}

// onDesired applies a desired-state document newer than the last one applied
// and reports the keys it applied, with the document's version. Keys the
// device doesn't model are acknowledged as they are; invalid values of the
// keys it does model are left out of the report.
func (d *device) onDesired(c mqtt.Client, payload []byte) {
	var doc map[string]any
	if err := json.Unmarshal(payload, &doc); err != nil || doc == nil {
		d.f.log.Debug("malformed desired state", zap.String("device_id", d.cred.ID))
		return
	}
	ver, hasVer := firstNumber(doc, "version")
	d.mu.Lock()
	if hasVer && int64(ver) <= d.desiredVer {
		d.mu.Unlock()
		return // redelivered retained document, already applied
	}
	if hasVer {
		d.desiredVer = int64(ver)
	}
	applied := make(map[string]any, len(doc))
	for k, v := range doc {
		switch k {
		case "version":
			applied[k] = int64(ver)
		case "mode":
			if m, ok := v.(string); ok && modes[m] {
				d.sim.mode, applied[k] = m, m
			}
		case "target_temperature":
			if t, ok := v.(float64); ok && t >= minTarget && t <= maxTarget {
				d.sim.target, applied[k] = t, t
			}
		default:
			applied[k] = v
		}
	}
	d.mu.Unlock()
	c.Publish(d.topics.reported, 1, false, mustJSON(applied))
	d.f.stats.desiredApplied.Add(1)
}

// fullReportLocked is the state a device reports when it (re)connects.
func (d *device) fullReportLocked() []byte {
	r := map[string]any{
		"mode": d.sim.mode, "target_temperature": round(d.sim.target, 1),
		"firmware": firmware, "model": d.cred.Model, "serial": d.cred.Serial,
	}
	if d.desiredVer > 0 {
		r["version"] = d.desiredVer
	}
	return mustJSON(r)
}

// sampleLocked advances the climate model to now and encodes a telemetry
// sample: the temperature relaxes toward the target (toward the room's
// ambient when off) with a 10-minute time constant plus sensor noise,
// humidity wanders around 45 %, power follows how hard the device works.
func (d *device) sampleLocked(now time.Time) []byte {
	s := &d.sim
	dt := 0.0
	if !s.last.IsZero() {
		dt = now.Sub(s.last).Seconds()
	}
	s.last = now
	goal := s.target
	if s.mode == "off" || s.mode == "fan" {
		goal = s.ambient
	}
	s.temp += (goal - s.temp) * (1 - math.Exp(-dt/600))
	temp := s.temp + rand.NormFloat64()*0.05
	s.humidity += (45-s.humidity)*(1-math.Exp(-dt/3600)) + rand.NormFloat64()*0.2
	s.humidity = min(max(s.humidity, 15), 90)
	power := 0.5
	if s.mode != "off" {
		power = 2 + 1500*min(math.Abs(goal-s.temp)/3, 1) + rand.NormFloat64()*3
		if s.mode == "eco" {
			power *= 0.6
		}
		power = max(power, 1)
	}
	d.seq++
	b := make([]byte, 0, 160)
	b = append(b, `{"ts":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, d.seq, 10)
	b = append(b, `,"metrics":{"temperature":`...)
	b = strconv.AppendFloat(b, round(temp, 2), 'f', -1, 64)
	b = append(b, `,"humidity":`...)
	b = strconv.AppendFloat(b, round(s.humidity, 1), 'f', -1, 64)
	b = append(b, `,"power":`...)
	b = strconv.AppendFloat(b, round(power, 1), 'f', -1, 64)
	if s.purifier {
		s.pm25 += rand.NormFloat64() * 1.5
		if s.mode != "off" {
			s.pm25 -= s.pm25 * (1 - math.Exp(-dt/900))
		}
		s.pm25 = min(max(s.pm25, 1), 300)
		s.filterLife = max(s.filterLife-dt/36000, 0)
		b = append(b, `,"pm25":`...)
		b = strconv.AppendFloat(b, round(s.pm25, 1), 'f', -1, 64)
		b = append(b, `,"filter_life":`...)
		b = strconv.AppendFloat(b, round(s.filterLife, 1), 'f', -1, 64)
	}
	return append(b, "}}"...)
}

// Alarms a device may raise, with their notification levels.
var alarms = []Event{
	{Type: "filter_change", Level: "warning", Message: "filter needs replacing"},
	{Type: "fault", Level: "error", Message: "heating element fault (E12)"},
	{Type: "co_detected", Level: "critical", Message: "carbon monoxide detected"},
}

// eventLocked encodes a random alarm.
func (d *device) eventLocked(now time.Time) []byte {
	e := alarms[rand.IntN(len(alarms))]
	if d.sim.purifier && rand.IntN(2) == 0 {
		e = alarms[0]
	}
	e.TS = now.UnixMilli()
	return mustJSON(e)
}

// firstNumber returns the first of keys in m holding a JSON number.
func firstNumber(m map[string]any, keys ...string) (float64, bool) {
	for _, k := range keys {
		if v, ok := m[k].(float64); ok {
			return v, true
		}
	}
	return 0, false
}

// round rounds x to n decimals.
func round(x float64, n int) float64 {
	p := math.Pow10(n)
	return math.Round(x*p) / p
}

// mustJSON encodes v, which is always encodable here.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
