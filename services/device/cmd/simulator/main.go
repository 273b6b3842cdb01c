// Command simulator runs a fleet of virtual devices against an MQTT broker
// (see package simulator) and prints the fleet's counters every few seconds.
// It is configured by environment variables. The devices' credentials come
// from a file, e.g.
//
//	SIM_BROKER=tcp://localhost:11883 SIM_CREDENTIALS=devices.csv SIM_DEVICES=1000 SIM_RATE=5000 SIM_DURATION=1m simulator
//
// or are provisioned first through the admin gateway (see package
// provision), with an administrator's token or username and password, and
// kept in SIM_CREDENTIALS (a new file) for later runs:
//
//	SIM_PROVISION=100 SIM_ADMIN_PASSWORD=... SIM_CREDENTIALS=devices.json simulator
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/config"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/services/device/simulator"
	"github.com/comfortech/platform/services/device/simulator/provision"
)

// settings is the simulator's configuration, read from the environment.
type settings struct {
	Broker      string        `env:"SIM_BROKER" envDefault:"tcp://localhost:11883"`
	Credentials string        `env:"SIM_CREDENTIALS"` // .json or .csv: id, secret, serial, model
	Devices     int           `env:"SIM_DEVICES"`     // run the first N devices of the file (0: all)
	Interval    time.Duration `env:"SIM_INTERVAL" envDefault:"5s"`
	Rate        float64       `env:"SIM_RATE"` // fleet-wide messages/s; overrides SIM_INTERVAL
	ConnectRate float64       `env:"SIM_CONNECT_RATE" envDefault:"200"`
	Flap        float64       `env:"SIM_FLAP_PROBABILITY"`
	Events      float64       `env:"SIM_EVENT_PROBABILITY"`
	Duration    time.Duration `env:"SIM_DURATION"` // 0: until interrupted
	StatsEvery  time.Duration `env:"SIM_STATS_EVERY" envDefault:"5s"`
	Provision   provisioning
	Log         logging.Config
}

// provisioning says how to provision the fleet through the admin API
// instead of reading SIM_CREDENTIALS.
type provisioning struct {
	Count        int           `env:"SIM_PROVISION"` // devices to provision before running (0: read SIM_CREDENTIALS)
	AdminURL     string        `env:"SIM_ADMIN_URL" envDefault:"http://localhost:8082"`
	Token        config.Secret `env:"SIM_ADMIN_TOKEN"` // an administrator's access token; or log in:
	AuthURL      string        `env:"SIM_AUTH_URL" envDefault:"http://localhost:8081"`
	Username     string        `env:"SIM_ADMIN_USERNAME" envDefault:"admin"`
	Password     config.Secret `env:"SIM_ADMIN_PASSWORD"`
	Model        string        `env:"SIM_MODEL" envDefault:"thermostat-t1"`
	SerialPrefix string        `env:"SIM_SERIAL_PREFIX"` // default SIM-<UTC time>
}

// Validate implements config.Validator.
func (c *settings) Validate() error {
	p := c.Provision
	switch {
	case p.Count < 0:
		return errors.New("SIM_PROVISION must not be negative")
	case p.Count == 0 && c.Credentials == "":
		return errors.New("SIM_CREDENTIALS is required unless SIM_PROVISION provisions the devices")
	case p.Count > 0 && p.Token == "" && p.Password == "":
		return errors.New("SIM_PROVISION needs SIM_ADMIN_TOKEN or SIM_ADMIN_PASSWORD")
	}
	return nil
}

func main() {
	process.Main("simulator", func(c settings) logging.Config { return c.Log }, run)
}

// run loads or provisions the credentials, runs the fleet for the
// configured duration and prints its stats periodically.
func run(ctx context.Context, c settings, log *zap.Logger) error {
	creds, err := credentials(ctx, c, log)
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

// credentials reads SIM_CREDENTIALS, or provisions SIM_PROVISION devices
// and, when SIM_CREDENTIALS names a file, saves them there first: the
// secrets are shown once.
func credentials(ctx context.Context, c settings, log *zap.Logger) ([]simulator.Credential, error) {
	p := c.Provision
	if p.Count == 0 {
		return simulator.LoadCredentials(c.Credentials)
	}
	if c.Credentials != "" {
		// Refuse before provisioning rather than lose the secrets after.
		if _, err := os.Stat(c.Credentials); err == nil {
			return nil, fmt.Errorf("SIM_CREDENTIALS %s exists: provisioning writes a new file", c.Credentials)
		}
	}
	token := p.Token.Reveal()
	if token == "" {
		var err error
		if token, err = provision.Login(ctx, nil, p.AuthURL, p.Username, p.Password.Reveal()); err != nil {
			return nil, err
		}
	}
	client := &provision.Client{AdminURL: p.AdminURL, Token: token}
	creds, perr := client.Provision(ctx, provision.Request{Count: p.Count, Model: p.Model, SerialPrefix: p.SerialPrefix})
	log.Info("provisioned", zap.Int("devices", len(creds)), zap.String("admin_url", p.AdminURL))
	if c.Credentials != "" && len(creds) > 0 {
		if err := simulator.SaveCredentials(c.Credentials, creds); err != nil {
			return nil, errors.Join(perr, err)
		}
		log.Info("credentials saved", zap.String("file", c.Credentials))
	}
	if perr != nil {
		return nil, perr
	}
	return creds, nil
}
