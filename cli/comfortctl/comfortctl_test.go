package comfortctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/cli/comfortctl"
	"github.com/comfortech/platform/libs/web"
	adminv1 "github.com/comfortech/platform/proto/comfortech/admin/v1"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
)

// result is what one comfortctl run left.
type result struct {
	code           int
	stdout, stderr string
}

// run runs comfortctl in-process with stdin and args.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := comfortctl.Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// want fails the test unless r exited with code.
func (r result) want(t *testing.T, code int, what string) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.code, code, r.stdout, r.stderr)
	}
	return r
}

// gateways fakes the auth and admin gateways from their wire contract
// (the envelope, the auth API's tokens, the admin API's paths): the
// admin gateway accepts only access tokens the auth gateway issued and
// has not replaced.
type gateways struct {
	t           *testing.T
	auth, admin *httptest.Server

	mu sync.Mutex
	// expiresIn is the lifetime of issued access tokens, in seconds.
	expiresIn int
	issued    int
	valid     map[string]bool // access tokens the admin gateway accepts
	refresh   map[string]bool // live refresh tokens
	refreshes int
	logouts   int
	devices   []*datav1.Device
	batches   []int
	applied   map[string]bool // configured items, for config:apply
	adminHits int
}

func newGateways(t *testing.T) *gateways {
	g := &gateways{t: t, expiresIn: 300, valid: map[string]bool{}, refresh: map[string]bool{}, applied: map[string]bool{}}
	for i := range 2500 {
		g.devices = append(g.devices, &datav1.Device{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			Serial: fmt.Sprintf("CT-%05d", i), Model: "thermostat-t1", Online: i%2 == 0})
	}
	auth := http.NewServeMux()
	auth.HandleFunc("POST /v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Username, Password string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Username != "admin" || in.Password != "Admin-Passw0rd" {
			web.WriteError(w, r, status.Error(codes.Unauthenticated, "invalid username or password"))
			return
		}
		web.WriteData(w, http.StatusOK, g.issue())
	})
	auth.HandleFunc("POST /v1/auth/refresh", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			RefreshToken string `json:"refresh_token"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		g.mu.Lock()
		ok := g.refresh[in.RefreshToken]
		delete(g.refresh, in.RefreshToken)
		g.refreshes++
		g.mu.Unlock()
		if !ok {
			web.WriteError(w, r, status.Error(codes.Unauthenticated, "session not active"))
			return
		}
		web.WriteData(w, http.StatusOK, g.issue())
	})
	auth.HandleFunc("POST /v1/auth/logout", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			RefreshToken string `json:"refresh_token"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		g.mu.Lock()
		delete(g.refresh, in.RefreshToken)
		g.logouts++
		g.mu.Unlock()
		web.WriteData(w, http.StatusOK, struct{}{})
	})
	g.auth = httptest.NewServer(auth)
	t.Cleanup(g.auth.Close)

	admin := http.NewServeMux()
	admin.HandleFunc("GET /v1/fleet/devices", g.authorized(g.listDevices))
	admin.HandleFunc("GET /v1/fleet/devices/{id}", g.authorized(func(w http.ResponseWriter, r *http.Request) {
		for _, d := range g.devices {
			if d.GetId() == r.PathValue("id") {
				writeProto(w, &datav1.GetFleetDeviceResponse{Device: &datav1.FleetDevice{Device: d}})
				return
			}
		}
		web.WriteError(w, r, status.Error(codes.NotFound, "device not found"))
	}))
	admin.HandleFunc("GET /v1/fleet/devices/{id}/presence/events", g.authorized(func(w http.ResponseWriter, r *http.Request) {
		writeProto(w, &devicev1.ListDevicePresenceEventsResponse{Items: []*devicev1.PresenceEvent{
			{Online: false, Reason: devicev1.PresenceReason_PRESENCE_REASON_CONNECTION_LOST, Time: timestamppb.New(time.Unix(1_800_000_100, 0))},
			{Online: true, Reason: devicev1.PresenceReason_PRESENCE_REASON_CONNECTED, Time: timestamppb.New(time.Unix(1_800_000_000, 0))},
		}})
	}))
	admin.HandleFunc("GET /v1/fleet/devices/{id}/commands", g.authorized(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page_size") != "10" {
			web.WriteError(w, r, status.Error(codes.InvalidArgument, "page_size"))
			return
		}
		writeProto(w, &devicev1.ListDeviceCommandsResponse{Items: []*devicev1.Command{
			{Id: "c1", Name: "reboot", Status: devicev1.CommandStatus_COMMAND_STATUS_SUCCEEDED, CreateTime: timestamppb.New(time.Unix(1_800_000_050, 0))},
		}})
	}))
	admin.HandleFunc("POST /v1/config:apply", g.authorized(g.apply))
	admin.HandleFunc("POST /v1/fleet/devices:batch-provision", g.authorized(g.batchProvision))
	g.admin = httptest.NewServer(admin)
	t.Cleanup(g.admin.Close)
	return g
}

