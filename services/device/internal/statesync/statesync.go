// Package statesync publishes the devices' desired state: it consumes the
// data service's DesiredStateChanged events from `device.lifecycle` and
// publishes each document, retained and with its version, on
// `devices/{id}/state/desired`, so a device gets it now if it is online
// and on its next connection otherwise.
package statesync

import (
	"context"
	"encoding/json"
	"fmt"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/kafka"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// Topic is where the data service emits DesiredStateChanged.
const Topic = "device.lifecycle"

// EventType is ce_type of DesiredStateChanged.
const EventType = "comfortech.device.state.desired.v1"

// Publisher publishes one MQTT message and waits for the broker's
// acknowledgement (mqttlink.Link).
type Publisher interface {
	// Publish sends payload on topic.
	Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error
}

// Handler returns the kafka.Handler that publishes desired documents
// through pub; other event types on the topic are skipped. A failed
// publish is returned so that the runner retries it.
func Handler(pub Publisher, log *zap.Logger) kafka.Handler {
	return func(ctx context.Context, m *kafka.Message) error {
		if m.Header(kafka.HeaderType) != EventType {
			return nil
		}
		var e eventsv1.DesiredStateChanged
		if _, err := kafka.DecodeEvent(m, &e); err != nil {
			return kafka.Permanent(err)
		}
		payload, err := Document(&e)
		if err != nil {
			return kafka.Permanent(err)
		}
		if err := pub.Publish(ctx, "devices/"+e.GetDeviceId()+"/state/desired", 1, true, payload); err != nil {
			return err
		}
		log.Debug("desired state published", zap.String("device_id", e.GetDeviceId()), zap.Int64("version", e.GetVersion()))
		return nil
	}
}

// Document is the state/desired payload of e: the whole desired document
// with "version" set to its version.
func Document(e *eventsv1.DesiredStateChanged) ([]byte, error) {
	doc := e.GetDesired().AsMap()
	doc["version"] = e.GetVersion()
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("statesync: device %s: %w", e.GetDeviceId(), err)
	}
	return b, nil
}
