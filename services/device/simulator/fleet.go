// Package simulator runs a fleet of virtual devices that speak the device
// protocol of proto/asyncapi.yaml (ARCHITECTURE §6) over MQTT 3.1.1, for the
// demo, end-to-end tests and benchmarks.
//
// Each device logs in with client id = username = its id and its secret,
// leaves a retained last will "offline" on devices/{id}/status and publishes
// "online" there, publishes telemetry (QoS 1) every period with jitter,
// answers commands on devices/{id}/commands/{cid}/result, applies retained
// desired state and reports it on state/reported, raises alarms on events,
// and can drop offline — abruptly, so the will fires, or cleanly — and come
// back, on demand or at random.
//
// Cost per device: one paho client — its connection and paho's own reader,
// writer, router and keepalive goroutines — and a few hundred bytes of
// simulator state. BenchmarkFleetMemory measured about 146 KB of heap and
// stacks and 12 goroutines per connected device with the in-process mochi
// broker's share included. The simulator itself adds no goroutine per
// device: one scheduler goroutine orders all devices by their next period in
// a heap and a fixed pool of workers publishes, so 10,000 devices cost the
// simulator the same handful of goroutines as 10. Connections,
// first and re-, are bounded by Config.ConnectRate.
package simulator

import (
	"container/heap"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/comfortech/platform/services/device/internal/mqttconn"
)

// ErrUnknownDevice is returned for a device id that isn't in the fleet.
var ErrUnknownDevice = errors.New("simulator: unknown device")

// Fleet is a set of virtual devices. Build it with New, run it with Run.
type Fleet struct {
	cfg       Config
	log       *zap.Logger
	devices   []*device
	byID      map[string]*device
	connLimit *rate.Limiter
	tlsConfig *tls.Config
	running   atomic.Bool
	connected atomic.Int64
	stats     counters
}

// counters are the fleet's running totals.
type counters struct {
	connects, connectFailures, lost, drops                              atomic.Uint64
	published, acked, publishErrors, skipped, events                    atomic.Uint64
	commandsReceived, commandsAnswered, commandsExpired, desiredApplied atomic.Uint64
}

// Stats is a snapshot of a fleet's activity since New. Its JSON form has
// snake_case names, for tools that print it.
type Stats struct {
	// Devices is the fleet size; Connected how many are connected now.
	Devices   int `json:"devices"`
	Connected int `json:"connected"`
	// Connects counts accepted connections, ConnectFailures refused or
	// failed attempts, Lost connections broken from outside, Drops the
	// devices taken offline by the simulator (flaps, reboots, Drop).
	Connects        uint64 `json:"connects"`
	ConnectFailures uint64 `json:"connect_failures"`
	Lost            uint64 `json:"lost"`
	Drops           uint64 `json:"drops"`
	// Published counts telemetry messages sent, Acked those the broker
	// acknowledged (counted lazily, at each device's next period and when
	// Run ends), PublishErrors those that failed or were abandoned on a
	// lost connection, Skipped the periods a device skipped because
	// MaxInflight messages were unacknowledged.
	Published     uint64 `json:"published"`
	Acked         uint64 `json:"acked"`
	PublishErrors uint64 `json:"publish_errors"`
	Skipped       uint64 `json:"skipped"`
	// Events counts alarms published.
	Events uint64 `json:"events"`
	// CommandsReceived counts commands received, CommandsAnswered results
	// published, CommandsExpired commands dropped past their expires_at.
	CommandsReceived uint64 `json:"commands_received"`
	CommandsAnswered uint64 `json:"commands_answered"`
	CommandsExpired  uint64 `json:"commands_expired"`
	// DesiredApplied counts desired-state documents applied and reported.
	DesiredApplied uint64 `json:"desired_applied"`
}

// String formats s on one line for logs and consoles.
func (s Stats) String() string {
	return fmt.Sprintf("connected %d/%d, published %d, acked %d, errors %d, skipped %d, events %d, commands %d/%d (expired %d), desired %d, connects %d (failed %d, lost %d, dropped %d)",
		s.Connected, s.Devices, s.Published, s.Acked, s.PublishErrors, s.Skipped, s.Events,
		s.CommandsAnswered, s.CommandsReceived, s.CommandsExpired, s.DesiredApplied,
		s.Connects, s.ConnectFailures, s.Lost, s.Drops)
}

