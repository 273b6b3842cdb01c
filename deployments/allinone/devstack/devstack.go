// Package devstack runs, inside one process, the infrastructure that
// production gets from real servers: a Kafka-protocol broker (kfake) and an
// MQTT 3.1.1 broker (mochi-mqtt). Both keep their state under a data
// directory, so a restart of `make run` keeps events and queued messages.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/hooks/storage/pebble"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

// Topics are created at start so that consumers can join their groups
// before the first event is produced.
var Topics = []string{
	"device.telemetry", "device.lifecycle", "account.events", "alerts",
	"notifications.outbox", "notifications.delivery", "audit",
	"device.telemetry.dlq", "device.lifecycle.dlq", "account.events.dlq", "alerts.dlq",
	"notifications.outbox.dlq", "notifications.delivery.dlq", "audit.dlq",
}

// Kafka is the embedded Kafka-protocol broker.
type Kafka struct {
	cluster *kfake.Cluster
	// Addr is the bootstrap address clients connect to.
	Addr string
}

// StartKafka starts a one-broker cluster listening on addr (host:port; port
// 0 picks a free one), persisting under dir when dir is not empty.
func StartKafka(addr, dir string, partitions int32) (*Kafka, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kafka: listen on %s: %w", addr, err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(func(string, string) (net.Listener, error) { return l, nil }),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.AllowAutoTopicCreation(),
		kfake.SeedTopics(partitions, Topics...),
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("kafka: %w", err)
		}
		opts = append(opts, kfake.DataDir(dir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &Kafka{cluster: c, Addr: l.Addr().String()}, nil
}

// Run keeps the broker up until ctx ends, then closes it, flushing its
// state to disk.
func (k *Kafka) Run(ctx context.Context) error {
	<-ctx.Done()
	k.cluster.Close()
	return nil
}

// MQTTConfig configures the embedded MQTT broker.
type MQTTConfig struct {
	// Addr is host:port; port 0 picks a free one.
	Addr string
	// Dir keeps retained messages, sessions and queued QoS 1 messages.
	// Empty: in memory.
	Dir string
	// ServiceUser and ServicePassword are the credentials of the device
	// service, the only client the default authentication admits.
	ServiceUser, ServicePassword string
	// Auth, when set, replaces the default authentication: the device
	// service's hook, which admits devices by their credentials and keeps
	// each under its own topics.
	Auth mqtt.Hook
}

// MQTT is the embedded MQTT broker.
type MQTT struct {
	server *mqtt.Server
	// Addr is the address devices and the device service connect to.
	Addr string

	user, password string
}

// StartMQTT starts the broker and its listener.
func StartMQTT(cfg MQTTConfig, log *zap.Logger) (*MQTT, error) {
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Logger:       slog.New(zapslog.NewHandler(log.Core(), zapslog.WithName("mqtt"))),
	})
	var authErr error
	if cfg.Auth != nil {
		authErr = srv.AddHook(cfg.Auth, nil)
	} else {
		authErr = srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{
			Auth: auth.AuthRules{{Username: auth.RString(cfg.ServiceUser), Password: auth.RString(cfg.ServicePassword), Allow: true}},
			ACL:  auth.ACLRules{{Username: auth.RString(cfg.ServiceUser), Filters: auth.Filters{"#": auth.ReadWrite}}},
		}})
	}
	if authErr != nil {
		return nil, fmt.Errorf("mqtt: auth hook: %w", authErr)
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("mqtt: %w", err)
		}
		// Pebble, not bolt or redis: those lose queued QoS 1 messages on restart.
		if err := srv.AddHook(new(pebble.Hook), &pebble.Options{Path: filepath.Join(cfg.Dir, "pebble"), Mode: pebble.Sync}); err != nil {
			return nil, fmt.Errorf("mqtt: storage hook: %w", err)
		}
	}
	tcp := listeners.NewTCP(listeners.Config{Type: "tcp", ID: "tcp", Address: cfg.Addr})
	if err := srv.AddListener(tcp); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("mqtt: listen on %s: %w", cfg.Addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	return &MQTT{server: srv, Addr: tcp.Address(), user: cfg.ServiceUser, password: cfg.ServicePassword}, nil
}

// Run keeps the broker up until ctx ends, then closes it.
func (m *MQTT) Run(ctx context.Context) error {
	<-ctx.Done()
	if err := m.server.Close(); err != nil {
		return fmt.Errorf("mqtt: close: %w", err)
	}
	return nil
}

// Check reports whether the broker admits the device service: an MQTT
// CONNECT with its credentials and a clean DISCONNECT (a bare TCP probe
// would make the broker log a broken connection every time).
func (m *MQTT) Check(ctx context.Context) error {
	timeout := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + m.Addr).
		SetClientID(fmt.Sprintf("readiness-%d", time.Now().UnixNano())).
		SetUsername(m.user).SetPassword(m.password).
		SetConnectTimeout(timeout).SetAutoReconnect(false).SetConnectRetry(false))
	tok := c.Connect()
	if !tok.WaitTimeout(timeout) {
		return errors.New("mqtt: connect timed out")
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	c.Disconnect(50)
	return nil
}
