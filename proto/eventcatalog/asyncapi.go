package eventcatalog

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// AsyncAPI returns the catalog as an AsyncAPI 3.0 document (JSON): a
// channel per topic, a message per event type with its CloudEvents headers
// and record key, and the JSON schema of every message as protojson writes
// it (proto field names; 64-bit integers as strings; enums by name;
// timestamps RFC 3339), derived from the descriptors. Operations are the
// platform's: it sends every event. Each message has an example with every
// field set, the protojson of its message, which the validation test checks
// against the message's schema.
func (c *Catalog) AsyncAPI() ([]byte, error) {
	g := &schemaGen{c: c, defs: map[string]any{}}
	channels := map[string]any{}
	operations := map[string]any{}
	messages := map[string]any{}
	for _, t := range c.Topics {
		id := identifier(t.Name)
		chMsgs := map[string]any{}
		var opMsgs []any
		for _, e := range t.Events {
			md := e.Message.Descriptor()
			name := string(md.Name())
			chMsgs[name] = ref("#/components/messages/" + name)
			opMsgs = append(opMsgs, ref("#/channels/"+id+"/messages/"+name))
			messages[name] = c.message(g, t, e)
		}
		channels[id] = map[string]any{
			"address":     t.Name,
			"title":       t.Name,
			"description": t.Description + "\n\nRecord key: " + t.Key + ". Dead letters go to `" + t.Name + ".dlq` with the reason in the `dlq_reason` header.",
			"messages":    chMsgs,
			"bindings":    map[string]any{"kafka": map[string]any{"topic": t.Name, "bindingVersion": "0.5.0"}},
		}
		operations["send"+upperFirst(id)] = map[string]any{
			"action":   "send",
			"title":    "Publish on " + t.Name,
			"channel":  ref("#/channels/" + id),
			"messages": opMsgs,
		}
	}
	g.defs[headersSchema] = map[string]any{
		"type":        "object",
		"description": "CloudEvents 1.0 attributes in binary mode (Kafka protocol binding), and the W3C trace context.",
		"required":    []string{"ce_specversion", "ce_id", "ce_type", "ce_source", "content-type"},
		"properties": map[string]any{
			"ce_specversion": map[string]any{"type": "string", "const": "1.0"},
			"ce_id":          map[string]any{"type": "string", "description": "Event id, unique per source; consumers deduplicate on it."},
			"ce_type":        map[string]any{"type": "string", "description": "Event type: names the message of the value."},
			"ce_source":      map[string]any{"type": "string", "description": "The part that published the event, e.g. `/services/device`."},
			"ce_time":        map[string]any{"type": "string", "format": "date-time", "description": "When the event happened."},
			"content-type":   map[string]any{"type": "string", "const": "application/json"},
			"traceparent":    map[string]any{"type": "string", "description": "W3C trace context of the request that caused the event."},
		},
	}
	doc := map[string]any{
		"asyncapi": "3.0.0",
		"info": map[string]any{
			"title":   "Comfortech platform events",
			"version": "1.0.0",
			"description": "The Kafka events of the platform (ARCHITECTURE §5): CloudEvents 1.0 in binary mode, the value the protojson " +
				"of a `" + Package + "` message with proto field names, the key the entity whose events stay in order. Consumers are " +
				"at-least-once and deduplicate on `ce_id`.\n\n" +
				"Event subscriptions (`PUT /v1/subscriptions/{name}` on the admin gateway) deliver these events to a URL as Standard " +
				"Webhooks: a signed POST whose body is the event in CloudEvents structured mode — `specversion`, `id`, `type`, `source`, " +
				"`subject` (the record key), `time`, `datacontenttype` and `data`, the message described here.\n\n" +
				"Generated from the protos: every schema follows its message's descriptor.",
		},
		"defaultContentType": "application/json",
		"servers": map[string]any{
			"dev": map[string]any{
				"host": "localhost:19092", "protocol": "kafka",
				"description": "Embedded Kafka-protocol broker of the dev stack (`make run`).",
			},
		},
		"channels":   channels,
		"operations": operations,
		"components": map[string]any{"messages": messages, "schemas": g.defs},
	}
	if len(g.errs) > 0 {
		return nil, fmt.Errorf("eventcatalog: asyncapi: %v", g.errs)
	}
	return json.MarshalIndent(doc, "", "  ")
}