// New validates cfg and builds a fleet with one (not yet connected) paho
// client per device.
func New(cfg Config, log *zap.Logger) (*Fleet, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	burst := max(1, int(cfg.ConnectRate/10))
	f := &Fleet{
		cfg: cfg, log: log,
		devices:   make([]*device, len(cfg.Devices)),
		byID:      make(map[string]*device, len(cfg.Devices)),
		connLimit: rate.NewLimiter(rate.Limit(cfg.ConnectRate), burst),
		tlsConfig: cfg.TLS,
	}
	for i, c := range cfg.Devices {
		d := newDevice(f, c, f.dialer)
		f.devices[i], f.byID[c.ID] = d, d
	}
	return f, nil
}

// readBuffer is each device's read buffer: a device receives only
// acknowledgements, commands and its desired state.
const readBuffer = 1 << 10

// dialer returns the function paho uses to open d's connection. The fleet
// dials itself so it holds the socket and can drop it without DISCONNECT,
// which is what makes the broker publish the last will.
func (f *Fleet) dialer(d *device) mqtt.OpenConnectionFunc {
	return func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
		c, err := mqttconn.Dial(u, o.ConnectTimeout, f.tlsConfig, readBuffer)
		if err != nil {
			return nil, err
		}
		kc := &killableConn{Conn: c}
		d.mu.Lock()
		d.conn = kc
		d.mu.Unlock()
		return kc, nil
	}
}

// errDropped is what a dropped connection's reads and writes return.
var errDropped = errors.New("simulator: connection dropped")

// killableConn is a connection the simulator can break as a network would.
// paho takes "use of closed network connection" for its own doing and
// doesn't report the loss, so after kill reads and writes fail with
// errDropped instead.
type killableConn struct {
	net.Conn
	killed atomic.Bool
}

// kill closes the socket without DISCONNECT.
func (c *killableConn) kill() {
	c.killed.Store(true)
	_ = c.Conn.Close()
}

// Read implements net.Conn.
func (c *killableConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.killed.Load() {
		err = errDropped
	}
	return n, err
}

// Write implements net.Conn.
func (c *killableConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && c.killed.Load() {
		err = errDropped
	}
	return n, err
}

// Stats returns a snapshot of the fleet's counters.
func (f *Fleet) Stats() Stats {
	s := &f.stats
	return Stats{
		Devices: len(f.devices), Connected: int(f.connected.Load()),
		Connects: s.connects.Load(), ConnectFailures: s.connectFailures.Load(), Lost: s.lost.Load(), Drops: s.drops.Load(),
		Published: s.published.Load(), Acked: s.acked.Load(), PublishErrors: s.publishErrors.Load(), Skipped: s.skipped.Load(),
		Events:           s.events.Load(),
		CommandsReceived: s.commandsReceived.Load(), CommandsAnswered: s.commandsAnswered.Load(), CommandsExpired: s.commandsExpired.Load(),
		DesiredApplied: s.desiredApplied.Load(),
	}
}

// DeviceIDs returns the ids of the fleet's devices, in configuration order.
func (f *Fleet) DeviceIDs() []string {
	ids := make([]string, len(f.devices))
	for i, d := range f.devices {
		ids[i] = d.cred.ID
	}
	return ids
}

// Drop takes device id offline now: abruptly (the TCP connection closes
// without DISCONNECT, so the broker publishes the retained last will
// "offline") or cleanly (the device publishes "offline" and disconnects).
// The device comes back after downtime, or, when downtime is 0, only on
// Reconnect.
func (f *Fleet) Drop(id string, abrupt bool, downtime time.Duration) error {
	d, ok := f.byID[id]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownDevice, id)
	}
	until := time.Time{}
	if downtime > 0 {
		until = time.Now().Add(downtime)
	}
	d.drop(abrupt, until, downtime <= 0)
	return nil
}

