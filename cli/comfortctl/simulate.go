package comfortctl

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/comfortech/platform/services/device/simulator"
)

func (a *app) simulateCommand() *cobra.Command {
	var (
		file, broker               string
		devices                    int
		cfg                        simulator.Config
		duration, statsEvery, wait time.Duration
		verbose                    bool
	)
	cmd := &cobra.Command{
		Use:   "simulate -f CREDENTIALS",
		Short: "Run a fleet of virtual devices over MQTT from a credentials file",
		Long: `Run the device simulator (services/device/simulator) against the MQTT
broker: each device of the credentials file (what devices provision --out
writes: .json or .csv of id, secret, serial, model) connects, publishes
telemetry, answers commands and applies desired state. A progress bar follows
the fleet connecting; then the fleet's counters are printed every
--stats-every, and a last time when --duration ends or on Ctrl-C.

Exits 1 when no device could connect at all.`,
		Args: exactArgs(0, "no arguments (the fleet is -f CREDENTIALS)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if devices < 0 || duration < 0 || statsEvery <= 0 || wait <= 0 || cfg.Interval < 0 || cfg.Rate < 0 || cfg.ConnectRate < 0 {
				return usagef("counts, durations and rates must not be negative; --stats-every and --connect-wait must be positive")
			}
			creds, err := simulator.LoadCredentials(file)
			if err != nil {
				return err
			}
			if devices > 0 && devices < len(creds) {
				creds = creds[:devices]
			}
			cfg.Broker, cfg.Devices = broker, creds
			log := zap.NewNop()
			if verbose {
				log = zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
					zapcore.AddSync(a.stderr), zap.InfoLevel))
			}
			fleet, err := simulator.New(cfg, log)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() { done <- fleet.Run(ctx) }()
			ended := a.watchConnects(fleet, len(creds), wait, done)
			for t := time.NewTicker(statsEvery); !ended; {
				select {
				case err = <-done:
					t.Stop()
					ended = true
				case <-t.C:
					a.printStats(fleet.Stats(), false)
				}
			}
			if err == nil {
				// watchConnects took the result when the run ended early.
				select {
				case err = <-done:
				default:
				}
			}
			final := fleet.Stats()
			a.printStats(final, true)
			if err != nil {
				return err
			}
			if final.Connects == 0 {
				return fmt.Errorf("no device could connect to %s", broker)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "credentials file (.json or .csv: id, secret, serial, model)")
	f.StringVar(&broker, "broker", defaultMQTT, "MQTT broker URL (tcp://, tls://)")
	f.IntVar(&devices, "devices", 0, "run the first N devices of the file (0: all)")
	f.DurationVar(&cfg.Interval, "interval", 5*time.Second, "each device's telemetry period")
	f.Float64Var(&cfg.Rate, "rate", 0, "fleet-wide telemetry messages per second (overrides --interval)")
	f.Float64Var(&cfg.ConnectRate, "connect-rate", 200, "connection attempts per second across the fleet")
	f.Float64Var(&cfg.FlapProbability, "flap-probability", 0, "chance per period that a device drops offline for a while")
	f.Float64Var(&cfg.EventProbability, "event-probability", 0, "chance per period that a device raises an alarm")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: on Ctrl-C)")
	f.DurationVar(&statsEvery, "stats-every", 5*time.Second, "how often to print the fleet's counters")
	f.DurationVar(&wait, "connect-wait", time.Minute, "how long the progress bar waits for the whole fleet to connect")
	f.BoolVarP(&verbose, "verbose", "v", false, "log the simulator's connection events on stderr")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// watchConnects shows a progress bar of the fleet connecting until every
// device is connected, wait passes, or the run ends; it reports whether the
// run ended (its result is then back in done).
func (a *app) watchConnects(fleet *simulator.Fleet, total int, wait time.Duration, done chan error) bool {
	bar := a.progress(total, "connecting")
	deadline := time.After(wait)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			_ = bar.Exit()
			done <- err
			return true
		case <-deadline:
			_ = bar.Exit()
			fmt.Fprintf(a.stderr, "\n%d of %d devices connected after %s; the others keep trying.\n", fleet.Stats().Connected, total, wait)
			return false
		case <-tick.C:
			n := fleet.Stats().Connected
			_ = bar.Set(n)
			if n >= total {
				return false
			}
		}
	}
}

// printStats writes one line of the fleet's counters: text, or a JSON
// object per line with -o json.
func (a *app) printStats(s simulator.Stats, final bool) {
	now := time.Now()
	if a.output == "json" {
		b, err := json.Marshal(struct {
			Time  time.Time `json:"time"`
			Final bool      `json:"final"`
			simulator.Stats
		}{now.UTC(), final, s})
		if err == nil {
			fmt.Fprintln(a.stdout, string(b))
		}
		return
	}
	label := now.Format(time.TimeOnly)
	if final {
		label = "final"
	}
	fmt.Fprintf(a.stdout, "%s %s\n", label, s)
}
