package device_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// The latency benchmark's publishers and its measuring subscriber or
// consumer run in a process of their own, the load generator: this test
// binary started again with loadgenEnv set. In the stack's process their
// allocations and goroutines would be the stack's garbage collections and
// scheduling delays, measured as if they were the service's; on this
// machine they still share its two cores, as a fleet and a consumer on
// the same host would.

// loadgenEnv carries a loadSpec, as JSON, to the load generator process.
const loadgenEnv = "DEVICE_BENCH_LOADGEN"

// TestMain runs the load generator instead of the tests when loadgenEnv
// is set.
func TestMain(m *testing.M) {
	if spec := os.Getenv(loadgenEnv); spec != "" {
		os.Exit(runLoadgen(spec))
	}
	os.Exit(m.Run())
}

// loadClient is one publisher of the load generator.
type loadClient struct {
	ClientID, User, Pass string
	// Topic is where it publishes; Key names it in the latency keys
	// (key/seq): the device id, or the benchmark topic's index.
	Topic, Key string
}

// loadSpec is one paced run of the load generator: its publishers, and
// where it watches their messages arrive: an MQTT subscription
// (Subscribe, the bare hop) or a Kafka topic (Topic on Kafka), whose
// records are TelemetryReported events (Events) or the payloads as
// published, keyed by the publisher's Key.
type loadSpec struct {
	Broker             string
	Clients            []loadClient
	Subscribe          string
	SubUser, SubPass   string
	Kafka              []string
	Topic              string
	Events             bool
	Result             string // the file the loadResult is written to
	Rate               int
	Duration, Tick     time.Duration
	SubscriberClientID string
}

// loadResult is what the load generator measured: each message's publish
// time (by key/seq) and publish → arrival latency, and for events the
// publish → receive_time of the first sample of each event.
type loadResult struct {
	Sent          int
	Published     map[string]time.Time
	Lat, Received []time.Duration
	// CPU is the load generator process's CPU time (set by runLoad).
	CPU time.Duration `json:"-"`
}

// runLoad runs the load generator with spec until it has seen every
// message it published arrive, and returns what it measured.
func runLoad(tb testing.TB, spec loadSpec) loadResult {
	tb.Helper()
	spec.Result = filepath.Join(tb.TempDir(), "load.json")
	spec.Rate, spec.Duration, spec.Tick = latencyRate, latencyDuration, latencyTick
	js, err := json.Marshal(spec)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), loadgenEnv+"="+string(js))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tb.Fatalf("load generator: %v\n%s", err, tail(out.Bytes(), 4096))
	}
	b, err := os.ReadFile(spec.Result)
	if err != nil {
		tb.Fatal(err)
	}
	var r loadResult
	if err := json.Unmarshal(b, &r); err != nil {
		tb.Fatal(err)
	}
	if len(r.Lat) == 0 {
		tb.Fatal("load generator: no latencies")
	}
	r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r
}

// runLoadgen is the load generator process's main: it runs the loadSpec
// in specJSON and writes the loadResult to the spec's file.
func runLoadgen(specJSON string) int {
	var spec loadSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "load generator spec:", err)
		return 2
	}
	lg := &loadgenTB{}
	defer lg.cleanup()
	r := generate(lg, spec)
	b, err := json.Marshal(r)
	if err == nil {
		err = os.WriteFile(spec.Result, b, 0o600)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load generator result:", err)
		return 2
	}
	return 0
}

// generate connects the publishers and the observer of spec, publishes
// paced, and returns the latencies once every message arrived.
func generate(tb benchTB, spec loadSpec) loadResult {
	clients := make([]paho.Client, len(spec.Clients))
	topics := make([]string, len(spec.Clients))
	keys := make([]string, len(spec.Clients))
	for i, c := range spec.Clients {
		clients[i] = connect(tb, spec.Broker, c.ClientID, c.User, c.Pass, nil)
		topics[i], keys[i] = c.Topic, c.Key
	}
	l := &telemetryLatencies{sent: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	switch {
	case spec.Subscribe != "":
		sub := connect(tb, spec.Broker, spec.SubscriberClientID, spec.SubUser, spec.SubPass, nil)
		if tok := sub.Subscribe(spec.Subscribe, 1, func(_ paho.Client, m paho.Message) {
			for seq := range seqs(m.Payload()) {
				l.arrived(strings.Split(m.Topic(), "/")[2]+"/"+seq, time.Now())
			}
		}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			tb.Fatalf("subscribe: %v", tok.Error())
		}
	case spec.Events:
		l.consume(ctx, tb, spec.Kafka, spec.Topic)
	default:
		consumeTopic(ctx, tb, spec.Kafka, spec.Topic, func(cm *sarama.ConsumerMessage) {
			for seq := range seqs(cm.Value) {
				l.arrived(string(cm.Key)+"/"+seq, time.Now())
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the consumer at the end of the log
	sent := paced(tb, clients, topics, keys, spec, l)
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadResult{Sent: sent, Published: l.sent, Lat: l.lat, Received: l.received}
}

// benchTB is what the benchmarks' MQTT and Kafka helpers need of a
// testing.TB, which the load generator process has none of.
type benchTB interface {
	Helper()
	Cleanup(func())
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// loadgenTB is the load generator's benchTB: a failure ends the process.
type loadgenTB struct {
	cleanups []func()
}

func (*loadgenTB) Helper()             {}
func (l *loadgenTB) Cleanup(f func())  { l.cleanups = append(l.cleanups, f) }
func (l *loadgenTB) Fatal(args ...any) { l.Fatalf("%s", fmt.Sprint(args...)) }

func (l *loadgenTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "load generator: "+format+"\n", args...)
	os.Exit(1)
}

// cleanup runs the cleanups, last registered first.
func (l *loadgenTB) cleanup() {
	for i := len(l.cleanups) - 1; i >= 0; i-- {
		l.cleanups[i]()
	}
}
