package device_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
)

// TestTelemetryDataServiceOutage: the data service goes away for a few
// seconds while a device publishes telemetry; once it is back, every
// sample the broker accepted is in it.
func TestTelemetryDataServiceOutage(t *testing.T) {
	t.Parallel()
	s := start(t, nil)

	devs := s.provision(t, 1)
	ownerCtx := s.owner(t, "+79510000951", devs[0])
	raw := s.device(t, devs[0])
	topic := "devices/" + devs[0].ID + "/telemetry"
	begin := time.Now().Add(-time.Minute)

	// Every publish below is acknowledged by the broker (publish fails the
	// test otherwise): these are the samples that must not be lost.
	seq := 0
	send := func(n int) {
		for range n {
			seq++
			publish(t, raw, topic, []byte(fmt.Sprintf(`{"ts":%d,"seq":%d,"metrics":{"temperature":%d}}`,
				time.Now().UnixMilli(), seq, 20+seq%5)))
			time.Sleep(15 * time.Millisecond)
		}
	}
	send(50)
	s.data.stop()
	for down := time.Now(); time.Since(down) < 3*time.Second; {
		send(1)
	}
	s.data.restart()
	send(50)
	total := seq

	telemetry := datav1.NewTelemetryServiceClient(s.dataConn)
	got := map[int64]bool{}
	eventually(t, "every sample in the data service", 60*time.Second, func() bool {
		clear(got)
		req := &datav1.QueryTelemetryRequest{DeviceId: devs[0].ID, StartTime: timestamppb.New(begin),
			EndTime: timestamppb.New(time.Now().Add(time.Minute)), PageSize: 1000}
		r, err := telemetry.QueryTelemetry(ownerCtx, req)
		if err != nil {
			return false
		}
		for _, p := range r.GetItems() {
			got[p.GetSeq()] = true
		}
		return len(got) == total
	})
	for i := int64(1); i <= int64(total); i++ {
		if !got[i] {
			t.Errorf("sample %d lost", i)
		}
	}
}
