package eventcatalog

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// exampleTime is the time every example carries.
var exampleTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// example is the AsyncAPI message example of e: its headers, and as
// payload the protojson of its message with every field set — what the
// services write, so validating it against the payload schema checks the
// schema against protojson.
func example(e Event) (map[string]any, error) {
	m := e.Message.New()
	fill(m, 0)
	payload, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m.Interface())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Type, err)
	}
	source := "/services/example"
	if len(e.Sources) > 0 {
		source = e.Sources[0]
	}
	return map[string]any{
		"name":    "every-field",
		"summary": "Every field set, as protojson writes it.",
		"headers": map[string]any{
			"ce_specversion": "1.0", "ce_id": "0195f0a4-1c2b-7d3e-8f40-5a6b7c8d9e0f", "ce_type": e.Type,
			"ce_source": source, "ce_time": exampleTime.Format(time.RFC3339Nano), "content-type": "application/json",
		},
		"payload": json.RawMessage(payload),
	}, nil
}

// maxDepth bounds how deep fill goes into nested messages.
const maxDepth = 4

// fill sets every field of m (the first of each oneof) to a value of its
// type.
func fill(m protoreflect.Message, depth int) {
	md := m.Descriptor()
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		proto.Merge(m.Interface(), timestamppb.New(exampleTime))
		return
	case "google.protobuf.Value":
		proto.Merge(m.Interface(), structpb.NewStringValue("value"))
		return
	case "google.protobuf.Any":
		return // needs a registered type; no event carries one
	}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() && m.WhichOneof(o) != nil {
			continue
		}
		switch {
		case fd.IsMap():
			key := protoreflect.ValueOfString("key").MapKey()
			if fd.MapKey().Kind() != protoreflect.StringKind {
				key = scalar(fd.MapKey()).MapKey()
			}
			mp := m.Mutable(fd).Map()
			if fd.MapValue().Message() != nil {
				v := mp.NewValue()
				fill(v.Message(), depth+1)
				mp.Set(key, v)
			} else {
				mp.Set(key, scalar(fd.MapValue()))
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			if fd.Message() != nil {
				if depth < maxDepth {
					v := l.NewElement()
					fill(v.Message(), depth+1)
					l.Append(v)
				}
			} else {
				l.Append(scalar(fd))
			}
		case fd.Message() != nil:
			if depth < maxDepth {
				fill(m.Mutable(fd).Message(), depth+1)
			}
		default:
			m.Set(fd, scalar(fd))
		}
	}
}

// scalar is an example value of a field of a scalar or enum type.
func scalar(fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(string(fd.Name()))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(fd.Name()))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(7)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(7)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(42)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(42)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(21.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(21.5)
	case protoreflect.EnumKind:
		values := fd.Enum().Values()
		return protoreflect.ValueOfEnum(values.Get(min(1, values.Len()-1)).Number())
	}
	return fd.Default()
}