// headersSchema is the component schema of the CloudEvents headers.
const headersSchema = "CloudEventHeaders"

// message is the AsyncAPI message of event e on topic t.
func (c *Catalog) message(g *schemaGen, t Topic, e Event) map[string]any {
	md := e.Message.Descriptor()
	doc := c.doc(md)
	source := map[string]any{"type": "string"}
	if len(e.Sources) > 0 {
		source["examples"] = e.Sources
	}
	m := map[string]any{
		"name":        e.Type,
		"title":       string(md.Name()),
		"contentType": "application/json",
		"headers": map[string]any{"allOf": []any{
			ref("#/components/schemas/" + headersSchema),
			map[string]any{"properties": map[string]any{
				"ce_type":   map[string]any{"const": e.Type},
				"ce_source": source,
			}},
		}},
		"payload":  g.message(md),
		"bindings": map[string]any{"kafka": map[string]any{"key": map[string]any{"type": "string", "description": t.Key}, "bindingVersion": "0.5.0"}},
	}
	if doc != "" {
		m["summary"] = firstSentence(doc)
		m["description"] = doc
	}
	ex, err := example(e)
	if err != nil {
		g.errs = append(g.errs, err)
	} else {
		m["examples"] = []any{ex}
	}
	return m
}

// schemaGen derives JSON schemas from message descriptors, collecting each
// message and enum once in defs (recursive messages are references).
type schemaGen struct {
	c    *Catalog
	defs map[string]any
	errs []error
}

func ref(to string) map[string]any { return map[string]any{"$ref": to} }

// message returns a reference to md's schema, defining it on first use.
func (g *schemaGen) message(md protoreflect.MessageDescriptor) map[string]any {
	if s := wellKnownSchema(md); s != nil {
		return s
	}
	name := string(md.FullName())
	if _, done := g.defs[name]; !done {
		g.defs[name] = nil // recursion stops here
		props := map[string]any{}
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			props[string(fd.Name())] = g.field(fd)
		}
		s := map[string]any{"type": "object", "title": string(md.Name()), "properties": props}
		if d := g.c.doc(md); d != "" {
			s["description"] = d
		}
		g.defs[name] = s
	}
	return ref("#/components/schemas/" + name)
}

// field returns the schema of a field's JSON value.
func (g *schemaGen) field(fd protoreflect.FieldDescriptor) map[string]any {
	var s map[string]any
	switch {
	case fd.IsMap():
		s = map[string]any{"type": "object", "additionalProperties": g.value(fd.MapValue())}
	case fd.IsList():
		s = map[string]any{"type": "array", "items": g.value(fd)}
	default:
		s = g.value(fd)
	}
	if d := g.c.doc(fd); d != "" {
		if _, isRef := s["$ref"]; isRef {
			// JSON Schema ignores keywords beside $ref: wrap it.
			s = map[string]any{"allOf": []any{s}}
		}
		s["description"] = d
	}
	return s
}

// value returns the schema of one value of fd's type.
func (g *schemaGen) value(fd protoreflect.FieldDescriptor) map[string]any {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		return g.enum(fd.Enum())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return g.message(fd.Message())
	}
	if s := scalarSchema(fd.Kind()); s != nil {
		return s
	}
	g.errs = append(g.errs, fmt.Errorf("%s: kind %s has no JSON schema", fd.FullName(), fd.Kind()))
	return map[string]any{}
}

