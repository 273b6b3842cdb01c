package telemetry

import (
	"context"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	"github.com/comfortech/platform/services/data/internal/telemetry/tsstore"
)

// RecentAlerts is how many alerts FleetTelemetry gives, newest first
// (datav1.FleetDevice.recent_alerts).
const RecentAlerts = 20

// FleetTelemetry sets the telemetry part of an operator's picture of
// fd.Device: the latest value of every metric, every alert rule and the
// most recent alerts. It checks no access: FleetService, its only caller,
// is for administrators, which the server's role check ensures.
func (s *Service) FleetTelemetry(ctx context.Context, fd *datav1.FleetDevice) error {
	deviceID := fd.GetDevice().GetId()
	latest, err := s.store.LatestValues(ctx, deviceID)
	if err != nil {
		return err
	}
	fd.LatestTelemetry = fromLatest(latest)
	fd.AlertRules = nil
	var after *tsstore.RuleCursor
	for {
		rules, err := s.store.ListRules(ctx, deviceID, after, maxListPage)
		if err != nil {
			return err
		}
		for _, r := range rules {
			fd.AlertRules = append(fd.AlertRules, fromRule(r))
		}
		if len(rules) < maxListPage {
			break
		}
		last := rules[len(rules)-1]
		after = &tsstore.RuleCursor{CreateTime: last.CreateTime, ID: last.ID}
	}
	alerts, err := s.store.ListAlerts(ctx, deviceID, nil, nil, RecentAlerts)
	if err != nil {
		return err
	}
	fd.RecentAlerts = make([]*datav1.Alert, 0, len(alerts))
	for _, a := range alerts {
		fd.RecentAlerts = append(fd.RecentAlerts, fromAlert(a))
	}
	return nil
}
