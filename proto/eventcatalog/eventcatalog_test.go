package eventcatalog_test

import (
	"encoding/json"
	"slices"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/proto/eventcatalog"
)

func load(t *testing.T) *eventcatalog.Catalog {
	t.Helper()
	c, err := eventcatalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTopics: the catalog has the topics of ARCHITECTURE §5, each with
// events, and finds an event by topic and type.
func TestTopics(t *testing.T) {
	t.Parallel()
	c := load(t)
	var names []string
	for _, tp := range c.Topics {
		names = append(names, tp.Name)
		if len(tp.Events) == 0 || tp.Description == "" || tp.Key == "" {
			t.Errorf("topic %s: %d events, description %q, key %q", tp.Name, len(tp.Events), tp.Description, tp.Key)
		}
	}
	want := []string{"account.events", "alerts", "audit", "device.lifecycle", "device.telemetry", "notifications.delivery", "notifications.outbox"}
	if !slices.Equal(names, want) {
		t.Errorf("topics = %v, want %v", names, want)
	}
	e, ok := c.Lookup("device.lifecycle", "comfortech.device.presence.v1")
	if !ok || e.Message != (&eventsv1.DevicePresenceChanged{}).ProtoReflect().Type() || !slices.Equal(e.Sources, []string{"/services/device"}) {
		t.Errorf("presence = %+v, %v", e, ok)
	}
	if _, ok := c.Lookup("alerts", "comfortech.device.presence.v1"); ok {
		t.Error("presence found on alerts")
	}
}

// TestEveryMessageIsCatalogued: each top-level message of the events
// package is an event or part of one, so a new event cannot be left out of
// the catalog by forgetting its option.
func TestEveryMessageIsCatalogued(t *testing.T) {
	t.Parallel()
	c := load(t)
	used := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if used[md.FullName()] {
			return
		}
		used[md.FullName()] = true
		for i := range md.Fields().Len() {
			if m := md.Fields().Get(i).Message(); m != nil {
				walk(m)
			}
		}
	}
	for _, tp := range c.Topics {
		for _, e := range tp.Events {
			walk(e.Message.Descriptor())
		}
	}
	protoregistry.GlobalFiles.RangeFilesByPackage(eventcatalog.Package, func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Messages().Len() {
			md := fd.Messages().Get(i)
			if !used[md.FullName()] && md.Name() != "TopicSpec" && md.Name() != "EventSpec" {
				t.Errorf("%s is neither an event nor part of one: give it the (event) option", md.FullName())
			}
		}
		return true
	})
}

// TestSubscribableTopicsAreCatalogued: every topic a subscription may name
// is in the catalog.
func TestSubscribableTopicsAreCatalogued(t *testing.T) {
	t.Parallel()
	c := load(t)
	fd := (&notifyv1.Subscription{}).ProtoReflect().Descriptor().Fields().ByName("event_types")
	rules := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	in := rules.GetRepeated().GetItems().GetString().GetIn()
	if len(in) == 0 {
		t.Fatal("Subscription.event_types has no `in` rule")
	}
	for _, topic := range in {
		if _, ok := c.Topic(topic); !ok {
			t.Errorf("subscriptions accept %s, which the catalog does not have", topic)
		}
	}
}

// TestDocument: the AsyncAPI document has a channel per topic with its
// messages, and shows the protos' comments (events.binpb is current; the
// parser validates the document in package asyncapi).
func TestDocument(t *testing.T) {
	t.Parallel()
	c := load(t)
	raw, err := c.AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Channels map[string]struct {
			Address  string         `json:"address"`
			Messages map[string]any `json:"messages"`
		} `json:"channels"`
		Components struct {
			Messages map[string]struct {
				Name        string `json:"name"`
				Description string `json:"description"`
			} `json:"messages"`
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	ch := doc.Channels["deviceLifecycle"]
	if ch.Address != "device.lifecycle" || ch.Messages["DevicePresenceChanged"] == nil {
		t.Errorf("device.lifecycle channel = %+v", ch)
	}
	m := doc.Components.Messages["DevicePresenceChanged"]
	if m.Name != "comfortech.device.presence.v1" || m.Description == "" {
		t.Errorf("presence message = %+v (no description: regenerate events.binpb with make generate)", m)
	}
	props := doc.Components.Schemas["comfortech.events.v1.DeviceStateReported"].Properties
	if props["version"]["type"] != "string" || props["time"]["format"] != "date-time" || props["device_id"]["description"] != "Device id." {
		t.Errorf("DeviceStateReported schema = %v", props)
	}
	total := 0
	for _, tp := range c.Topics {
		total += len(tp.Events)
	}
	if len(doc.Components.Messages) != total {
		t.Errorf("%d messages in the document, %d events in the catalog", len(doc.Components.Messages), total)
	}
}
