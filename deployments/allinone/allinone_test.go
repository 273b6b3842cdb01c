package allinone_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"
	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/comfortech/platform/deployments/allinone"
	"github.com/comfortech/platform/deployments/allinone/devstack/idp/idptest"
)

func start(t testing.TB, dir string) (*allinone.Platform, context.CancelFunc) {
	t.Helper()
	return startWith(t, dir, zaptest.NewLogger(t))
}

// startBench starts a quiet platform for a benchmark.
func startBench(b *testing.B) (*allinone.Platform, context.CancelFunc) {
	b.Helper()
	p, cancel := startWith(b, b.TempDir(), zap.NewNop())
	waitReady(b, p)
	return p, cancel
}

func startWith(t testing.TB, dir string, log *zap.Logger) (*allinone.Platform, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := allinone.Start(ctx, allinone.Config{
		DataDir: dir, Host: "127.0.0.1", EphemeralPorts: true, KafkaPartitions: 1,
		RealmFile: idptest.RealmFile(t), AdminPassword: "Admin-Passw0rd",
		DataDatabaseURL: os.Getenv("COMFORT_BENCH_DATABASE_URL"),
	}, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return p, cancel
}

func stop(t testing.TB, p *allinone.Platform, cancel context.CancelFunc) {
	t.Helper()
	cancel()
	select {
	case err := <-waitErr(p):
		if err != nil {
			t.Fatalf("platform stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("platform did not stop within 30s")
	}
}

func waitErr(p *allinone.Platform) <-chan error {
	c := make(chan error, 1)
	go func() { c <- p.Wait() }()
	return c
}

// waitReady polls every ops endpoint's /readyz until it answers 200.
func waitReady(t testing.TB, p *allinone.Platform) {
	t.Helper()
	for _, e := range p.Endpoints {
		if e.Kind != "ops" {
			continue
		}
		url := "http://" + e.Addr + "/readyz"
		deadline := time.Now().Add(15 * time.Second)
		for {
			resp, err := http.Get(url)
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never became ready (%v)", url, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func mqttConnect(addr, user, password string) error {
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(fmt.Sprintf("test-%d", time.Now().UnixNano())).SetUsername(user).SetPassword(password).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false))
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(100)
	return nil
}

// TestPlatform starts the platform, checks every part is ready and the
// brokers work and refuse strangers, stops it, and starts it again on the
// same data directory: the events produced before are still there.
func TestPlatform(t *testing.T) {
	dir := t.TempDir()
	p, cancel := start(t, dir)
	waitReady(t, p)
	for _, part := range []string{"devstack", "data", "device", "notify", "main-gateway", "auth-gateway", "admin-gateway"} {
		if p.Addr(part, "ops") == "" {
			t.Fatalf("no ops endpoint for %s", part)
		}
	}

	if err := mqttConnect(p.Addr("mqtt", "mqtt"), p.MQTTServiceUser, p.MQTTServicePassword.Reveal()); err != nil {
		t.Fatalf("device service credentials refused: %v", err)
	}
	if err := mqttConnect(p.Addr("mqtt", "mqtt"), p.MQTTServiceUser, "wrong"); err == nil {
		t.Fatal("wrong password accepted by the MQTT broker")
	}
	if err := mqttConnect(p.Addr("mqtt", "mqtt"), "", ""); err == nil {
		t.Fatal("anonymous client accepted by the MQTT broker")
	}

	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	producer, err := sarama.NewSyncProducer([]string{p.Addr("kafka", "kafka")}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, offset, err := producer.SendMessage(&sarama.ProducerMessage{Topic: "audit", Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder("kept across restarts")})
	if err != nil {
		t.Fatal(err)
	}
	_ = producer.Close()
	mqttPassword := p.MQTTServicePassword
	stop(t, p, cancel)

	p, cancel = start(t, dir)
	defer stop(t, p, cancel)
	waitReady(t, p)
	if p.MQTTServicePassword != mqttPassword {
		t.Fatal("the MQTT service credentials changed across a restart")
	}
	consumer, err := sarama.NewConsumer([]string{p.Addr("kafka", "kafka")}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition("audit", 0, offset)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		if string(m.Value) != "kept across restarts" {
			t.Fatalf("read %q after restart", m.Value)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event produced before the restart is gone")
	}
}
