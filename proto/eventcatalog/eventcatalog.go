// Package eventcatalog is the catalog of the platform's Kafka events: every
// topic and every event type on it with its message, read from the
// `comfortech.events.v1.topics` and `event` options of the protos, and the
// AsyncAPI 3.0 document describing them with JSON schemas derived from the
// message descriptors (see AsyncAPI). Nothing in it is written by hand, so
// it cannot drift from the messages the services publish.
package eventcatalog

import (
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// Package is the protobuf package of the events.
const Package = "comfortech.events.v1"

// Topic is a Kafka topic and the events published on it.
type Topic struct {
	// Name is the topic, e.g. "device.lifecycle".
	Name string
	// Description says what the topic carries.
	Description string
	// Key says what the record key is, e.g. "device id".
	Key string
	// Events are the event types published on the topic, by type.
	Events []Event
}

// Event is one event type.
type Event struct {
	// Type is the CloudEvents type (ce_type), e.g. "comfortech.device.presence.v1".
	Type string
	// Topic is the topic it is published on.
	Topic string
	// Sources are the CloudEvents sources (ce_source) that publish it;
	// empty when any part may.
	Sources []string
	// Message is the event's value.
	Message protoreflect.MessageType
}

// Catalog is every topic and event type of the platform.
type Catalog struct {
	// Topics, by name.
	Topics []Topic
	byType map[string]Event
	docs   *protoregistry.Files
}

// Lookup returns the event type ceType, if it is published on topic.
func (c *Catalog) Lookup(topic, ceType string) (Event, bool) {
	e, ok := c.byType[ceType]
	return e, ok && e.Topic == topic
}

// Topic returns the topic named name.
func (c *Catalog) Topic(name string) (Topic, bool) {
	i := slices.IndexFunc(c.Topics, func(t Topic) bool { return t.Name == name })
	if i < 0 {
		return Topic{}, false
	}
	return c.Topics[i], true
}

// comments is the descriptor set of the event protos with their comments
// (SourceCodeInfo), which generated Go code does not keep; scripts/
// proto-generate.sh builds it with `buf build`.
//
//go:embed events.binpb
var comments []byte

// Load returns the catalog of the event messages compiled into this
// binary. It fails when an option is inconsistent: an event on a topic its
// file does not declare, a type declared twice, a topic declared twice.
var Load = sync.OnceValues(load)

func load() (*Catalog, error) {
	c := &Catalog{byType: map[string]Event{}}
	topics := map[string]*Topic{}
	var errs []error
	// Files in path order, messages in declaration order: a stable catalog.
	var files []protoreflect.FileDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage(Package, func(fd protoreflect.FileDescriptor) bool {
		files = append(files, fd)
		return true
	})
	slices.SortFunc(files, func(a, b protoreflect.FileDescriptor) int { return cmp.Compare(a.Path(), b.Path()) })
	for _, fd := range files {
		declared := map[string]bool{}
		for _, t := range proto.GetExtension(fd.Options(), eventsv1.E_Topics).([]*eventsv1.TopicSpec) {
			if topics[t.GetName()] != nil {
				errs = append(errs, fmt.Errorf("%s: topic %q is declared twice", fd.Path(), t.GetName()))
				continue
			}
			declared[t.GetName()] = true
			topics[t.GetName()] = &Topic{Name: t.GetName(), Description: t.GetDescription(), Key: t.GetKey()}
		}
		msgs := fd.Messages()
		for i := range msgs.Len() {
			md := msgs.Get(i)
			spec, _ := proto.GetExtension(md.Options(), eventsv1.E_Event).(*eventsv1.EventSpec)
			if spec == nil {
				continue
			}
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: %w", md.FullName(), err))
				continue
			case !declared[spec.GetTopic()]:
				errs = append(errs, fmt.Errorf("%s: topic %q is not among its file's topics", md.FullName(), spec.GetTopic()))
				continue
			case spec.GetType() == "":
				errs = append(errs, fmt.Errorf("%s: no CloudEvents type", md.FullName()))
				continue
			}
			if prev, ok := c.byType[spec.GetType()]; ok {
				errs = append(errs, fmt.Errorf("%s: type %q is already %s's", md.FullName(), spec.GetType(), prev.Message.Descriptor().FullName()))
				continue
			}
			e := Event{Type: spec.GetType(), Topic: spec.GetTopic(), Sources: spec.GetSources(), Message: mt}
			c.byType[e.Type] = e
			t := topics[e.Topic]
			t.Events = append(t.Events, e)
		}
	}
	for _, t := range topics {
		slices.SortFunc(t.Events, func(a, b Event) int { return cmp.Compare(a.Type, b.Type) })
		c.Topics = append(c.Topics, *t)
	}
	slices.SortFunc(c.Topics, func(a, b Topic) int { return cmp.Compare(a.Name, b.Name) })
	docs, err := loadComments()
	if err != nil {
		errs = append(errs, err)
	}
	c.docs = docs
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("eventcatalog: %w", err)
	}
	return c, nil
}

// loadComments reads the embedded descriptor set; its imports resolve to
// the descriptors compiled into this binary.
func loadComments() (*protoregistry.Files, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(comments, &set); err != nil {
		return nil, fmt.Errorf("events.binpb: %w", err)
	}
	files := &protoregistry.Files{}
	for _, fdp := range set.GetFile() {
		fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
		if err != nil {
			return nil, fmt.Errorf("events.binpb: %s: %w", fdp.GetName(), err)
		}
		if err := files.RegisterFile(fd); err != nil {
			return nil, fmt.Errorf("events.binpb: %w", err)
		}
	}
	return files, nil
}

// doc returns the comment above d in its .proto file, lines joined with
// newlines, or "".
func (c *Catalog) doc(d protoreflect.Descriptor) string {
	if c.docs == nil {
		return ""
	}
	found, err := c.docs.FindDescriptorByName(d.FullName())
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(found.ParentFile().SourceLocations().ByDescriptor(found).LeadingComments), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
