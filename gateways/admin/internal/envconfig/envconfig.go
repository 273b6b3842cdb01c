// Package envconfig serves comfortech.admin.v1.ConfigService: the
// declarative environment configuration. A document lists device models
// (with their default alert rules), notification applications (in the
// notifications-backend registration format) and event subscriptions;
// applying it puts each item through its service's Put RPC, which says
// whether the item was created, changed or already so — a second apply
// changes nothing. A dry run asks the same RPCs to validate only, and every
// change comes with a unified diff of the item in YAML.
//
// Every call to the services carries the operator's own token, so each
// item's change is authorized and audited there.
package envconfig

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"go.yaml.in/yaml/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/libs/web"
	adminv1 "github.com/comfortech/platform/proto/comfortech/admin/v1"
)

// APIVersion is the version a document must declare.
const APIVersion = "comfortech/v1"

// Server implements adminv1.ConfigServiceServer over the kinds.
type Server struct {
	adminv1.UnimplementedConfigServiceServer
	kinds []Kind
}

// New returns the server for kinds, in the order documents list them.
func New(kinds ...Kind) *Server { return &Server{kinds: kinds} }

// document is the configuration document: each kind's items as written.
type document map[string][]map[string]any

// ApplyConfig implements adminv1.ConfigServiceServer. Every item is
// decoded, then checked by its service (a validating Put), before the
// first one is changed: a document with a mistake changes nothing.
func (s *Server) ApplyConfig(ctx context.Context, req *adminv1.ApplyConfigRequest) (*adminv1.ApplyConfigResponse, error) {
	doc, err := s.parse(req.GetDocument())
	if err != nil {
		return nil, err
	}
	type entry struct {
		k    Kind
		at   string
		item proto.Message
	}
	var entries []entry
	keep := map[string]map[string]bool{}
	for _, k := range s.kinds {
		keep[k.Key] = map[string]bool{}
		for i, raw := range doc[k.Key] {
			at := fmt.Sprintf("%s[%d]", k.Key, i)
			item, err := decodeItem(k, raw)
			if err != nil {
				return nil, invalid(at, err.Error())
			}
			name := k.Name(item)
			if keep[k.Key][name] {
				return nil, invalid(at, fmt.Sprintf("%s %q is listed twice", k.Kind, name))
			}
			keep[k.Key][name] = true
			entries = append(entries, entry{k, at, item})
		}
	}
	resp := &adminv1.ApplyConfigResponse{}
	for _, e := range entries {
		change, err := plan(ctx, e.k, e.item)
		if err != nil {
			return nil, itemError(e.at, err)
		}
		resp.Items = append(resp.Items, change)
	}
	if !req.GetDryRun() {
		for i, e := range entries {
			if resp.Items[i].GetAction() == adminv1.ChangeAction_CHANGE_ACTION_UNCHANGED {
				continue
			}
			if _, _, _, err := e.k.Put(ctx, e.item, false); err != nil {
				return nil, itemError(e.at, err)
			}
		}
	}
	for _, k := range s.kinds {
		if _, listed := doc[k.Key]; !req.GetPrune() || !listed {
			continue
		}
		pruned, err := prune(ctx, k, keep[k.Key], req.GetDryRun())
		if err != nil {
			return nil, err
		}
		resp.Items = append(resp.Items, pruned...)
	}
	for _, c := range resp.Items {
		resp.Changed = resp.Changed || c.GetAction() != adminv1.ChangeAction_CHANGE_ACTION_UNCHANGED
	}
	return resp, nil
}

// ExportConfig implements adminv1.ConfigServiceServer.
func (s *Server) ExportConfig(ctx context.Context, _ *adminv1.ExportConfigRequest) (*adminv1.ExportConfigResponse, error) {
	var b bytes.Buffer
	b.WriteString("apiVersion: " + APIVersion + "\n")
	for _, k := range s.kinds {
		items, err := k.List(ctx)
		if err != nil {
			return nil, err
		}
		var list []map[string]any
		for _, it := range items {
			list = append(list, plain(k, it))
		}
		out, err := yaml.Marshal(map[string]any{k.Key: list})
		if err != nil {
			return nil, status.Errorf(codes.Internal, "export %s: %v", k.Key, err)
		}
		b.Write(out)
	}
	return &adminv1.ExportConfigResponse{Document: b.String()}, nil
}

