package data_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/comfortech/platform/libs/sqldb"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/store/storetest"
)

// The benchmark fleet: 100,000 devices of 5 models and 8 firmware
// versions; 80 % claimed by 20,000 accounts (about 4 devices each), 60 %
// in their owner's home; 35 % online; 95 % seen within the last 30 days,
// the rest never.
const (
	benchDevices  = 100_000
	benchAccounts = 20_000
	benchDeepPage = 50 // the deep page: after 50 pages of 100, device 5,001 on
)

var (
	benchModels   = []string{"thermostat-t1", "thermostat-t2", "heater-h1", "heater-h2", "purifier-p1"}
	benchFirmware = []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0", "2.0.0", "2.1.0", "2.2.0", "3.0.0"}
)

// seedFleet fills the service's database with the benchmark fleet in a
// few set-based statements (generate_series), then vacuums and analyses
// it, as a fleet that grew over time would be.
func seedFleet(b *testing.B, db *sqldb.DB, now time.Time) {
	ctx := context.Background()
	start := time.Now()
	models, firmware := "ARRAY['"+strings.Join(benchModels, "','")+"']", "ARRAY['"+strings.Join(benchFirmware, "','")+"']"
	nowUS := now.UnixMicro()
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO accounts (id, phone, name, email, locale, timezone, created_us, updated_us)
			SELECT md5('account' || n)::uuid::text, '+7900' || lpad(n::text, 7, '0'), 'User ' || n, 'user' || n || '@example.com',
				'en', 'UTC', %[1]d - n * 1000000, %[1]d - n * 1000000
			FROM generate_series(0::bigint, %[2]d - 1) AS n`, nowUS, benchAccounts),
		fmt.Sprintf(`INSERT INTO homes (id, owner_id, name, created_us, updated_us)
			SELECT md5('home' || n)::uuid::text, md5('account' || n)::uuid::text, 'Home', %[1]d, %[1]d
			FROM generate_series(0::bigint, %[2]d - 1) AS n`, nowUS, benchAccounts),
		// Devices: n's owner is account n %% 20,000 for 8 devices in 10;
		// 6 in 10 are in that owner's home.
		fmt.Sprintf(`INSERT INTO devices (id, serial, model, firmware_version, claim_code_hash, name, owner_id, home_id,
				online, last_seen_us, claimed_us, created_us, updated_us)
			SELECT md5('device' || n)::uuid::text, 'CT-' || lpad(n::text, 6, '0'),
				(%[3]s)[1 + (n * 7919) %% 5], (%[4]s)[1 + (n * 104729) %% 8], md5('code' || n), 'Device ' || n,
				CASE WHEN n %% 10 < 8 THEN md5('account' || n %% %[5]d)::uuid::text END,
				CASE WHEN n %% 10 < 6 THEN md5('home' || n %% %[5]d)::uuid::text END,
				(n * 31) %% 100 < 35,
				CASE WHEN (n * 17) %% 100 < 95 THEN %[1]d - ((n::bigint * 2654435761) %% 2592000) * 1000000 END,
				CASE WHEN n %% 10 < 8 THEN %[2]d + n END, %[2]d + n, %[2]d + n
			FROM generate_series(0::bigint, %[6]d - 1) AS n`,
			nowUS, now.AddDate(-1, 0, 0).UnixMicro(), models, firmware, benchAccounts, benchDevices),
		`VACUUM ANALYZE accounts`, `VACUUM ANALYZE homes`, `VACUUM ANALYZE devices`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatalf("seed: %v\n%s", err, q)
		}
	}
	b.Logf("seeded %d devices, %d accounts and homes in %v", benchDevices, benchAccounts, time.Since(start).Round(time.Millisecond))
}

// fleetQuery is one representative filter combination of the admin panel.
type fleetQuery struct {
	name string
	req  *datav1.ListFleetDevicesRequest
}

// fleetQueries are the filter combinations measured; owner and home are
// those of one claimed device.
func fleetQueries(now time.Time, owner, home string) []fleetQuery {
	ts := timestamppb.New
	return []fleetQuery{
		{"all", &datav1.ListFleetDevicesRequest{}},
		{"model", &datav1.ListFleetDevicesRequest{Model: "heater-h2"}},
		{"model+firmware", &datav1.ListFleetDevicesRequest{Model: "thermostat-t1", FirmwareVersion: "2.0.0"}},
		{"online", &datav1.ListFleetDevicesRequest{Online: new(true)}},
		{"model+online+claimed", &datav1.ListFleetDevicesRequest{Model: "purifier-p1", Online: new(true), Claimed: new(true)}},
		{"unclaimed", &datav1.ListFleetDevicesRequest{Claimed: new(false)}},
		{"seen-last-24h", &datav1.ListFleetDevicesRequest{LastSeenAfter: ts(now.Add(-24 * time.Hour))}},
		{"offline+silent-7d", &datav1.ListFleetDevicesRequest{Online: new(false), LastSeenBefore: ts(now.AddDate(0, 0, -7))}},
		{"firmware+seen-7d", &datav1.ListFleetDevicesRequest{FirmwareVersion: "1.0.0", LastSeenAfter: ts(now.AddDate(0, 0, -7))}},
		{"serial-prefix", &datav1.ListFleetDevicesRequest{SerialPrefix: "CT-04"}},
		{"serial-prefix+online", &datav1.ListFleetDevicesRequest{SerialPrefix: "CT-07", Online: new(true)}},
		{"owner", &datav1.ListFleetDevicesRequest{OwnerAccountId: owner}},
		{"home", &datav1.ListFleetDevicesRequest{HomeId: home}},
	}
}

// BenchmarkFleetListPostgres measures FleetService.ListFleetDevices
// through the running service (gRPC, token check, validation, store and
// total) on PostgreSQL over 100,000 devices: the first page and a deep
// page (the 51st) of each representative filter combination, then all of
// them in turn. Each call is timed; p50-ms and p99-ms are reported, and
// the last line says whether the target, a p99 of at most 50 ms, is met.
// Run alone on a quiet machine for figures without other load.
func BenchmarkFleetListPostgres(b *testing.B) {
	dbURL := storetest.PostgresURL(b)
	s := startWith(b, dbURL, zap.NewNop())
	db, err := sqldb.Open(context.Background(), dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	now := time.Now()
	seedFleet(b, db, now)
	var owner, home string
	if err := db.QueryRow(`SELECT owner_id, home_id FROM devices WHERE serial = 'CT-042421'`).Scan(&owner, &home); err != nil {
		b.Fatal(err)
	}

	fleet := datav1.NewFleetServiceClient(s.conn)
	token := func() context.Context { return as(s.idp.AdminLogin(b).AccessToken) }
	type call struct {
		name string
		req  *datav1.ListFleetDevicesRequest
	}
	var calls []call
	ctx := token()
	for _, q := range fleetQueries(now, owner, home) {
		first, err := fleet.ListFleetDevices(ctx, q.req)
		if err != nil {
			b.Fatalf("%s: %v", q.name, err)
		}
		b.Logf("%-22s total_size %6d", q.name, first.GetTotalSize())
		calls = append(calls, call{q.name + "/first", q.req})
		// The deep page: follow the tokens, as a client paging would.
		deep := proto.Clone(q.req).(*datav1.ListFleetDevicesRequest)
		resp := first
		for range benchDeepPage {
			if resp.GetNextPageToken() == "" {
				break
			}
			deep.PageToken = resp.GetNextPageToken()
			if resp, err = fleet.ListFleetDevices(ctx, deep); err != nil {
				b.Fatalf("%s: %v", q.name, err)
			}
		}
		if deep.GetPageToken() != "" && resp.GetNextPageToken() != "" {
			calls = append(calls, call{q.name + "/deep", deep})
		}
	}

	// measure times each call of cs in turn and reports the percentiles;
	// it returns the latencies.
	measure := func(b *testing.B, cs []call) []time.Duration {
		ctx := token()
		var lat []time.Duration
		i := 0
		for b.Loop() {
			c := cs[i%len(cs)]
			i++
			t0 := time.Now()
			if _, err := fleet.ListFleetDevices(ctx, c.req); err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
		b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
		return lat
	}
	var worst struct {
		name string
		p99  time.Duration
	}
	for _, c := range calls {
		b.Run(c.name, func(b *testing.B) {
			if p99 := percentile(measure(b, []call{c}), 99); p99 > worst.p99 {
				worst.name, worst.p99 = c.name, p99
			}
		})
	}
	// Every combination and page in turn, equally often; its log line is
	// the summary (a leaf benchmark's log is printed without -v).
	b.Run("mixed", func(b *testing.B) {
		lat := measure(b, calls)
		p99 := percentile(lat, 99)
		verdict := "met"
		if p99 > 50*time.Millisecond {
			verdict = "NOT met"
		}
		b.Logf("fleet list with filters over %d devices on PostgreSQL, %d filter combinations and pages in turn: "+
			"p50 %.1f ms, p99 %.1f ms over %d calls (target p99 ≤ 50 ms: %s); slowest alone: %s, p99 %.1f ms",
			benchDevices, len(calls), ms(percentile(lat, 50)), ms(p99), len(lat), verdict, worst.name, ms(worst.p99))
	})
}

// percentile returns the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
