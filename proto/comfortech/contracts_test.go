// Package contracts_test checks the API contracts as the gateways and
// services rely on them: protovalidate rules reject bad input naming the
// field, every RPC a gateway exposes has an HTTP rule (and internal ones
// have none), paths don't collide within a gateway, and each gateway's
// OpenAPI document lists exactly its services' paths.
package contracts_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	_ "github.com/comfortech/platform/proto/comfortech/admin/v1"
	authv1 "github.com/comfortech/platform/proto/comfortech/auth/v1"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
	_ "github.com/comfortech/platform/proto/comfortech/gateway/v1"
	notifyv1 "github.com/comfortech/platform/proto/comfortech/notify/v1"
	"github.com/comfortech/platform/proto/openapi"
)

const (
	deviceID  = "0b9f6a1e-2f4c-4c1e-9d3e-6c1f2a3b4c5d"
	accountID = "5d4c3b2a-1f6c-4e3d-9c1e-4c2f1e6a9f0b"
)

func TestValidationRules(t *testing.T) {
	t.Parallel()
	now := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	hourAgo := timestamppb.New(now.AsTime().Add(-time.Hour))

	tests := []struct {
		name string
		msg  proto.Message
		// wantFields are the field paths that must be reported; empty
		// means the message is valid. "" inside names a message-level rule.
		wantFields []string
	}{
		{
			name:       "share with bad device id and phone",
			msg:        &datav1.CreateShareRequest{DeviceId: "42", Phone: "89516519741"},
			wantFields: []string{"device_id", "phone"},
		},
		{
			name: "share ok",
			msg:  &datav1.CreateShareRequest{DeviceId: deviceID, Phone: "+79516519741"},
		},
		{
			name:       "page size too large",
			msg:        &datav1.ListHomesRequest{PageSize: 501},
			wantFields: []string{"page_size"},
		},
		{
			name:       "claim with short code",
			msg:        &datav1.ClaimDeviceRequest{Serial: "CT-000123", ClaimCode: "abc"},
			wantFields: []string{"claim_code"},
		},
		{
			name: "claim ok",
			msg:  &datav1.ClaimDeviceRequest{Serial: "CT-000123", ClaimCode: "K7Q2-9XWD"},
		},
		{
			name:       "update me with bad e-mail",
			msg:        &datav1.UpdateMeRequest{Email: proto.String("not-an-email")},
			wantFields: []string{"email"},
		},
		{
			name: "update me clears e-mail",
			msg:  &datav1.UpdateMeRequest{Email: proto.String("")},
		},
		{
			name:       "telemetry range backwards",
			msg:        &datav1.QueryTelemetryRequest{DeviceId: deviceID, StartTime: now, EndTime: hourAgo},
			wantFields: []string{""},
		},
		{
			name: "telemetry aggregate ok",
			msg: &datav1.AggregateTelemetryRequest{
				DeviceId: deviceID, StartTime: hourAgo, EndTime: now, Bucket: durationpb.New(time.Minute),
			},
		},
		{
			name: "append telemetry with bad metric name",
			msg: &datav1.AppendTelemetryRequest{Records: []*datav1.TelemetryRecord{{
				DeviceId: deviceID, Seq: 1, Time: now, Metrics: map[string]float64{"Temp C": 21.5},
			}}},
			wantFields: []string{`records[0].metrics["Temp C"]`},
		},
		{
			name: "alert rule without operator",
			msg: &datav1.CreateAlertRuleRequest{DeviceId: deviceID, Name: "Too cold", Condition: &datav1.AlertCondition{
				Metric: "temperature", Threshold: 10, MinDuration: durationpb.New(5 * time.Minute), Level: "warning",
			}},
			wantFields: []string{"condition.operator"},
		},
		{
			name: "desired state with stale-version check ok",
			msg: &datav1.UpdateDesiredStateRequest{
				DeviceId: deviceID, Desired: mustStruct(t, map[string]any{"target_temperature": 21.5}),
				ExpectedVersion: proto.Int64(3),
			},
		},
		{
			name:       "command ttl too long",
			msg:        &devicev1.SendCommandRequest{DeviceId: deviceID, Name: "reboot", Ttl: durationpb.New(48 * time.Hour)},
			wantFields: []string{"ttl"},
		},
		{
			name: "batch provisioning with a duplicate serial",
			msg: &devicev1.BatchProvisionDevicesRequest{Requests: []*devicev1.ProvisionDeviceRequest{
				{Serial: "CT-0001", Model: "thermo-x1"}, {Serial: "CT-0001", Model: "thermo-x1"},
			}},
			wantFields: []string{"requests"},
		},
		{
			name:       "push token without platform",
			msg:        &notifyv1.RegisterPushTokenRequest{Token: strings.Repeat("t", 32)},
			wantFields: []string{"platform"},
		},
		{
			name: "subscription with unknown topic and non-URL",
			msg: &notifyv1.PutSubscriptionRequest{Subscription: &notifyv1.Subscription{
				Name: "crm", Url: "crm.example.com/hook", EventTypes: []string{"device.everything"},
			}},
			wantFields: []string{"subscription.url", "subscription.event_types[0]"},
		},
		{
			name: "direct send without recipient",
			msg: &notifyv1.SendDirectMessageRequest{
				Id: "otp-1", Channel: notifyv1.Channel_CHANNEL_SMS, Body: "Your code is 1234",
			},
			wantFields: []string{"recipient"},
		},
		{
			name:       "register with weak password",
			msg:        &authv1.RegisterRequest{Phone: "+79516519741", Password: "password"},
			wantFields: []string{"password"},
		},
		{
			name: "register ok",
			msg:  &authv1.RegisterRequest{Phone: "+79516519741", Password: "s3cret-pass"},
		},
		{
			name: "login as admin ok",
			msg:  &authv1.LoginRequest{Username: "admin", Password: "x"},
		},
		{
			name: "outbox message with unknown level",
			msg: &eventsv1.OutboxNotification{
				Application: "devices", EventType: "alert-raised", Level: "loud", Message: "Too cold",
				Timestamp: now, AccountId: accountID, Id: "a1",
			},
			wantFields: []string{"level"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := protovalidate.Validate(tt.msg)
			if len(tt.wantFields) == 0 {
				if err != nil {
					t.Fatalf("valid message rejected: %v", err)
				}
				return
			}
			var verr *protovalidate.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("got %v, want a validation error", err)
			}
			var got []string
			for _, v := range verr.Violations {
				got = append(got, protovalidate.FieldPathString(v.Proto.GetField()))
			}
			for _, want := range tt.wantFields {
				if !slices.Contains(got, want) {
					t.Errorf("violations on %q, want one on %q (%v)", got, want, err)
				}
			}
		})
	}
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gateways lists the services each gateway registers. Every service of a
// comfortech package is either here or in internalServices.
var gateways = map[string]struct {
	services []string
	doc      []byte
}{
	"main": {doc: openapi.Main, services: []string{
		"comfortech.data.v1.AccountService",
		"comfortech.data.v1.HomeService",
		"comfortech.data.v1.DeviceService",
		"comfortech.data.v1.SharingService",
		"comfortech.data.v1.DeviceStateService",
		"comfortech.data.v1.TelemetryService",
		"comfortech.data.v1.AlertRuleService",
		"comfortech.device.v1.CommandService",
		"comfortech.device.v1.PresenceService",
		"comfortech.notify.v1.PreferenceService",
		"comfortech.notify.v1.PushTokenService",
		"comfortech.notify.v1.WebhookEndpointService",
	}},
	"admin": {doc: openapi.Admin, services: []string{
		"comfortech.data.v1.FleetService",
		"comfortech.data.v1.AccountAdminService",
		"comfortech.data.v1.AuditService",
		"comfortech.data.v1.DeviceModelService",
		"comfortech.device.v1.DeviceAdminService",
		"comfortech.notify.v1.CatalogService",
		"comfortech.notify.v1.TemplateService",
		"comfortech.notify.v1.DeliveryService",
		"comfortech.notify.v1.DeadLetterService",
		"comfortech.notify.v1.DevSinkService",
		"comfortech.notify.v1.SubscriptionService",
		"comfortech.admin.v1.ConfigService",
	}},
	"auth": {doc: openapi.Auth, services: []string{
		"comfortech.auth.v1.AuthService",
		"comfortech.auth.v1.UserAdminService",
	}},
}

