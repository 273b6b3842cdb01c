// Package allinone runs the whole Comfortech platform in one process, with
// embedded infrastructure in place of the real servers: the Kafka-protocol
// broker and the MQTT broker of package devstack. It is what `make run`
// starts and what the end-to-end tests import.
//
// Every part runs with the same code and configuration types as its own
// binary; only the wiring differs: listeners are opened here first (port 0
// in tests) and each part gets the addresses of the others.
package allinone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone/devstack"
	admingw "github.com/comfortech/platform/gateways/admin"
	authgw "github.com/comfortech/platform/gateways/auth"
	maingw "github.com/comfortech/platform/gateways/main"
	"github.com/comfortech/platform/libs/config"
	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/lifecycle"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/libs/web"
	"github.com/comfortech/platform/services/data"
	"github.com/comfortech/platform/services/device"
	"github.com/comfortech/platform/services/notify"
)

// Config configures the all-in-one platform.
type Config struct {
	// DataDir keeps every part's state: broker logs, databases, keys.
	DataDir string `env:"COMFORT_DATA_DIR" envDefault:".data"`
	// Host is the interface every listener binds to.
	Host string `env:"COMFORT_HOST" envDefault:"127.0.0.1"`
	// EphemeralPorts makes every listener take a free port instead of the
	// development ports, for tests and for running two stacks side by side.
	EphemeralPorts bool `env:"COMFORT_EPHEMERAL_PORTS" envDefault:"false"`
	// KafkaPartitions is the partition count of the platform's topics.
	KafkaPartitions int32 `env:"COMFORT_KAFKA_PARTITIONS" envDefault:"3"`
	// HTTP holds server timeouts and the drain timeout of every part.
	HTTP web.ServerConfig
	// Log selects the log level and format.
	Log logging.Config
}

// devPorts are the development ports of the architecture brief (§8). The
// standard 1883/5432/9092 are avoided: real brokers may run there.
var devPorts = map[string]int{
	"kafka": 19092, "mqtt": 11883, "devstack.ops": 9070,
	"data.grpc": 7001, "device.grpc": 7002, "notify.grpc": 7003,
	"data.ops": 9071, "device.ops": 9072, "notify.ops": 9073,
	"main-gateway.http": 8080, "auth-gateway.http": 8081, "admin-gateway.http": 8082,
	"main-gateway.ops": 9080, "auth-gateway.ops": 9081, "admin-gateway.ops": 9082,
}

// Endpoint is one address the platform serves.
type Endpoint struct {
	// Part is the part that serves it: kafka, mqtt, data, ...
	Part string
	// Kind is what is served there: grpc, ops, http, kafka, mqtt.
	Kind string
	// Addr is host:port.
	Addr string
}

// Platform is a started all-in-one platform.
type Platform struct {
	// Endpoints lists every address served, in start order.
	Endpoints []Endpoint
	// MQTTServiceUser and MQTTServicePassword are the credentials the
	// device service connects to the embedded broker with.
	MQTTServiceUser     string
	MQTTServicePassword config.Secret

	done chan error
}

// Addr returns the address of part's kind endpoint, or "".
func (p *Platform) Addr(part, kind string) string {
	for _, e := range p.Endpoints {
		if e.Part == part && e.Kind == kind {
			return e.Addr
		}
	}
	return ""
}

// Wait blocks until the platform has stopped and returns why.
func (p *Platform) Wait() error { return <-p.done }

// PrintEndpoints writes a table of what runs where.
func (p *Platform) PrintEndpoints(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "PART\tKIND\tADDRESS")
	for _, e := range p.Endpoints {
		addr := e.Addr
		switch e.Kind {
		case "ops":
			addr = "http://" + addr + "/readyz"
		case "http":
			addr = "http://" + addr
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Part, e.Kind, addr)
	}
	_ = tw.Flush()
}

