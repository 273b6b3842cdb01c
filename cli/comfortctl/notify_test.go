package comfortctl_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/kafka/kafkatest"
	eventsv1 "github.com/comfortech/platform/proto/comfortech/events/v1"
)

// TestNotifySend publishes through comfortctl to an embedded broker and
// reads the outbox records back; a bad level is a usage error.
func TestNotifySend(t *testing.T) {
	t.Parallel()
	cluster := kafkatest.NewCluster(t)
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	account := uuid.NewString()
	config := []string{"--config", filepath.Join(t.TempDir(), "none.json")}
	r := run(t, "", append(config, "-o", "json", "notify", "send", "--brokers", brokers, "--account", account,
		"--event-type", "device.fault", "--level", "critical", "--count", "2")...).want(t, 0, "send")
	var out struct{ Published int }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Published != 2 {
		t.Errorf("output %q", r.stdout)
	}
	for _, m := range kafkatest.ReadTopic(t, cluster.ListenAddrs(), "notifications.outbox", 2, 10*time.Second) {
		var n eventsv1.OutboxNotification
		if ev, err := kafka.DecodeEvent(&m, &n); err != nil || ev.Source != "/cli/comfortctl" || n.GetAccountId() != account || n.GetLevel() != "critical" {
			t.Errorf("record %v %+v: %v", &n, ev, err)
		}
	}
	run(t, "", append(config, "notify", "send", "--brokers", brokers, "--account", account, "--level", "fatal")...).want(t, 2, "bad level")
	run(t, "", append(config, "notify", "send", "--brokers", brokers)...).want(t, 2, "no account")
}
