// Command simulator runs a fleet of virtual devices against an MQTT broker
// (see package simulator) and prints the fleet's counters every few seconds.
// It is configured by environment variables, e.g.
//
//	SIM_BROKER=tcp://localhost:11883 SIM_CREDENTIALS=devices.csv SIM_DEVICES=1000 SIM_RATE=5000 SIM_DURATION=1m simulator
package main

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/services/device/simulator"
)

// config is the simulator's configuration, read from the environment.
type config struct {
	Broker      string        `env:"SIM_BROKER" envDefault:"tcp://localhost:11883"`
	Credentials string        `env:"SIM_CREDENTIALS,required"` // .json or .csv: id, secret, serial, model
	Devices     int           `env:"SIM_DEVICES"`              // run the first N devices of the file (0: all)
	Interval    time.Duration `env:"SIM_INTERVAL" envDefault:"5s"`
	Rate        float64       `env:"SIM_RATE"` // fleet-wide messages/s; overrides SIM_INTERVAL
	ConnectRate float64       `env:"SIM_CONNECT_RATE" envDefault:"200"`
	Flap        float64       `env:"SIM_FLAP_PROBABILITY"`
	Events      float64       `env:"SIM_EVENT_PROBABILITY"`
	Duration    time.Duration `env:"SIM_DURATION"` // 0: until interrupted
	StatsEvery  time.Duration `env:"SIM_STATS_EVERY" envDefault:"5s"`
	Log         logging.Config
}

func main() {
	process.Main("simulator", func(c config) logging.Config { return c.Log }, run)
}

// run loads the credentials, runs the fleet for the configured duration and
// prints its stats periodically.
func run(ctx context.Context, c config, log *zap.Logger) error {
	creds, err := simulator.LoadCredentials(c.Credentials)
	if err != nil {
		return err
	}
	if c.Devices > 0 && c.Devices < len(creds) {
		creds = creds[:c.Devices]
	}
	f, err := simulator.New(simulator.Config{Broker: c.Broker, Devices: creds, Interval: c.Interval, Rate: c.Rate,
		ConnectRate: c.ConnectRate, FlapProbability: c.Flap, EventProbability: c.Events}, log)
	if err != nil {
		return err
	}
	if c.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	go func() {
		for t := time.NewTicker(c.StatsEvery); ; {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				fmt.Println(time.Now().Format(time.TimeOnly), f.Stats())
			}
		}
	}()
	err = f.Run(ctx)
	fmt.Println("final:", f.Stats())
	return err
}