// Start opens every listener, starts the embedded brokers and every part,
// and returns while they run. The platform stops when ctx ends; Wait
// returns after every part has drained.
func Start(ctx context.Context, cfg Config, log *zap.Logger) (*Platform, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	st := &starter{cfg: cfg, platform: &Platform{done: make(chan error, 1), MQTTServiceUser: "comfort-device-service"}}
	defer st.closeOnError()

	secret, err := st.secret("mqtt-service-password")
	if err != nil {
		return nil, err
	}
	st.platform.MQTTServicePassword = config.Secret(secret)

	// The brokers run as a process of their own, "devstack", with an ops
	// listener whose readiness checks them.
	infra := process.New("devstack", log.Named("devstack"), process.Config{HTTP: cfg.HTTP})
	kafkaBroker, err := devstack.StartKafka(st.addr("kafka"), filepath.Join(cfg.DataDir, "kafka"), cfg.KafkaPartitions)
	if err != nil {
		return nil, err
	}
	st.closers = append(st.closers, func() { _ = kafkaBroker.Run(canceled()) })
	st.add("kafka", "kafka", kafkaBroker.Addr)
	infra.Go("kafka", kafkaBroker.Run)
	pinger, err := kafka.NewPinger(kafka.Config{Brokers: []string{kafkaBroker.Addr}, ClientID: "devstack"})
	if err != nil {
		return nil, err
	}
	infra.Health.Add("kafka", pinger.Check)
	infra.OnStop(func() { _ = pinger.Close() })

	mqttBroker, err := devstack.StartMQTT(devstack.MQTTConfig{
		Addr: st.addr("mqtt"), Dir: filepath.Join(cfg.DataDir, "mqtt"),
		ServiceUser: st.platform.MQTTServiceUser, ServicePassword: secret,
	}, log.Named("mqtt"))
	if err != nil {
		return nil, err
	}
	st.closers = append(st.closers, func() { _ = mqttBroker.Run(canceled()) })
	st.add("mqtt", "mqtt", mqttBroker.Addr)
	infra.Go("mqtt", mqttBroker.Run)
	infra.Health.Add("mqtt", mqttBroker.Check)
	infraOps, err := st.listen("devstack", "ops")
	if err != nil {
		return nil, err
	}

	group := lifecycle.New(log)
	for _, part := range parts(cfg) {
		opts := make([]process.Option, 0, 2)
		l, err := st.listen(part.name, part.kind)
		if err != nil {
			return nil, err
		}
		if part.kind == "grpc" {
			opts = append(opts, process.WithGRPCListener(l))
		} else {
			opts = append(opts, process.WithHTTPListener(l))
		}
		opsL, err := st.listen(part.name, "ops")
		if err != nil {
			return nil, err
		}
		opts = append(opts, process.WithOpsListener(opsL))
		plog := log.Named(part.name)
		group.Add(part.name, func(ctx context.Context) error { return part.run(ctx, plog, opts...) })
	}

	st.closers = nil
	go func() { st.platform.done <- run(ctx, infra, infraOps, group) }()
	return st.platform, nil
}

// run runs the parts until ctx ends, and the infrastructure until the parts
// have drained, so that no part loses its brokers while it stops. An
// infrastructure failure stops the parts too.
func run(ctx context.Context, infra *process.Process, infraOps net.Listener, parts *lifecycle.Group) error {
	partsCtx, stopParts := context.WithCancel(ctx)
	defer stopParts()
	infraCtx, stopInfra := context.WithCancel(context.WithoutCancel(ctx))
	infraDone := make(chan error, 1)
	go func() {
		err := infra.Run(infraCtx, infraOps)
		stopParts()
		infraDone <- err
	}()
	err := parts.Run(partsCtx)
	stopInfra()
	return errors.Join(err, <-infraDone)
}

// part is one service or gateway: its name, the kind of its public
// listener (grpc or http) and how to run it.
type part struct {
	name string
	kind string
	run  func(ctx context.Context, log *zap.Logger, opts ...process.Option) error
}

// parts lists every part with the configuration the all-in-one gives it.
func parts(cfg Config) []part {
	return []part{
		{"data", "grpc", func(ctx context.Context, log *zap.Logger, opts ...process.Option) error {
			return data.Run(ctx, data.Config{HTTP: cfg.HTTP}, log, opts...)
		}},
		{"device", "grpc", func(ctx context.Context, log *zap.Logger, opts ...process.Option) error {
			return device.Run(ctx, device.Config{HTTP: cfg.HTTP}, log, opts...)
		}},
		{"notify", "grpc", func(ctx context.Context, log *zap.Logger, opts ...process.Option) error {
			return notify.Run(ctx, notify.Config{HTTP: cfg.HTTP}, log, opts...)
		}},
		{"main-gateway", "http", func(ctx context.Context, log *zap.Logger, opts ...process.Option) error {
			return maingw.Run(ctx, maingw.Config{HTTP: cfg.HTTP, BodyLimit: web.DefaultBodyLimit}, log, opts...)
		}},
		{"auth-gateway", "http", func(ctx context.Context, log *zap.Logger, opts ...process.Option) error {
			return authgw.Run(ctx, authgw.Config{HTTP: cfg.HTTP, BodyLimit: web.DefaultBodyLimit}, log, opts...)
		}},
		{"admin-gateway", "http", func(ctx context.Context, log *zap.Logger, opts ...process.Option) error {
			return admingw.Run(ctx, admingw.Config{HTTP: cfg.HTTP, BodyLimit: web.DefaultBodyLimit}, log, opts...)
		}},
	}
}

// starter collects what Start opened so that a failure half-way closes it.
type starter struct {
	cfg      Config
	platform *Platform
	closers  []func()
}

func (s *starter) closeOnError() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func (s *starter) add(part, kind, addr string) {
	s.platform.Endpoints = append(s.platform.Endpoints, Endpoint{Part: part, Kind: kind, Addr: addr})
}

func (s *starter) addr(key string) string {
	port := devPorts[key]
	if s.cfg.EphemeralPorts {
		port = 0
	}
	return net.JoinHostPort(s.cfg.Host, fmt.Sprint(port))
}

func (s *starter) listen(part, kind string) (net.Listener, error) {
	l, err := net.Listen("tcp", s.addr(part+"."+kind))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", part, kind, err)
	}
	s.closers = append(s.closers, func() { _ = l.Close() })
	s.add(part, kind, l.Addr().String())
	return l, nil
}

// secret returns the secret stored under name in the data directory,
// creating it on first start, so that credentials survive restarts.
func (s *starter) secret(name string) (string, error) {
	path := filepath.Join(s.cfg.DataDir, "secrets", name)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	v := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	return v, nil
}

// canceled returns a context that has already ended, to stop a broker
// that was started before a later step failed.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
