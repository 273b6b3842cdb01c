// Package alarm handles the alarms devices publish on their `events` topic
// (fault, filter_change, co_detected): each becomes a DeviceEventRaised on
// `device.lifecycle` and, when the device has an owner, an
// OutboxNotification on `notifications.outbox` for the notify service. It
// also keeps the owner projection (DeviceClaimed / DeviceUnclaimed) that
// tells whom to notify.
package alarm

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	"github.com/comfortech/platform/services/device/internal/app"
)

// Topics and event types.
const (
	// LifecycleTopic receives DeviceEventRaised.
	LifecycleTopic = "device.lifecycle"
	// OutboxTopic receives the notifications.
	OutboxTopic = "notifications.outbox"
	// EventType is ce_type of DeviceEventRaised.
	EventType = "comfortech.device.event.v1"
	// NotificationType is ce_type of OutboxNotification.
	NotificationType = "comfortech.notification.requested.v1"
	// Application is the notifications' application name.
	Application = "comfortech"
	// TypeClaimed and TypeUnclaimed are the data service's claim events.
	TypeClaimed   = "comfortech.device.claimed.v1"
	TypeUnclaimed = "comfortech.device.unclaimed.v1"
)

// defaultLevel is each known alarm's level when the device sends none.
var defaultLevel = map[string]string{"fault": "error", "filter_change": "info", "co_detected": "critical"}

var levels = map[string]bool{"info": true, "warning": true, "error": true, "critical": true}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// maxPayload bounds an alarm message.
const maxPayload = 16 << 10

// Publisher publishes one Kafka message and waits for its acknowledgement.
type Publisher interface {
	// Publish sends m.
	Publish(ctx context.Context, m kafka.Message) error
}

// Config holds a Handler's collaborators.
type Config struct {
	// ModelOf returns a device's model ("" if unknown).
	ModelOf func(ctx context.Context, deviceID string) string
	// Log receives refused alarms and failures.
	Log *zap.Logger
	// Metrics registers the counter; nil registers nowhere.
	Metrics prometheus.Registerer
}

// Handler turns alarms into events and notifications.
type Handler struct {
	pub    Publisher
	owners app.OwnerStore
	cfg    Config
	count  *prometheus.CounterVec
}

// New returns a Handler.
func New(pub Publisher, owners app.OwnerStore, cfg Config) (*Handler, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.ModelOf == nil {
		cfg.ModelOf = func(context.Context, string) string { return "" }
	}
	h := &Handler{pub: pub, owners: owners, cfg: cfg, count: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "comfort_device_alarms_total",
		Help: "Device alarms, by result: published, malformed, failed (Kafka or database unavailable)."}, []string{"result"})}
	for _, r := range []string{"published", "malformed", "failed"} {
		h.count.WithLabelValues(r)
	}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(h.count); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// message is an alarm as the device sends it.
type message struct {
	TS      json.Number    `json:"ts"`
	Type    string         `json:"type"`
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data"`
}

// alarm is a validated alarm.
type alarm struct {
	at                   time.Time
	name, level, message string
	data                 map[string]any
}

// parse validates an alarm message.
func parse(payload []byte) (alarm, error) {
	if len(payload) > maxPayload {
		return alarm{}, fmt.Errorf("larger than %d bytes", maxPayload)
	}
	var m message
	if err := json.Unmarshal(payload, &m); err != nil {
		return alarm{}, fmt.Errorf("not a JSON object: %w", err)
	}
	ts, err := strconv.ParseInt(m.TS.String(), 10, 64)
	if err != nil || ts <= 0 {
		return alarm{}, fmt.Errorf("ts: want Unix milliseconds")
	}
	if !namePattern.MatchString(m.Type) {
		return alarm{}, fmt.Errorf("type: want a name like filter_change")
	}
	a := alarm{at: time.UnixMilli(ts).UTC(), name: m.Type, level: m.Level, message: m.Message, data: m.Data}
	if a.level == "" {
		a.level = defaultLevel[a.name]
		if a.level == "" {
			a.level = "warning"
		}
	}
	if !levels[a.level] {
		return alarm{}, fmt.Errorf("level: want info, warning, error or critical")
	}
	if a.message == "" {
		a.message = fmt.Sprintf("Device alarm: %s", a.name)
	}
	if len(a.message) > 4000 {
		a.message = a.message[:4000]
	}
	return a, nil
}

