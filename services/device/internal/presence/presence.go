// Package presence turns the devices' retained `status` messages
// (`online`, and the last will `offline`) into connection changes,
// debounced against flapping: a state that reverts within the debounce
// window is ignored. Each change is recorded in the data service
// (RecordPresence: online flag and last-seen time) and published as a
// DevicePresenceChanged event on `device.lifecycle`.
package presence

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// Topic receives the presence events.
const Topic = "device.lifecycle"

// EventType is ce_type of DevicePresenceChanged.
const EventType = "comfortech.device.presence.v1"

// Recorder is the data service's presence API.
type Recorder interface {
	// RecordPresence stores the state and last-seen time.
	RecordPresence(ctx context.Context, deviceID string, online bool, lastSeen time.Time) error
}

// Publisher publishes one Kafka message.
type Publisher interface {
	// Publish sends m and waits for its acknowledgement.
	Publish(ctx context.Context, m kafka.Message) error
}

// Change is a committed connection change.
type Change struct {
	// DeviceID is the device.
	DeviceID string
	// Online is the new state.
	Online bool
	// Reason says why.
	Reason eventsv1.PresenceReason
	// At is when the device's status message arrived.
	At time.Time
}

// Config tunes a Tracker.
type Config struct {
	// Debounce is how long a new state must hold before it counts;
	// default 2 s.
	Debounce time.Duration
	// OnChange, when set, is called after each committed change (e.g. to
	// send queued commands when a device comes online).
	OnChange func(ctx context.Context, c Change)
	// Log receives failures.
	Log *zap.Logger
	// Metrics registers the counters; nil registers nowhere.
	Metrics prometheus.Registerer
}

// pending is a state waiting out the debounce window.
type pending struct {
	online bool
	at     time.Time
	timer  *time.Timer
}

// Tracker debounces and records the devices' presence.
type Tracker struct {
	cfg     Config
	data    Recorder
	kafka   Publisher
	ctx     context.Context
	mu      sync.Mutex
	last    map[string]bool // committed state per device, as this replica saw it
	pending map[string]*pending
	online  int // devices whose committed state in last is online
	changes *prometheus.CounterVec
	flaps   prometheus.Counter
}

// New returns a Tracker; ctx bounds the work its timers start.
func New(ctx context.Context, data Recorder, pub Publisher, cfg Config) (*Tracker, error) {
	if cfg.Debounce <= 0 {
		cfg.Debounce = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	t := &Tracker{cfg: cfg, data: data, kafka: pub, ctx: ctx, last: map[string]bool{}, pending: map[string]*pending{},
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "comfort_device_presence_changes_total",
			Help: "Committed presence changes, by state (online, offline)."}, []string{"state"}),
		flaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "comfort_device_presence_flaps_total",
			Help: "Status changes ignored because they reverted within the debounce window."}),
	}
	t.changes.WithLabelValues("online")
	t.changes.WithLabelValues("offline")
	// A gauge of the devices online, as this replica saw them: replicas
	// share the status subscription, so the platform's figure is the sum
	// over the device service's replicas.
	online := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "comfort_device_online_devices",
		Help: "Devices whose committed presence is online, as this replica saw their status messages."},
		func() float64 {
			t.mu.Lock()
			defer t.mu.Unlock()
			return float64(t.online)
		})
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{t.changes, t.flaps, online} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// Handle takes one status message of deviceID. Payloads other than
// `online` and `offline` are ignored (and logged).
func (t *Tracker) Handle(deviceID string, payload []byte, at time.Time) {
	var online bool
	switch string(bytes.TrimSpace(payload)) {
	case "online":
		online = true
	case "offline":
	case "":
		return // a cleared retained status
	default:
		t.cfg.Log.Info("unknown status payload ignored", zap.String("device_id", deviceID))
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.pending[deviceID]; ok {
		if p.online != online {
			// Reverted within the window: a flap, nothing happened.
			p.timer.Stop()
			delete(t.pending, deviceID)
			t.flaps.Inc()
		}
		return
	}
	if last, ok := t.last[deviceID]; ok && last == online {
		return
	}
	p := &pending{online: online, at: at}
	p.timer = time.AfterFunc(t.cfg.Debounce, func() { t.commit(deviceID, p) })
	t.pending[deviceID] = p
}

// commit records a state that held for the debounce window.
func (t *Tracker) commit(deviceID string, p *pending) {
	t.mu.Lock()
	if t.pending[deviceID] != p {
		t.mu.Unlock()
		return // cancelled meanwhile
	}
	delete(t.pending, deviceID)
	if was := t.last[deviceID]; was != p.online {
		if p.online {
			t.online++
		} else {
			t.online--
		}
	}
	t.last[deviceID] = p.online
	t.mu.Unlock()

	c := Change{DeviceID: deviceID, Online: p.online, At: p.at, Reason: eventsv1.PresenceReason_PRESENCE_REASON_CONNECTED}
	state := "online"
	if !p.online {
		// The payload cannot tell a last will from a clean `offline`.
		c.Reason, state = eventsv1.PresenceReason_PRESENCE_REASON_DISCONNECTED, "offline"
	}
	t.changes.WithLabelValues(state).Inc()
	ctx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
	defer cancel()
	if err := t.data.RecordPresence(ctx, deviceID, p.online, p.at); err != nil {
		t.cfg.Log.Warn("presence not recorded in the data service", zap.String("device_id", deviceID), zap.Error(err))
	}
	m, err := kafka.EncodeEvent(ctx, Topic, kafka.Event{Source: "/services/device", Type: EventType, Key: deviceID,
		Time: p.at, Data: &eventsv1.DevicePresenceChanged{DeviceId: deviceID, Online: p.online, Reason: c.Reason,
			Time: timestamppb.New(p.at), LastSeenTime: timestamppb.New(p.at)}})
	if err == nil {
		err = t.kafka.Publish(ctx, m)
	}
	if err != nil {
		t.cfg.Log.Warn("presence event not published", zap.String("device_id", deviceID), zap.Error(err))
	}
	if t.cfg.OnChange != nil {
		t.cfg.OnChange(ctx, c)
	}
}

// Online reports whether deviceID's last committed state, as this replica
// saw it, is online.
func (t *Tracker) Online(deviceID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last[deviceID]
}

// Close stops the pending timers.
func (t *Tracker) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, p := range t.pending {
		p.timer.Stop()
		delete(t.pending, id)
	}
}