// internalServices are called service to service only: no HTTP rules.
var internalServices = []string{
	"comfortech.data.v1.DataInternalService",
	"comfortech.device.v1.BrokerAuthService",
	"comfortech.notify.v1.DirectService",
}

// adminPrefixes are paths only the admin and auth gateways may serve.
var adminPrefixes = []string{"/v1/fleet", "/v1/accounts", "/v1/admin", "/v1/audit", "/v1/config",
	"/v1/subscriptions", "/v1/device-models", "/v1/notifications/applications",
	"/v1/notifications/templates", "/v1/notifications/deliveries", "/v1/notifications/dead-letters",
	"/v1/notifications/dev-sink"}

func TestHTTPRules(t *testing.T) {
	t.Parallel()
	services := comfortechServices()

	placed := map[string]string{}
	for name, gw := range gateways {
		for _, s := range gw.services {
			if _, ok := services[s]; !ok {
				t.Errorf("gateway %s lists unknown service %s", name, s)
			}
			if other, dup := placed[s]; dup {
				t.Errorf("service %s is on gateways %s and %s", s, other, name)
			}
			placed[s] = name
		}
	}
	for _, s := range internalServices {
		placed[s] = "internal"
	}
	for s := range services {
		if _, ok := placed[s]; !ok {
			t.Errorf("service %s is on no gateway and not internal", s)
		}
	}

	for _, s := range internalServices {
		sd, ok := services[s]
		if !ok {
			t.Errorf("unknown internal service %s", s)
			continue
		}
		for _, r := range httpRules(sd) {
			t.Errorf("internal %s has an HTTP rule %s", r.method, r.route)
		}
	}

	for name, gw := range gateways {
		routes := map[string]string{} // "VERB path" -> method
		paths := map[string]bool{}
		for _, s := range gw.services {
			sd, ok := services[s]
			if !ok {
				continue
			}
			rules := httpRules(sd)
			for i := range sd.Methods().Len() {
				m := string(sd.Methods().Get(i).FullName())
				if !slices.ContainsFunc(rules, func(r rule) bool { return r.method == m }) {
					t.Errorf("%s (gateway %s) has no HTTP rule", m, name)
				}
			}
			for _, r := range rules {
				if prev, dup := routes[r.route]; dup {
					t.Errorf("gateway %s: %s and %s both serve %s", name, prev, r.method, r.route)
				}
				routes[r.route] = r.method
				paths[r.path] = true
				if name == "main" && slices.ContainsFunc(adminPrefixes, func(p string) bool {
					return strings.HasPrefix(r.path, p)
				}) {
					t.Errorf("main gateway exposes admin path %s (%s)", r.route, r.method)
				}
			}
		}

		var doc struct {
			Paths map[string]json.RawMessage `json:"paths"`
		}
		if err := json.Unmarshal(gw.doc, &doc); err != nil {
			t.Fatalf("OpenAPI document of %s: %v", name, err)
		}
		for p := range paths {
			if _, ok := doc.Paths[p]; !ok {
				t.Errorf("OpenAPI document of %s lacks %s: regenerate or fix buf.gen.openapi-%s.yaml", name, p, name)
			}
		}
		for p := range doc.Paths {
			if !paths[p] {
				t.Errorf("OpenAPI document of %s has %s, which no service of the gateway serves", name, p)
			}
		}
	}
}

