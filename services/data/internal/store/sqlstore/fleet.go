package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/comfortech/platform/libs/sqldb"
	"github.com/comfortech/platform/services/data/internal/app"
)

// fleetWhere is the WHERE clause of f over devices d, with its arguments
// numbered from 1.
func fleetWhere(f app.FleetFilter) (string, []any) {
	var (
		b    strings.Builder
		args []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + itoa(len(args))
	}
	b.WriteString(" WHERE TRUE")
	if f.Model != "" {
		b.WriteString(" AND d.model = " + arg(f.Model))
	}
	if f.FirmwareVersion != "" {
		b.WriteString(" AND d.firmware_version = " + arg(f.FirmwareVersion))
	}
	if f.Online != nil {
		b.WriteString(" AND d.online = " + arg(*f.Online))
	}
	if f.OwnerID != "" {
		b.WriteString(" AND d.owner_id = " + arg(f.OwnerID))
	}
	if f.HomeID != "" {
		b.WriteString(" AND d.home_id = " + arg(f.HomeID))
	}
	switch {
	case f.Claimed == nil:
	case *f.Claimed:
		b.WriteString(" AND d.owner_id IS NOT NULL")
	default:
		b.WriteString(" AND d.owner_id IS NULL")
	}
	if !f.LastSeenAfter.IsZero() {
		b.WriteString(" AND d.last_seen_us >= " + arg(micros(f.LastSeenAfter)))
	}
	if !f.LastSeenBefore.IsZero() {
		b.WriteString(" AND (d.last_seen_us < " + arg(micros(f.LastSeenBefore)) + " OR d.last_seen_us IS NULL)")
	}
	if f.SerialPrefix != "" {
		// A range on the serial index; serials compare byte by byte in
		// both databases (migration 2), so it holds exactly the serials
		// that start with the prefix.
		b.WriteString(" AND d.serial >= " + arg(f.SerialPrefix))
		if end := prefixEnd(f.SerialPrefix); end != "" {
			b.WriteString(" AND d.serial < " + arg(end))
		}
	}
	return b.String(), args
}

// prefixEnd returns the least string above every string that starts with
// p in byte order, or "" when there is none (p is all 0xFF bytes).
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xFF {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// planEach returns args for a query that PostgreSQL must plan for the
// values at hand: there they lead with pgx's QueryExecModeExec, an
// unnamed statement, planned anew each time. A cached prepared statement,
// pgx's default, switches to a generic plan after five runs, made for an
// average value of each parameter; for the fleet's filters that is often
// a bad one (a sequential scan for "online = $1", whose values are 35 and
// 65 % of the fleet, not 50). Planning these queries costs far less than
// that.
func (q queries) planEach(args []any) []any {
	if q.dialect != sqldb.Postgres {
		return args
	}
	return append([]any{pgx.QueryExecModeExec}, args...)
}

// ListFleetDevices implements app.Queries.
func (q queries) ListFleetDevices(ctx context.Context, f app.FleetFilter, after app.Cursor, limit int) ([]app.Device, error) {
	where, args := fleetWhere(f)
	query, args := listQuery(`SELECT `+deviceCols+` FROM devices d`+where, args, "", "d.serial", after, limit)
	return collect(ctx, q.q, "list fleet devices", query, q.planEach(args), func(s scanner) (app.Device, error) { return scanDevice(s) })
}

// CountFleetDevices implements app.Queries. It counts at most exactUpTo+1
// matching rows, which the filters' indexes make cheap; beyond that
// PostgreSQL answers its planner's estimate (a count of every match grows
// with the fleet), SQLite, which keeps no such statistics, the exact count.
func (q queries) CountFleetDevices(ctx context.Context, f app.FleetFilter, exactUpTo int) (int64, error) {
	where, args := fleetWhere(f)
	var n int64
	if q.dialect != sqldb.Postgres {
		// No estimate to fall back on: one exact count, not a capped one first.
		err := q.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices d`+where, args...).Scan(&n)
		return n, wrap("count fleet devices", err)
	}
	matches := `SELECT 1 FROM devices d` + where
	err := q.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM (`+matches+` LIMIT `+itoa(exactUpTo+1)+`) capped`, q.planEach(args)...).Scan(&n)
	if err != nil || n <= int64(exactUpTo) {
		return n, wrap("count fleet devices", err)
	}
	est, err := q.estimate(ctx, matches, args)
	if err != nil {
		return 0, wrap("estimate fleet devices", err)
	}
	return max(est, int64(exactUpTo)+1), nil
}

// estimate returns PostgreSQL's estimate of the number of rows query
// returns, from its plan.
func (q queries) estimate(ctx context.Context, query string, args []any) (int64, error) {
	var plan []byte
	if err := q.q.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) `+query, q.planEach(args)...).Scan(&plan); err != nil {
		return 0, err
	}
	var out []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if err := json.Unmarshal(plan, &out); err != nil || len(out) != 1 {
		return 0, fmt.Errorf("unexpected plan %.200s: %v", plan, err)
	}
	return int64(out[0].Plan.Rows), nil
}
