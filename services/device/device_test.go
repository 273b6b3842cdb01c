package device_test

import (
	"strings"
	"testing"
	"time"

	"github.com/comfortech/platform/services/device"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := device.Config{DatabaseURL: "sqlite:x.db", DataAddr: "data:7001", BrokerMode: device.BrokerEmbedded}
	cases := []struct {
		name    string
		edit    func(c *device.Config)
		wantErr string
	}{
		{"embedded", func(*device.Config) {}, ""},
		{"no database", func(c *device.Config) { c.DatabaseURL = "" }, "DATABASE_URL"},
		{"no data service", func(c *device.Config) { c.DataAddr = "" }, "DATA_ADDR"},
		{"unknown broker", func(c *device.Config) { c.BrokerMode = "emqx" }, "BROKER_MODE"},
		{"mosquitto without account", func(c *device.Config) { c.BrokerMode = device.BrokerMosquitto }, "MOSQUITTO_URL"},
		{"mosquitto", func(c *device.Config) {
			c.BrokerMode = device.BrokerMosquitto
			c.Mosquitto = device.MosquittoConfig{URL: "tcp://m:1883", Username: "admin", Password: "pw"}
		}, ""},
		{"negative batch wait", func(c *device.Config) { c.Telemetry.BatchWait = -time.Millisecond }, "TELEMETRY_BATCH_WAIT"},
		{"enqueue wait past the keepalive", func(c *device.Config) { c.Telemetry.EnqueueWait = time.Minute }, "TELEMETRY_ENQUEUE_WAIT"},
		{"huge batches", func(c *device.Config) { c.Telemetry.BatchSize = 20000 }, "TELEMETRY_BATCH_SIZE"},
	}
	for _, c := range cases {
		cfg := ok
		c.edit(&cfg)
		err := cfg.Validate()
		if (c.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: %v, want error naming %q", c.name, err, c.wantErr)
		}
	}
}