// Handle processes one message of devices/{deviceID}/events. Malformed
// alarms are logged and counted; failures to publish are logged and
// counted too (the MQTT message is acknowledged either way).
func (h *Handler) Handle(ctx context.Context, deviceID string, payload []byte) {
	log := h.cfg.Log.With(zap.String("device_id", deviceID))
	a, err := parse(payload)
	if err != nil {
		h.count.WithLabelValues("malformed").Inc()
		log.Warn("device alarm refused", zap.Error(err), zap.Int("bytes", len(payload)))
		return
	}
	// Bounded: alarms arrive on the MQTT delivery goroutine.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.publish(ctx, deviceID, a); err != nil {
		h.count.WithLabelValues("failed").Inc()
		log.Error("device alarm not published", zap.String("type", a.name), zap.Error(err))
		return
	}
	h.count.WithLabelValues("published").Inc()
}

func (h *Handler) publish(ctx context.Context, deviceID string, a alarm) error {
	data, err := structpb.NewStruct(a.data)
	if err != nil {
		return err
	}
	model := h.cfg.ModelOf(ctx, deviceID)
	id := fmt.Sprintf("%s:%d:%s", deviceID, a.at.UnixMilli(), a.name)
	ev, err := kafka.EncodeEvent(ctx, LifecycleTopic, kafka.Event{Source: "/services/device", Type: EventType, Key: deviceID,
		Time: a.at, Data: &eventsv1.DeviceEventRaised{DeviceId: deviceID, Model: model, Name: a.name, Level: a.level,
			Data: data, Time: timestamppb.New(a.at)}})
	if err != nil {
		return err
	}
	if err := h.pub.Publish(ctx, ev); err != nil {
		return err
	}
	owner, err := h.owners.Owner(ctx, deviceID)
	if err != nil {
		return err
	}
	if owner == "" {
		h.cfg.Log.Info("alarm of an unclaimed device: nobody to notify", zap.String("device_id", deviceID), zap.String("type", a.name))
		return nil
	}
	payload, err := structpb.NewStruct(map[string]any{"device_id": deviceID, "model": model, "type": a.name,
		"level": a.level, "time": a.at.Format(time.RFC3339Nano), "data": a.data})
	if err != nil {
		return err
	}
	n, err := kafka.EncodeEvent(ctx, OutboxTopic, kafka.Event{Source: "/services/device", Type: NotificationType, Key: owner,
		Time: a.at, Data: &eventsv1.OutboxNotification{Application: Application, EventType: "device." + a.name, Level: a.level,
			Message: a.message, Timestamp: timestamppb.New(a.at), AccountId: owner, Id: id, Payload: payload}})
	if err != nil {
		return err
	}
	return h.pub.Publish(ctx, n)
}

// OwnerHandler returns the kafka.Handler that keeps the owner projection
// from the data service's claim events; other event types are skipped.
func OwnerHandler(owners app.OwnerStore) kafka.Handler {
	return func(ctx context.Context, m *kafka.Message) error {
		switch m.Header(kafka.HeaderType) {
		case TypeClaimed:
			var e eventsv1.DeviceClaimed
			if _, err := kafka.DecodeEvent(m, &e); err != nil {
				return kafka.Permanent(err)
			}
			return owners.SetOwner(ctx, e.GetDeviceId(), e.GetOwnerAccountId(), e.GetTime().AsTime())
		case TypeUnclaimed:
			var e eventsv1.DeviceUnclaimed
			if _, err := kafka.DecodeEvent(m, &e); err != nil {
				return kafka.Permanent(err)
			}
			return owners.ClearOwner(ctx, e.GetDeviceId(), e.GetOwnerAccountId())
		}
		return nil
	}
}