// issue makes a new token pair.
func (g *gateways) issue() map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.issued++
	access, refresh := fmt.Sprintf("access-%d", g.issued), fmt.Sprintf("refresh-%d", g.issued)
	g.valid[access], g.refresh[refresh] = true, true
	return map[string]any{"access_token": access, "refresh_token": refresh, "expires_in": g.expiresIn,
		"refresh_expires_in": 1800, "token_type": "Bearer"}
}

// authorized lets h answer callers with a valid token, as the gateway's
// guard does.
func (g *gateways) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.adminHits++
		ok := g.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		g.mu.Unlock()
		if !ok {
			web.WriteError(w, r, status.Error(codes.Unauthenticated, "invalid token"))
			return
		}
		h(w, r)
	}
}

// hits counts the admin gateway's calls.
func (g *gateways) hits() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.adminHits
}

// writeProto answers m in the envelope, as the gateways' marshaler does.
func writeProto(w http.ResponseWriter, m proto.Message) {
	b, _ := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"success":true,"data":%s}`, b)
}

// listDevices pages through the devices by serial, filtering on online.
func (g *gateways) listDevices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("page_size"))
	if size <= 0 || size > 1000 {
		web.WriteError(w, r, status.Error(codes.InvalidArgument, "page_size"))
		return
	}
	var match []*datav1.Device
	for _, d := range g.devices {
		if on := q.Get("online"); on != "" && strconv.FormatBool(d.GetOnline()) != on {
			continue
		}
		match = append(match, d)
	}
	start, _ := strconv.Atoi(q.Get("page_token"))
	end := min(start+size, len(match))
	resp := &datav1.ListFleetDevicesResponse{Items: match[start:end], TotalSize: int64(len(match))}
	if end < len(match) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	writeProto(w, resp)
}

// apply answers config:apply: every item of the document is created once,
// then unchanged; a document without apiVersion is refused.
func (g *gateways) apply(w http.ResponseWriter, r *http.Request) {
	var in adminv1.ApplyConfigRequest
	b := new(bytes.Buffer)
	_, _ = b.ReadFrom(r.Body)
	if err := protojson.Unmarshal(b.Bytes(), &in); err != nil || !strings.Contains(in.GetDocument(), "apiVersion: comfortech/v1") {
		st, _ := status.New(codes.InvalidArgument, "invalid request: document: no apiVersion").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "document", Description: "apiVersion must be comfortech/v1"},
				{Field: "device_models", Description: "must be a list"}}})
		web.WriteError(w, r, st.Err())
		return
	}
	resp := &adminv1.ApplyConfigResponse{}
	g.mu.Lock()
	defer g.mu.Unlock()
	for line := range strings.SplitSeq(in.GetDocument(), "\n") {
		id, ok := strings.CutPrefix(strings.TrimSpace(line), "- id: ")
		if !ok {
			continue
		}
		c := &adminv1.ConfigChange{Kind: "DeviceModel", Name: id, Action: adminv1.ChangeAction_CHANGE_ACTION_UNCHANGED}
		if !g.applied[id] {
			c.Action, c.Diff = adminv1.ChangeAction_CHANGE_ACTION_CREATE, "--- DeviceModel/"+id+" (current)\n+++ DeviceModel/"+id+" (configured)\n@@ -0,0 +1 @@\n+id: "+id+"\n"
			resp.Changed = true
			if !in.GetDryRun() {
				g.applied[id] = true
			}
		}
		resp.Items = append(resp.Items, c)
	}
	writeProto(w, resp)
}

// batchProvision provisions a batch of at most 1000 devices; a serial
// shorter than 3 characters refuses the whole batch, naming it.
func (g *gateways) batchProvision(w http.ResponseWriter, r *http.Request) {
	var in devicev1.BatchProvisionDevicesRequest
	b := new(bytes.Buffer)
	_, _ = b.ReadFrom(r.Body)
	if err := protojson.Unmarshal(b.Bytes(), &in); err != nil || len(in.GetRequests()) == 0 || len(in.GetRequests()) > 1000 {
		web.WriteError(w, r, status.Error(codes.InvalidArgument, "invalid request: requests"))
		return
	}
	resp := &devicev1.BatchProvisionDevicesResponse{}
	for i, d := range in.GetRequests() {
		if len(d.GetSerial()) < 3 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(web.Failure{Error: web.ErrorBody{Code: "INVALID_ARGUMENT",
				Message: "invalid request: serial too short", Details: []web.FieldDetail{
					{Field: fmt.Sprintf("requests[%d].serial", i), Description: "value length must be at least 3 characters"}}}})
			return
		}
		code := d.GetClaimCode()
		if code == "" {
			code = "GEN-" + d.GetSerial()
		}
		resp.Items = append(resp.Items, &devicev1.ProvisionedDevice{DeviceId: "id-" + d.GetSerial(), Serial: d.GetSerial(),
			Model: d.GetModel(), Secret: "secret-" + d.GetSerial(), ClaimCode: code})
	}
	g.mu.Lock()
	g.batches = append(g.batches, len(in.GetRequests()))
	g.mu.Unlock()
	writeProto(w, resp)
}

// login logs the admin in against g and returns the flags that point
// later runs at g and the session file.
func (g *gateways) login(t *testing.T) []string {
	t.Helper()
	flags := []string{"--config", filepath.Join(t.TempDir(), "session.json"), "--auth-url", g.auth.URL, "--admin-url", g.admin.URL}
	run(t, "Admin-Passw0rd\n", append(flags, "login", "--password-stdin")...).want(t, 0, "login")
	return flags
}

// hasRow reports whether a line of out consists of cells, separated by
// spaces (a table row).
func hasRow(out string, cells ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		if slices.Equal(strings.Fields(line), cells) {
			return true
		}
	}
	return false
}

// TestLoginRefreshLogout logs in with a password, checks the session file
// is private and holds no password, lets the access token expire so the
// next call refreshes it first, and logs out.
func TestLoginRefreshLogout(t *testing.T) {
	t.Parallel()
	g := newGateways(t)
	g.expiresIn = 10 // inside the 30 s margin: every later call refreshes
	config := filepath.Join(t.TempDir(), "comfortctl", "session.json")
	flags := []string{"--config", config, "--auth-url", g.auth.URL, "--admin-url", g.admin.URL}

	r := run(t, "wrong\n", append(flags, "login", "--password-stdin")...).want(t, comfortctl.ExitFailure, "wrong password")
	if !strings.Contains(r.stderr, "UNAUTHENTICATED: invalid username or password") {
		t.Errorf("wrong password: %s", r.stderr)
	}
	if _, err := os.Stat(config); !os.IsNotExist(err) {
		t.Fatalf("a failed login left a session: %v", err)
	}

	r = run(t, "Admin-Passw0rd\n", append(flags, "login", "--password-stdin")...).want(t, 0, "login")
	if !strings.Contains(r.stdout, "Logged in as admin (password)") {
		t.Errorf("login said %q", r.stdout)
	}
	fi, err := os.Stat(config)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v, %v", fi, err)
	}
	raw, _ := os.ReadFile(config)
	if strings.Contains(string(raw), "Admin-Passw0rd") || !strings.Contains(string(raw), `"access_token": "access-1"`) {
		t.Fatalf("session file holds:\n%s", raw)
	}

	// The token expires within the margin: list refreshes it first, and
	// the admin gateway sees the new one (it refuses the old).
	g.mu.Lock()
	delete(g.valid, "access-1")
	g.mu.Unlock()
	run(t, "", append(flags, "devices", "list", "--limit", "1")...).want(t, 0, "list after expiry")
	run(t, "", append(flags, "devices", "list", "--limit", "1")...).want(t, 0, "second list")
	g.mu.Lock()
	refreshes := g.refreshes
	g.mu.Unlock()
	if refreshes != 2 {
		t.Errorf("%d refreshes, want one per run", refreshes)
	}
	raw, _ = os.ReadFile(config)
	if !strings.Contains(string(raw), `"refresh_token": "refresh-3"`) {
		t.Errorf("the refreshed session was not saved:\n%s", raw)
	}

	run(t, "", append(flags, "logout")...).want(t, 0, "logout")
	if _, err := os.Stat(config); !os.IsNotExist(err) || g.logouts != 1 || g.refresh["refresh-3"] {
		t.Fatalf("after logout: file %v, %d logouts, refresh token live %v", err, g.logouts, g.refresh["refresh-3"])
	}
	r = run(t, "", append(flags, "devices", "list")...).want(t, comfortctl.ExitFailure, "list after logout")
	if !strings.Contains(r.stderr, "not logged in") {
		t.Errorf("after logout: %s", r.stderr)
	}
	run(t, "", append(flags, "logout")...).want(t, 0, "second logout")
}

// TestRefreshRefused: a session the auth gateway has ended fails with exit
// 1 and says to log in again.
func TestRefreshRefused(t *testing.T) {
	t.Parallel()
	g := newGateways(t)
	g.expiresIn = 10
	flags := g.login(t)
	g.mu.Lock()
	clear(g.refresh)
	g.mu.Unlock()
	r := run(t, "", append(flags, "devices", "get", g.devices[0].GetId())...).want(t, comfortctl.ExitFailure, "ended session")
	if !strings.Contains(r.stderr, "run comfortctl login") || !strings.Contains(r.stderr, "UNAUTHENTICATED") {
		t.Errorf("ended session: %s", r.stderr)
	}
}

// TestExitCodes checks the exit code and message of each kind of outcome.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	g := newGateways(t)
	flags := g.login(t)
	dir := t.TempDir()
	doc := filepath.Join(dir, "env.yaml")
	if err := os.WriteFile(doc, []byte("apiVersion: comfortech/v1\ndevice_models:\n  - id: t1\n    title: T1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("device_models: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown device", []string{"devices", "get", "00000000-0000-4000-8000-999999999999"}, 1, "404 NOT_FOUND: device not found"},
		{"refused document", []string{"apply", "-f", bad}, 1,
			"400 INVALID_ARGUMENT: invalid request: document: apiVersion must be comfortech/v1 (field document)\n  field device_models: must be a list\n"},
		{"missing file", []string{"apply", "-f", filepath.Join(dir, "none.yaml")}, 1, "no such file"},
		{"diff with changes", []string{"diff", "-f", doc}, 3, ""},
		{"unknown command", []string{"devices", "lst"}, 2, `unknown command "lst"`},
		{"unknown flag", []string{"devices", "list", "--colour"}, 2, "unknown flag: --colour"},
		{"missing argument", []string{"devices", "get"}, 2, "takes one device id"},
		{"missing flag", []string{"apply"}, 2, `required flag(s) "file" not set`},
		{"contradicting flags", []string{"devices", "list", "--online", "--offline"}, 2, "exclude each other"},
		{"bad output format", []string{"-o", "yaml", "devices", "list"}, 2, `--output "yaml"`},
		{"no command", nil, 2, "missing command"},
	} {
		r := run(t, "", append(append([]string{}, flags...), c.args...)...)
		if r.code != c.code || !strings.Contains(r.stderr, c.stderr) {
			t.Errorf("%s: exit %d, want %d; stderr %q, want %q", c.name, r.code, c.code, r.stderr, c.stderr)
		}
		if c.code == comfortctl.ExitUsage && !strings.Contains(r.stderr, "--help' for usage") {
			t.Errorf("%s: no usage hint: %q", c.name, r.stderr)
		}
	}

	// The document applied: a second apply and a diff find nothing to do.
	r := run(t, "", append(flags, "apply", "-f", doc)...).want(t, 0, "apply")
	if !hasRow(r.stdout, "KIND", "NAME", "ACTION") || !hasRow(r.stdout, "DeviceModel", "t1", "create") || !strings.Contains(r.stdout, "+id: t1") {
		t.Errorf("apply printed:\n%s", r.stdout)
	}
	r = run(t, "", append(flags, "apply", "-f", "-")...)
	r.want(t, 1, "apply of an empty stdin")
	r = run(t, "apiVersion: comfortech/v1\ndevice_models:\n  - id: t1\n", append(flags, "apply", "-f", "-")...).want(t, 0, "second apply")
	if !strings.Contains(r.stdout, "No changes: 1 item(s) unchanged.") || strings.Contains(r.stdout, "+id") {
		t.Errorf("second apply printed:\n%s", r.stdout)
	}
	run(t, "", append(flags, "diff", "-f", doc)...).want(t, 0, "diff without changes")
}

// TestDevicesOutput lists every page (2,500 devices in pages of 1,000) as a
// table and as JSON, with a filter and a limit, and shows one device.
func TestDevicesOutput(t *testing.T) {
	t.Parallel()
	g := newGateways(t)
	flags := g.login(t)

	r := run(t, "", append(flags, "devices", "list")...).want(t, 0, "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2501 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "SERIAL") ||
		!strings.Contains(lines[2500], "CT-02499") || !strings.Contains(lines[1], " yes ") {
		t.Errorf("table: %d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}

	r = run(t, "", append(flags, "-o", "json", "devices", "list", "--online")...).want(t, 0, "list json")
	var list datav1.ListFleetDevicesResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if len(list.GetItems()) != 1250 || list.GetTotalSize() != 1250 || list.GetNextPageToken() != "" {
		t.Errorf("online devices: %d of %d, next %q", len(list.GetItems()), list.GetTotalSize(), list.GetNextPageToken())
	}
	for _, d := range list.GetItems() {
		if !d.GetOnline() {
			t.Fatalf("offline device %s listed with --online", d.GetId())
		}
	}

	r = run(t, "", append(flags, "-o", "json", "devices", "list", "--limit", "1500")...).want(t, 0, "limited list")
	if err := protojson.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.GetItems()) != 1500 || list.GetNextPageToken() == "" {
		t.Errorf("--limit 1500: %d devices, next %q, %v", len(list.GetItems()), list.GetNextPageToken(), err)
	}

	id := g.devices[7].GetId()
	r = run(t, "", append(flags, "devices", "get", id)...).want(t, 0, "get")
	if !hasRow(r.stdout, "DEVICE", id) || !hasRow(r.stdout, "serial", "CT-00007") || !hasRow(r.stdout, "online", "no") {
		t.Errorf("get:\n%s", r.stdout)
	}
	if !hasRow(r.stdout, "offline", "connection_lost", "2027-01-15T08:01:40Z") || !hasRow(r.stdout, "online", "connected", "2027-01-15T08:00:00Z") ||
		!hasRow(r.stdout, "reboot", "succeeded", "2027-01-15T08:00:50Z", "-", "-") {
		t.Errorf("get: no presence history or commands:\n%s", r.stdout)
	}
	r = run(t, "", append(flags, "-o", "json", "devices", "get", id)...).want(t, 0, "get json")
	var picture struct {
		Device         json.RawMessage
		PresenceEvents json.RawMessage `json:"presence_events"`
		RecentCommands json.RawMessage `json:"recent_commands"`
	}
	var fd datav1.FleetDevice
	var cmds devicev1.ListDeviceCommandsResponse
	if err := json.Unmarshal([]byte(r.stdout), &picture); err != nil {
		t.Fatalf("get json: %v\n%s", err, r.stdout)
	}
	if err := protojson.Unmarshal(picture.Device, &fd); err != nil || fd.GetDevice().GetSerial() != "CT-00007" {
		t.Errorf("get json device: %v\n%s", err, r.stdout)
	}
	if err := protojson.Unmarshal(picture.RecentCommands, &cmds); err != nil || len(cmds.GetItems()) != 1 {
		t.Errorf("get json commands: %v\n%s", err, r.stdout)
	}
}