// scalarSchema is the schema of a scalar as protojson writes it (64-bit
// integers as decimal strings), or nil for enums and messages.
func scalarSchema(k protoreflect.Kind) map[string]any {
	switch k {
	case protoreflect.BoolKind:
		return map[string]any{"type": "boolean"}
	case protoreflect.StringKind:
		return map[string]any{"type": "string"}
	case protoreflect.BytesKind:
		return map[string]any{"type": "string", "contentEncoding": "base64"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return map[string]any{"type": "integer", "format": "int32"}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return map[string]any{"type": "integer", "format": "uint32", "minimum": 0}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return map[string]any{"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return map[string]any{"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}
	case protoreflect.FloatKind:
		return map[string]any{"type": "number", "format": "float"}
	case protoreflect.DoubleKind:
		return map[string]any{"type": "number", "format": "double"}
	}
	return nil
}

// enum returns a reference to ed's schema: its value names, as protojson
// writes them, each described.
func (g *schemaGen) enum(ed protoreflect.EnumDescriptor) map[string]any {
	if ed.FullName() == "google.protobuf.NullValue" {
		return map[string]any{"type": "null"}
	}
	name := string(ed.FullName())
	if _, done := g.defs[name]; !done {
		values := ed.Values()
		names := make([]string, 0, values.Len())
		var doc strings.Builder
		doc.WriteString(g.c.doc(ed))
		doc.WriteString("\n")
		for i := range values.Len() {
			v := values.Get(i)
			names = append(names, string(v.Name()))
			if d := g.c.doc(v); d != "" {
				fmt.Fprintf(&doc, "\n- `%s`: %s", v.Name(), strings.ReplaceAll(d, "\n", " "))
			}
		}
		g.defs[name] = map[string]any{"type": "string", "title": string(ed.Name()), "enum": names,
			"description": strings.TrimSpace(doc.String())}
	}
	return ref("#/components/schemas/" + name)
}

// wellKnownSchema is the schema of a well-known type protojson writes in
// its own JSON form, or nil.
func wellKnownSchema(md protoreflect.MessageDescriptor) map[string]any {
	if md.ParentFile().Package() != "google.protobuf" {
		return nil
	}
	switch md.Name() {
	case "Timestamp":
		return map[string]any{"type": "string", "format": "date-time"}
	case "Duration":
		return map[string]any{"type": "string", "pattern": `^-?[0-9]+(\.[0-9]{1,9})?s$`, "description": "Duration in seconds with an `s` suffix, e.g. `1.5s`."}
	case "Struct", "Empty":
		return map[string]any{"type": "object"}
	case "Value":
		return map[string]any{}
	case "ListValue":
		return map[string]any{"type": "array"}
	case "FieldMask":
		return map[string]any{"type": "string"}
	case "Any":
		return map[string]any{"type": "object", "required": []string{"@type"}, "properties": map[string]any{"@type": map[string]any{"type": "string"}}}
	case "BoolValue", "StringValue", "BytesValue", "Int32Value", "UInt32Value", "Int64Value", "UInt64Value", "FloatValue", "DoubleValue":
		// Wrappers are written as their value.
		return scalarSchema(md.Fields().ByName("value").Kind())
	}
	return nil
}

// identifier turns a topic name into an AsyncAPI identifier:
// "device.lifecycle" → "deviceLifecycle".
func identifier(topic string) string {
	parts := strings.FieldsFunc(topic, func(r rune) bool { return r == '.' || r == '-' || r == '_' })
	for i := 1; i < len(parts); i++ {
		parts[i] = upperFirst(parts[i])
	}
	return strings.Join(parts, "")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// firstSentence is a comment's first sentence, for a summary.
func firstSentence(doc string) string {
	one := strings.Join(strings.Fields(doc), " ")
	if i := strings.Index(one, ". "); i >= 0 {
		return one[:i+1]
	}
	return one
}