type rule struct {
	method string // full RPC name
	route  string // "GET /v1/..."
	path   string
}

func httpRules(sd protoreflect.ServiceDescriptor) []rule {
	var rules []rule
	for i := range sd.Methods().Len() {
		md := sd.Methods().Get(i)
		hr, ok := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
		if !ok || hr == nil {
			continue
		}
		for _, r := range append([]*annotations.HttpRule{hr}, hr.GetAdditionalBindings()...) {
			verb, path := verbPath(r)
			if verb == "" {
				continue
			}
			rules = append(rules, rule{method: string(md.FullName()), route: verb + " " + path, path: path})
		}
	}
	return rules
}

func verbPath(r *annotations.HttpRule) (string, string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "GET", p.Get
	case *annotations.HttpRule_Post:
		return "POST", p.Post
	case *annotations.HttpRule_Put:
		return "PUT", p.Put
	case *annotations.HttpRule_Patch:
		return "PATCH", p.Patch
	case *annotations.HttpRule_Delete:
		return "DELETE", p.Delete
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

func comfortechServices() map[string]protoreflect.ServiceDescriptor {
	services := map[string]protoreflect.ServiceDescriptor{}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "comfortech.") {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			services[string(sd.FullName())] = sd
		}
		return true
	})
	return services
}