// Reconnect connects an offline device now, without waiting for its next
// period or the fleet's connection rate; it returns once the attempt has
// started (Stats().Connected shows when it succeeds).
func (f *Fleet) Reconnect(id string) error {
	d, ok := f.byID[id]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownDevice, id)
	}
	// An abruptly dropped connection takes paho a moment to tear down.
	d.mu.Lock()
	for deadline := time.Now().Add(5 * time.Second); d.tearing && time.Now().Before(deadline); {
		d.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		d.mu.Lock()
	}
	if d.state != stateOffline || d.tearing {
		d.mu.Unlock()
		return nil
	}
	d.state, d.hold, d.offlineUntil = stateConnecting, false, time.Time{}
	d.mu.Unlock()
	d.startConnect()
	return nil
}

// Run connects the fleet — at most ConnectRate devices per second — and
// drives it until ctx ends; then it waits briefly for outstanding
// acknowledgements, disconnects every device cleanly (each publishes
// "offline") and returns nil. A fleet runs once.
func (f *Fleet) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("simulator: fleet already ran")
	}
	work := make(chan *device, 1024)
	var wg sync.WaitGroup
	for range f.cfg.Workers {
		wg.Go(func() {
			for d := range work {
				d.tick(time.Now())
				d.busy.Store(false)
			}
		})
	}
	f.log.Info("simulator starting", zap.Int("devices", len(f.devices)), zap.String("broker", f.cfg.Broker),
		zap.Duration("interval", f.cfg.Interval), zap.Float64("connect_rate", f.cfg.ConnectRate))
	f.schedule(ctx, work)
	close(work)
	wg.Wait()
	f.shutdown()
	f.log.Info("simulator stopped", zap.Stringer("stats", f.Stats()))
	return nil
}

// schedule hands each device to the workers when its period comes, until
// ctx ends. First periods are staggered at the connection rate; later ones
// come every Interval ± Jitter, the first of them at a random phase so
// devices that connected together don't publish together.
func (f *Fleet) schedule(ctx context.Context, work chan<- *device) {
	start := time.Now()
	h := make(schedule, len(f.devices))
	step := time.Duration(float64(time.Second) / f.cfg.ConnectRate)
	for i, d := range f.devices {
		d.next = start.Add(time.Duration(i) * step)
		h[i] = d
	}
	heap.Init(&h)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		d := h[0]
		if wait := time.Until(d.next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			continue
		}
		now := time.Now()
		var period time.Duration
		if !d.phased {
			d.phased = true
			period = time.Duration(rand.Float64() * float64(f.cfg.Interval))
		} else {
			period = time.Duration(float64(f.cfg.Interval) * (1 + f.cfg.Jitter*(2*rand.Float64()-1)))
		}
		d.next = d.next.Add(period)
		if d.next.Before(now) { // fell behind: don't catch up in a burst
			d.next = now.Add(period)
		}
		heap.Fix(&h, 0)
		if !d.busy.CompareAndSwap(false, true) {
			f.stats.skipped.Add(1)
			continue
		}
		select {
		case work <- d:
		case <-ctx.Done():
			d.busy.Store(false)
			return
		}
	}
}

// shutdown collects the last acknowledgements (waiting up to two seconds in
// all) and disconnects every device, 64 at a time.
func (f *Fleet) shutdown() {
	deadline := time.Now().Add(2 * time.Second)
	for _, d := range f.devices {
		d.mu.Lock()
		for _, t := range d.pending {
			t.WaitTimeout(max(time.Until(deadline), 0))
			d.countToken(t, true)
		}
		d.pending = nil
		d.mu.Unlock()
	}
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, d := range f.devices {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d.stop()
		})
	}
	wg.Wait()
}

// schedule is a min-heap of devices by next period.
type schedule []*device

// Len implements heap.Interface.
func (s schedule) Len() int { return len(s) }

// Less implements heap.Interface.
func (s schedule) Less(i, j int) bool { return s[i].next.Before(s[j].next) }

// Swap implements heap.Interface.
func (s schedule) Swap(i, j int) { s[i], s[j] = s[j], s[i] }

// Push implements heap.Interface; the schedule never grows.
func (s *schedule) Push(x any) { *s = append(*s, x.(*device)) }

// Pop implements heap.Interface; the schedule never shrinks.
func (s *schedule) Pop() any {
	old := *s
	d := old[len(old)-1]
	*s = old[:len(old)-1]
	return d
}
