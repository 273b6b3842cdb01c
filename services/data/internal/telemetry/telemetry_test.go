package telemetry_test

import (
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/sqldb"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/app"
	"github.com/comfortech/platform/services/data/internal/telemetry"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore/tsstoretest"
)

// access is the core's answer to "how does this account reach this
// device", as a table.
type access struct {
	mu    sync.Mutex
	roles map[[2]string]app.AccessRole
}

func (a *access) DeviceAccess(_ context.Context, accountID, deviceID string) (app.AccessRole, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok := a.roles[[2]string{accountID, deviceID}]; ok {
		return r, nil
	}
	return app.AccessNone, &app.Error{Kind: app.ErrNotFound, Msg: "device not found"}
}

func (a *access) set(accountID, deviceID string, r app.AccessRole) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roles[[2]string{accountID, deviceID}] = r
}

// fixture is a service on a fresh database with a device, its owner and
// a member.
type fixture struct {
	svc                  *telemetry.Service
	db                   *sqldb.DB
	access               *access
	device, owner, other string
	member, stranger     string
	clock                *clock
	tel                  datav1.TelemetryServiceClient
	rules                datav1.AlertRuleServiceClient
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

var t0 = time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)

// eachDB runs fn against SQLite and PostgreSQL.
func eachDB(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Helper()
	for name, open := range map[string]func(testing.TB) *sqldb.DB{
		"sqlite":   func(tb testing.TB) *sqldb.DB { _, db := tsstoretest.OpenSQLite(tb); return db },
		"postgres": func(tb testing.TB) *sqldb.DB { _, db := tsstoretest.OpenPostgres(tb); return db },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newFixture(t, open(t), telemetry.Config{}))
		})
	}
}

func newFixture(t testing.TB, db *sqldb.DB, cfg telemetry.Config) *fixture {
	f := &fixture{
		db: db, access: &access{roles: map[[2]string]app.AccessRole{}}, clock: &clock{now: t0},
		device: uuid.NewString(), other: uuid.NewString(),
		owner: uuid.NewString(), member: uuid.NewString(), stranger: uuid.NewString(),
	}
	f.access.set(f.owner, f.device, app.AccessOwner)
	f.access.set(f.member, f.device, app.AccessMember)
	f.access.set(f.stranger, f.other, app.AccessOwner)
	svc, err := telemetry.New(context.Background(), db, f.access, cfg, nil, telemetry.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	f.tel, f.rules = serve(t, svc)
	if err := svc.DeviceClaimed(context.Background(), f.device, f.owner, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// testAccount is the metadata key carrying the caller's account id to
// the test server, which stands in for libs/rpc's token verification.
const testAccount = "x-test-account"

// as returns a context calling as accountID ("" = unauthenticated).
func as(accountID string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), testAccount, accountID)
}

// serve registers svc on an in-memory gRPC server whose interceptor
// authenticates the test's account, and returns clients of it.
func serve(t testing.TB, svc *telemetry.Service) (datav1.TelemetryServiceClient, datav1.AlertRuleServiceClient) {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if ids := md.Get(testAccount); len(ids) == 1 && ids[0] != "" {
			ctx = auth.WithPrincipal(ctx, &auth.Principal{Subject: ids[0]})
		}
		return h(ctx, req)
	}))
	svc.Register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return datav1.NewTelemetryServiceClient(conn), datav1.NewAlertRuleServiceClient(conn)
}

func rec(device string, seq int64, at time.Time, metrics map[string]float64) *datav1.TelemetryRecord {
	return &datav1.TelemetryRecord{DeviceId: device, Seq: seq, Time: timestamppb.New(at), Metrics: metrics}
}