// parse reads a YAML (or JSON) document, refusing what it does not know.
func (s *Server) parse(text string) (document, error) {
	var top map[string]any
	if err := yaml.Unmarshal([]byte(text), &top); err != nil {
		return nil, invalid("document", "not YAML or JSON: "+err.Error())
	}
	if v := top["apiVersion"]; v != APIVersion {
		return nil, invalid("document", fmt.Sprintf("apiVersion must be %q, not %v", APIVersion, v))
	}
	doc := document{}
	for key, v := range top {
		if key == "apiVersion" {
			continue
		}
		if !s.known(key) {
			return nil, invalid("document", fmt.Sprintf("unknown section %q (want %s)", key, s.sections()))
		}
		items, ok := v.([]any)
		if v != nil && !ok {
			return nil, invalid(key, "must be a list")
		}
		doc[key] = []map[string]any{}
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return nil, invalid(fmt.Sprintf("%s[%d]", key, i), "must be a mapping")
			}
			doc[key] = append(doc[key], m)
		}
	}
	return doc, nil
}

func (s *Server) known(key string) bool {
	for _, k := range s.kinds {
		if k.Key == key {
			return true
		}
	}
	return false
}

func (s *Server) sections() string {
	keys := make([]string, len(s.kinds))
	for i, k := range s.kinds {
		keys[i] = k.Key
	}
	return strings.Join(keys, ", ")
}

// decodeItem turns one item of the document into its message.
func decodeItem(k Kind, raw map[string]any) (proto.Message, error) {
	if k.Normalize != nil {
		k.Normalize(raw)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	item := k.New()
	if err := protojson.Unmarshal(b, item); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "proto: "))
	}
	return item, nil
}

// plan asks the item's service to validate it and reports what putting it
// would change, with the diff from the item as it is to the item as it
// would be stored.
func plan(ctx context.Context, k Kind, item proto.Message) (*adminv1.ConfigChange, error) {
	name := k.Name(item)
	current, err := k.Get(ctx, name)
	if status.Code(err) == codes.NotFound {
		current, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	stored, created, changed, err := k.Put(ctx, item, true)
	if err != nil {
		return nil, err
	}
	c := &adminv1.ConfigChange{Kind: k.Kind, Name: name, Action: adminv1.ChangeAction_CHANGE_ACTION_UNCHANGED}
	switch {
	case created:
		c.Action = adminv1.ChangeAction_CHANGE_ACTION_CREATE
	case changed:
		c.Action = adminv1.ChangeAction_CHANGE_ACTION_UPDATE
	}
	if c.Action != adminv1.ChangeAction_CHANGE_ACTION_UNCHANGED {
		c.Diff = diff(k, name, current, stored)
	}
	return c, nil
}

// prune deletes (or, in a dry run, reports) the items of k not in keep.
func prune(ctx context.Context, k Kind, keep map[string]bool, dryRun bool) ([]*adminv1.ConfigChange, error) {
	all, err := k.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []*adminv1.ConfigChange
	for _, it := range all {
		name := k.Name(it)
		if keep[name] {
			continue
		}
		if !dryRun {
			if err := k.Delete(ctx, name); err != nil && status.Code(err) != codes.NotFound {
				return nil, err
			}
		}
		out = append(out, &adminv1.ConfigChange{Kind: k.Kind, Name: name, Action: adminv1.ChangeAction_CHANGE_ACTION_DELETE,
			Diff: diff(k, name, it, nil)})
	}
	return out, nil
}

// diff is the unified diff of an item's YAML from before to after (nil:
// absent).
func diff(k Kind, name string, before, after proto.Message) string {
	text := func(m proto.Message) []string {
		if m == nil {
			return nil
		}
		b, err := yaml.Marshal(plain(k, m))
		if err != nil {
			return []string{"# " + err.Error() + "\n"}
		}
		return difflib.SplitLines(string(b))
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: text(before), B: text(after), FromFile: k.Kind + "/" + name + " (current)", ToFile: k.Kind + "/" + name + " (configured)",
		Context: 3,
	})
	if err != nil {
		return ""
	}
	return d
}

// plain renders an item as the document writes it: proto field names,
// without output-only fields, secrets masked.
func plain(k Kind, m proto.Message) map[string]any {
	c := proto.Clone(m)
	if k.Clean != nil {
		k.Clean(c)
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(c)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return map[string]any{"error": err.Error()}
	}
	return out
}

// invalid is an InvalidArgument naming field.
func invalid(field, msg string) error {
	st := status.New(codes.InvalidArgument, field+": "+msg)
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: field, Description: msg}}}); err == nil {
		st = d
	}
	return st.Err()
}

// itemError places a service's answer about one item in the document: an
// invalid field of the item is named from the document's root.
func itemError(at string, err error) error {
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		return status.Errorf(st.Code(), "%s: %s", at, st.Message())
	}
	field, msg := at, st.Message()
	if body := web.Body(st); len(body.Details) > 0 {
		// The service names the field within its request ("model.title").
		if _, rest, ok := strings.Cut(body.Details[0].Field, "."); ok {
			field = at + "." + rest
		}
		msg = body.Details[0].Description
	}
	return invalid(field, msg)
}