func (f *fixture) append(t *testing.T, recs ...*datav1.TelemetryRecord) *datav1.AppendTelemetryResponse {
	t.Helper()
	resp, err := f.svc.AppendTelemetry(context.Background(), &datav1.AppendTelemetryRequest{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// outboxed is a message the service left in the outbox.
type outboxed struct {
	topic, key, ceType, ceID string
	value                    []byte
}

func (f *fixture) outbox(t *testing.T) []outboxed {
	t.Helper()
	rows, err := f.db.QueryContext(context.Background(), `SELECT topic, key, headers, value FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var out []outboxed
	for rows.Next() {
		var (
			m       outboxed
			key     []byte
			headers string
		)
		if err := rows.Scan(&m.topic, &key, &headers, &m.value); err != nil {
			t.Fatal(err)
		}
		var hs []struct{ Key, Value string }
		if err := json.Unmarshal([]byte(headers), &hs); err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			switch h.Key {
			case "ce_type":
				m.ceType = h.Value
			case "ce_id":
				m.ceID = h.Value
			}
		}
		m.key = string(key)
		out = append(out, m)
	}
	return out
}

func TestAppendIsIdempotentOnDeviceAndSeq(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, f *fixture) {
		batch := []*datav1.TelemetryRecord{
			rec(f.device, 1, t0, map[string]float64{"temperature": 21}),
			rec(f.device, 2, t0.Add(time.Second), map[string]float64{"temperature": 22}),
		}
		if r := f.append(t, batch...); r.Accepted != 2 || r.Duplicates != 0 {
			t.Fatalf("first append: %v", r)
		}
		if r := f.append(t, append(batch, rec(f.device, 3, t0.Add(2*time.Second), map[string]float64{"temperature": 23}))...); r.Accepted != 1 || r.Duplicates != 2 {
			t.Fatalf("replay: %v", r)
		}
		latest, err := f.svc.AppendTelemetryStatus(context.Background(), &datav1.AppendTelemetryRequest{Records: []*datav1.TelemetryRecord{rec("not-a-uuid", 1, t0, map[string]float64{"x": 1})}})
		if status.Code(err) != codes.InvalidArgument || latest != nil {
			t.Fatalf("bad device id: %v", err)
		}
	})
}

func TestQueryAggregateAndLatest(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, f *fixture) {
		ctx := as(f.member)
		var recs []*datav1.TelemetryRecord
		for i := range 150 { // one record every 2 s for 5 min
			recs = append(recs, rec(f.device, int64(i), t0.Add(time.Duration(i)*2*time.Second), map[string]float64{"temperature": float64(i % 10), "humidity": 40}))
		}
		f.append(t, recs...)

		var seen int
		req := &datav1.QueryTelemetryRequest{DeviceId: f.device, StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0.Add(time.Hour)), Metrics: []string{"temperature"}, PageSize: 40}
		for page := 0; page < 10; page++ {
			resp, err := f.tel.QueryTelemetry(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range resp.Items {
				if p.Seq != int64(seen) || len(p.Metrics) != 1 || p.Metrics["temperature"] != float64(seen%10) {
					t.Fatalf("point %d = %v", seen, p)
				}
				seen++
			}
			if resp.NextPageToken == "" {
				break
			}
			req.PageToken = resp.NextPageToken
		}
		if seen != 150 {
			t.Fatalf("paged through %d points, want 150", seen)
		}

		agg, err := f.tel.AggregateTelemetry(ctx, &datav1.AggregateTelemetryRequest{DeviceId: f.device, StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0.Add(10 * time.Minute)), Bucket: durationpb.New(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if len(agg.Items) != 5 {
			t.Fatalf("%d buckets, want 5", len(agg.Items))
		}
		m := agg.Items[0].Metrics["temperature"]
		if m.Count != 30 || m.Min != 0 || m.Max != 9 || m.Avg != 4.5 || !agg.Items[1].StartTime.AsTime().Equal(t0.Add(time.Minute)) {
			t.Fatalf("first bucket = %v", agg.Items[0])
		}

		latest, err := f.tel.GetLatestTelemetry(ctx, &datav1.GetLatestTelemetryRequest{DeviceId: f.device})
		if err != nil {
			t.Fatal(err)
		}
		if l := latest.Metrics["temperature"]; l.Value != 9 || !l.Time.AsTime().Equal(t0.Add(298*time.Second)) {
			t.Fatalf("latest = %v", latest)
		}
	})
}
