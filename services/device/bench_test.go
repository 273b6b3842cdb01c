package device_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/dustin/go-humanize"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/pprof/profile"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/comfortech/platform/libs/kafka/kafkatest"
	datav1 "github.com/comfortech/platform/proto/comfortech/data/v1"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	"github.com/comfortech/platform/services/device"
	"github.com/comfortech/platform/services/device/internal/ingest"
	"github.com/comfortech/platform/services/device/internal/mosquittotest"
	"github.com/comfortech/platform/services/device/internal/mqttconn"
)

// The ingest benchmarks run everything in this process: the broker, the
// device service, the data service (SQLite), kfake and the publishers.
// The process's CPU time is split by part with pprof labels (see
// labelled and cpuByPart): the device service's own CPU per message is
// what its goroutines used, whatever else ran beside them.

const (
	benchPublishers = 8
	benchWindow     = 256 // QoS 1 publishes in flight per publisher
)

// benchConfig is the service's default telemetry configuration (the
// TELEMETRY_* defaults), so the figures are those of a stock deployment.
func benchConfig(c *device.Config) {
	c.Telemetry = device.TelemetryConfig{MaxPayload: 64 << 10, BatchSize: 500, Buffer: 4096, EnqueueWait: 5 * time.Second}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// connect connects a paho client to url, reading through a buffer as the
// service and the simulator do (mqttconn).
func connect(tb benchTB, url, clientID, user, pass string, h paho.OnConnectHandler) paho.Client {
	tb.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetOrderMatters(false).SetWriteTimeout(10 * time.Second).
		SetCustomOpenConnectionFn(mqttconn.Opener(64 << 10))
	if h != nil {
		o.SetOnConnectHandler(h)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		tb.Fatalf("connect %s: %v", clientID, tok.Error())
	}
	tb.Cleanup(func() { c.Disconnect(0) })
	return c
}

// sample is a telemetry message of the protocol.
func sample(seq int) []byte {
	return fmt.Appendf(nil, `{"ts":%d,"seq":%d,"metrics":{"temperature":21.5,"humidity":40,"co2":612}}`, time.Now().UnixMilli(), seq)
}

// maxBacklog bounds the messages published but not yet taken by the
// consumer under test: the broker drops QoS 1 messages for a subscriber
// more than 8,192 behind (mochi's MaximumInflight and
// MaximumClientWritesPending), so an open-loop generator measures the
// broker's drops, not the consumer's rate.
const maxBacklog = 4000

// publishAll publishes n messages at QoS 1 through each client, as fast as
// consumed() keeps up: at most maxBacklog ahead of it, with benchWindow
// unacknowledged publishes per client.
func publishAll(tb testing.TB, clients []paho.Client, topics []string, n int, consumed func() int64) {
	tb.Helper()
	base := consumed()
	var published atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	for i, c := range clients {
		wg.Go(func() {
			window := make([]paho.Token, benchWindow)
			for seq := range n {
				for published.Load()-(consumed()-base) > maxBacklog {
					time.Sleep(100 * time.Microsecond)
				}
				if t := window[seq%benchWindow]; t != nil {
					if !t.WaitTimeout(30*time.Second) || t.Error() != nil {
						errs <- fmt.Errorf("publish: %v", t.Error())
						return
					}
				}
				published.Add(1)
				window[seq%benchWindow] = c.Publish(topics[i], 1, false, sample(seq+1))
			}
			for _, t := range window {
				if t != nil && (!t.WaitTimeout(30*time.Second) || t.Error() != nil) {
					errs <- fmt.Errorf("publish: %v", t.Error())
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// waitCount waits until count() reaches n.
func waitCount(tb benchTB, what string, n int64, count func() int64) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for count() < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: %d of %d after 60 s", what, count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flushedToKafka reads comfort_device_telemetry_published_samples_total
// from the device service's /metrics: samples in Kafka and acknowledged.
func flushedToKafka(tb testing.TB, opsAddr string) int64 {
	tb.Helper()
	return counter(tb, opsAddr, "comfort_device_telemetry_published_samples_total", "")
}

// plainHTTP asks for uncompressed answers: gzipping /metrics on every poll
// would be CPU counted against the service.
var plainHTTP = &http.Client{Transport: &http.Transport{DisableCompression: true}}

// counter reads the first sample of /metrics at opsAddr whose line starts
// with prefix and contains label.
func counter(tb testing.TB, opsAddr, prefix, label string) int64 {
	tb.Helper()
	resp, err := plainHTTP.Get("http://" + opsAddr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, prefix) && strings.Contains(l, label) {
			v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			if err != nil {
				tb.Fatal(err)
			}
			return int64(v)
		}
	}
	return 0
}

// phase is one measured run: n messages in d, using cpu, of which parts
// holds each part's share (when the profiler could run).
type phase struct {
	d     time.Duration
	cpu   time.Duration
	n     int
	parts map[string]time.Duration
}

func (p phase) rate() float64      { return float64(p.n) / p.d.Seconds() }
func (p phase) cpuPerMsg() float64 { return float64(p.cpu.Microseconds()) / float64(p.n) }

// partPerMsg is the CPU µs per message of one part's goroutines.
func (p phase) partPerMsg(part string) float64 {
	return float64(p.parts[part].Microseconds()) / float64(p.n)
}

func (p phase) String() string {
	s := fmt.Sprintf("%.0f msgs/s, %.1f µs CPU/msg", p.rate(), p.cpuPerMsg())
	if p.parts != nil {
		s += fmt.Sprintf(" (device service %.1f, broker %.1f, kafka %.1f, data service %.1f)", p.partPerMsg(partDevice),
			p.partPerMsg(partBroker), p.partPerMsg(partKafka), p.partPerMsg(partData))
	}
	return s
}

func measure(tb testing.TB, n int, f func()) phase {
	tb.Helper()
	c0, t0 := cpuTime(tb), time.Now()
	parts := cpuByPart(tb, f)
	return phase{d: time.Since(t0), cpu: cpuTime(tb) - c0, n: n, parts: parts}
}

// cpuByPart runs f under the CPU profiler and returns the CPU time of each
// part's goroutines, by their partLabel ("" for the rest: the publishers,
// the test). It returns nil when a profile is already running (go test
// -cpuprofile).
func cpuByPart(tb testing.TB, f func()) map[string]time.Duration {
	tb.Helper()
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		f()
		return nil
	}
	f()
	pprof.StopCPUProfile()
	p, err := profile.Parse(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	cpu := slices.IndexFunc(p.SampleType, func(st *profile.ValueType) bool { return st.Type == "cpu" })
	if cpu < 0 {
		tb.Fatal("CPU profile without cpu samples")
	}
	parts := map[string]time.Duration{}
	for _, smp := range p.Sample {
		part := ""
		if v := smp.Label[partLabel]; len(v) > 0 {
			part = v[0]
		}
		parts[part] += time.Duration(smp.Value[cpu])
	}
	return parts
}

// ingestBench is the ingest benchmark against the broker at mqttURL: the
// bare subscriber, the paho → sarama bridge and the device service, each
// fed n messages per publisher.
func ingestBench(b *testing.B, s *stack, mqttURL string, perPublisher int) {
	total := benchPublishers * perPublisher

	// The baselines publish as the service account on bench/… topics, which
	// the device service does not subscribe to.
	pubs := make([]paho.Client, benchPublishers)
	benchTopics := func(kind string) []string {
		ts := make([]string, benchPublishers)
		for i := range ts {
			ts[i] = fmt.Sprintf("bench/%s/%d/telemetry", kind, i)
		}
		return ts
	}
	for i := range pubs {
		pubs[i] = connect(b, mqttURL, fmt.Sprintf("bench-pub-%d", i), serviceUser, servicePass, nil)
	}
	subscribe := func(clientID, filter string, h paho.MessageHandler) {
		c := connect(b, mqttURL, clientID, serviceUser, servicePass, nil)
		if tok := c.Subscribe(filter, 1, h); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("subscribe: %v", tok.Error())
		}
	}

	// 1. The ceiling: a bare subscriber on a shared subscription.
	var bare atomic.Int64
	subscribe("bench-bare", "$share/bench/bench/bare/+/telemetry", func(_ paho.Client, m paho.Message) { bare.Add(1) })
	ceiling := measure(b, total, func() {
		publishAll(b, pubs, benchTopics("bare"), perPublisher, bare.Load)
		waitCount(b, "bare subscriber", int64(total), bare.Load)
	})

	// 2. A straightforward paho → sarama bridge: each message produced as
	// it arrives.
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Flush.Frequency = 5 * time.Millisecond
	ap, err := sarama.NewAsyncProducer(s.brokers, sc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ap.Close() })
	var bridged atomic.Int64
	go func() {
		for range ap.Successes() {
			bridged.Add(1)
		}
	}()
	go func() {
		for err := range ap.Errors() {
			b.Errorf("bridge: %v", err)
		}
	}()
	subscribe("bench-bridge", "$share/bench/bench/bridge/+/telemetry", func(_ paho.Client, m paho.Message) {
		parts := strings.Split(m.Topic(), "/")
		ap.Input() <- &sarama.ProducerMessage{Topic: "bench.bridge", Key: sarama.StringEncoder(parts[2]),
			Value: sarama.ByteEncoder(m.Payload())}
	})
	bridge := measure(b, total, func() {
		publishAll(b, pubs, benchTopics("bridge"), perPublisher, bridged.Load)
		waitCount(b, "bridge", int64(total), bridged.Load)
	})

	// 3. The device service: the publishers are provisioned devices.
	devs := s.provision(b, benchPublishers)
	devClients := make([]paho.Client, len(devs))
	devTopics := make([]string, len(devs))
	for i, d := range devs {
		devClients[i] = connect(b, mqttURL, d.ID, d.ID, d.Secret, nil)
		devTopics[i] = "devices/" + d.ID + "/telemetry"
	}
	// The generator follows what reached device.telemetry, read by a
	// consumer of the benchmark's (polling the service's /metrics would
	// be CPU counted against the service).
	var flushed atomic.Int64
	consumeCtx, stopConsume := context.WithCancel(context.Background())
	defer stopConsume()
	// Warm up (ACL cache, model cache, topic creation), then measure with
	// the data service away: ingest hands over to Kafka and does not need
	// it, and in production it runs on machines of its own.
	publishAll(b, devClients, devTopics, 10, func() int64 { return flushedToKafka(b, s.devOps) })
	base := int64(len(devs) * 10)
	waitCount(b, "warm-up", base, func() int64 { return flushedToKafka(b, s.devOps) })
	consumeTopic(consumeCtx, b, s.brokers, "device.telemetry", func(cm *sarama.ConsumerMessage) {
		flushed.Add(int64(bytes.Count(cm.Value, sampleKey)))
	})
	time.Sleep(200 * time.Millisecond) // the consumer at the end of the log
	s.data.stop()
	svc := measure(b, total, func() {
		publishAll(b, devClients, devTopics, perPublisher, flushed.Load)
		waitCount(b, "device service", int64(total), flushed.Load)
	})

	// 4. The data service comes back and stores the backlog from
	// device.telemetry, timed from its first stored record.
	s.data.restart()
	stored := func() int64 {
		return counter(b, s.data.ops, "comfort_data_telemetry_records_total", `"stored"`) +
			counter(b, s.data.ops, "comfort_data_telemetry_records_total", `"duplicate"`)
	}
	waitCount(b, "the data service's first record", 1, stored)
	catchUp := measure(b, total, func() { waitCount(b, "data service", int64(total), stored) })

	b.Logf("bare subscriber: %v", ceiling)
	b.Logf("paho→sarama bridge: %v", bridge)
	b.Logf("device service: %v", svc)
	b.Logf("data service storing the backlog: %v", catchUp)
	b.ReportMetric(svc.rate(), "msgs/s")
	b.ReportMetric(ceiling.rate(), "bare-msgs/s")
	b.ReportMetric(bridge.rate(), "bridge-msgs/s")
	b.ReportMetric(svc.rate()/ceiling.rate(), "x-bare")
	b.ReportMetric(svc.rate()/bridge.rate(), "x-bridge")
	b.ReportMetric(svc.cpuPerMsg(), "proc-cpu-µs/msg")
	b.ReportMetric(ceiling.cpuPerMsg(), "bare-proc-cpu-µs/msg")
	if svc.parts != nil {
		b.ReportMetric(svc.partPerMsg(partDevice), "svc-cpu-µs/msg")
		b.ReportMetric(svc.partPerMsg(partBroker), "broker-cpu-µs/msg")
		b.ReportMetric(ceiling.partPerMsg(partBroker), "bare-broker-cpu-µs/msg")
	}
	b.ReportMetric(catchUp.rate(), "data-store-records/s")
}

// BenchmarkIngest measures sustained QoS 1 telemetry ingest into Kafka
// through the embedded mochi broker, beside a bare subscriber and a
// paho → sarama bridge on the same broker.
func BenchmarkIngest(b *testing.B) {
	s := start(b, benchConfig)
	for range b.N {
		ingestBench(b, s, s.mqttURL, 10000)
	}
}

// telemetryLatencies consumes device.telemetry from now on and records, for
// every sample whose (device, seq) is in sent, the time from its publish
// to its event's arrival.
type telemetryLatencies struct {
	mu   sync.Mutex
	sent map[string]time.Time
	lat  []time.Duration
	// received is publish → the service's receipt (the event's
	// receive_time), for the first sample of each event: the MQTT hop's
	// share of lat.
	received []time.Duration
}

// consume records the samples of the TelemetryReported events written to
// topic from now on. It reads what it needs straight from an event's
// JSON (the record's key is the device; protojson writes the event's
// "receive_time" and each sample's "seq"): decoding whole events was most
// of the load generator's CPU, taken from the cores the stack runs on.
func (l *telemetryLatencies) consume(ctx context.Context, tb benchTB, brokers []string, topic string) {
	tb.Helper()
	consumeTopic(ctx, tb, brokers, topic, func(cm *sarama.ConsumerMessage) {
		now := time.Now()
		received := receiveTime(cm.Value)
		device := string(cm.Key)
		l.mu.Lock()
		defer l.mu.Unlock()
		first := true
		for seq := range seqs(cm.Value) {
			if t, ok := l.sent[device+"/"+seq]; ok {
				l.lat = append(l.lat, now.Sub(t))
				if first {
					l.received = append(l.received, received.Sub(t))
				}
			}
			first = false
		}
	})
}

// consumeTopic hands every message written to topic from now on to f (one
// goroutine per partition) until ctx ends.
func consumeTopic(ctx context.Context, tb benchTB, brokers []string, topic string, f func(*sarama.ConsumerMessage)) {
	tb.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Consumer.MaxWaitTime = 5 * time.Millisecond
	c, err := sarama.NewConsumer(brokers, sc)
	if err != nil {
		tb.Fatal(err)
	}
	parts, err := c.Partitions(topic)
	if err != nil || len(parts) == 0 {
		tb.Fatalf("%s partitions: %v %v", topic, parts, err)
	}
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetNewest)
		if err != nil {
			tb.Fatal(err)
		}
		wg.Go(func() {
			for cm := range pc.Messages() {
				f(cm)
			}
		})
		context.AfterFunc(ctx, func() { pc.AsyncClose() })
	}
	tb.Cleanup(func() { wg.Wait(); _ = c.Close() })
}

// sampleKey counts the samples of a TelemetryReported without decoding
// it: protojson writes "seq" once per sample (the benchmarks' seq is never
// 0, which it would omit).
var sampleKey = []byte(`"seq":`)

// seqs yields the value of every "seq" of a JSON document, as text: of a
// sample the devices publish (a number) or of each sample of a
// TelemetryReported (protojson writes an int64 as a string).
func seqs(doc []byte) iter.Seq[string] {
	return func(yield func(string) bool) {
		for {
			_, rest, ok := bytes.Cut(doc, sampleKey)
			rest = bytes.TrimPrefix(rest, []byte(`"`))
			end := bytes.IndexAny(rest, `",}`)
			if !ok || end < 0 || !yield(string(rest[:end])) {
				return
			}
			doc = rest[end:]
		}
	}
}

// receiveTime is the "receive_time" of a TelemetryReported's JSON; zero
// when it has none.
func receiveTime(event []byte) time.Time {
	_, rest, _ := bytes.Cut(event, []byte(`"receive_time":"`))
	v, _, _ := bytes.Cut(rest, []byte(`"`))
	t, _ := time.Parse(time.RFC3339Nano, string(v))
	return t
}

// arrived records the arrival of the message sent under key, if it was
// sent in this run.
func (l *telemetryLatencies) arrived(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.sent[key]; ok {
		l.lat = append(l.lat, at.Sub(t))
	}
}

func (l *telemetryLatencies) count() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.lat))
}

// percentile returns the p-th percentile of ds (sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkIngestLatency publishes 5,000 messages/s from 10 devices for
// 4 s and reports the publish → Kafka latency of each sample: from its
// publish to the moment the stack's Kafka received the produce request
// holding its TelemetryReported event (kafkaAppends), which it appends
// right after. The data service is away, as in BenchmarkIngest. Also
// reported: publish → a consumer of device.telemetry (p99-to-consumer-ms,
// which adds the consumer's fetching) and publish → the service's receipt
// (p99-to-service-ms, the MQTT hop's share).
//
// Two baselines run first at the same rate: a bare subscriber on the
// broker (publish → arrival: the MQTT hop alone) and a straightforward
// paho → sarama bridge in the stack's process (publish → Kafka, measured
// as the service's; its producer, as the service's, does not linger). The
// publishers and the subscriber or consumer that sees the messages arrive
// are a load generator process of their own (runLoad), the same for all
// three runs. The stack's process collects garbage as the device service
// is deployed to (deployedGC); a fourth run measures the service again
// with Go's default collector (p99-default-gc-ms).
func BenchmarkIngestLatency(b *testing.B) { ingestLatency(b, start(b, benchConfig)) }

// BenchmarkIngestLatencyMosquitto is BenchmarkIngestLatency through a real
// Mosquitto 2, the production broker: the stack's process then holds the
// service and the embedded Kafka only.
func BenchmarkIngestLatencyMosquitto(b *testing.B) { ingestLatency(b, startWithMosquitto(b)) }

func ingestLatency(b *testing.B, s *stack) {
	devs := s.provision(b, latencyDevices)
	devClients := make([]loadClient, latencyDevices)
	for i, d := range devs {
		devClients[i] = loadClient{ClientID: d.ID, User: d.ID, Pass: d.Secret, Topic: "devices/" + d.ID + "/telemetry", Key: d.ID}
		// Warm up, which also creates device.telemetry; the load generator
		// connects as the device again.
		c := connect(b, s.mqttURL, d.ID, d.ID, d.Secret, nil)
		publish(b, c, devClients[i].Topic, sample(1))
		c.Disconnect(250)
	}
	waitCount(b, "warm-up", latencyDevices, func() int64 { return flushedToKafka(b, s.devOps) })

	// The baselines publish as the service account on bench/… topics.
	pubs := make([]loadClient, latencyDevices)
	for i := range pubs {
		pubs[i] = loadClient{ClientID: fmt.Sprintf("lat-pub-%d", i), User: serviceUser, Pass: servicePass,
			Topic: fmt.Sprintf("bench/lat/%d/telemetry", i), Key: strconv.Itoa(i)}
	}
	bridgeSub := connect(b, s.mqttURL, "lat-bridge", serviceUser, servicePass, nil)
	// Ingest does not need the data service, so it is away for every
	// measured run (the baselines' too).
	s.data.stop()

	deployed := deployedGC(b)
	appends := watchAppends(b, s)
	for range b.N {
		// Every part of the stack's process collects garbage as the device
		// service is deployed to, for the baselines too.
		restore := deployed.use()
		b.Cleanup(restore) // should the run fail before it is restored below

		// 1. The MQTT hop alone.
		bare := runLoad(b, loadSpec{Broker: s.mqttURL, Clients: pubs, Subscribe: "$share/lat/bench/lat/+/telemetry",
			SubscriberClientID: "lat-bare", SubUser: serviceUser, SubPass: servicePass})

		// 2. A paho → sarama bridge, to a consumer of its topic.
		kafkatest.DeleteRecords(b, s.brokers)
		stopBridge := latencyBridge(b, s, bridgeSub)
		bridged := runLoad(b, loadSpec{Broker: s.mqttURL, Clients: pubs, Kafka: s.brokers, Topic: latencyBridgeTopic})
		bridgeLat := appends.latencies(b, bridged)
		stopBridge()

		// 3. The device service.
		svc := serviceLatency(b, s, devClients, appends)
		restore()

		// 4. The device service again, with the collector the process
		// started with: Go's defaults (GOGC=100, no memory limit) unless
		// the environment set GOGC or GOMEMLIMIT.
		started := serviceLatency(b, s, devClients, appends)

		lat := svc.toKafka
		b.ReportMetric(float64(svc.Sent)/latencyDuration.Seconds(), "msgs/s")
		b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
		b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
		b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
		b.ReportMetric(ms(percentile(svc.Lat, 0.99)), "p99-to-consumer-ms")
		b.ReportMetric(ms(percentile(svc.Received, 0.99)), "p99-to-service-ms")
		b.ReportMetric(float64(svc.gcs), "stack-gcs")
		b.ReportMetric(float64(svc.stackCPU.Microseconds())/float64(svc.Sent), "stack-cpu-µs/msg")
		b.ReportMetric(float64(svc.CPU.Microseconds())/float64(svc.Sent), "loadgen-cpu-µs/msg")
		b.ReportMetric(ms(svc.handover.quantileBound(0.99)), "handover-p99-le-ms")
		b.ReportMetric(ms(percentile(started.toKafka, 0.99)), "p99-default-gc-ms")
		b.ReportMetric(float64(started.gcs), "default-gc-stack-gcs")
		b.ReportMetric(ms(percentile(bare.Lat, 0.99)), "bare-mqtt-p99-ms")
		b.ReportMetric(ms(percentile(bridgeLat, 0.99)), "bridge-p99-ms")
		b.ReportMetric(ms(percentile(bridgeLat, 0.50)), "bridge-p50-ms")
		b.ReportMetric(ms(percentile(bridged.Lat, 0.99)), "bridge-p99-to-consumer-ms")
	}
}

// serviceRun is one paced run through the device service: what the load
// generator measured, each sample's publish → Kafka latency, the stack's
// garbage collections meanwhile and the service's handover histogram of
// the run.
type serviceRun struct {
	loadResult
	toKafka  []time.Duration
	gcs      uint32
	handover histogram
	stackCPU time.Duration
}

// serviceLatency runs the paced load through the device service, as
// devClients, to a consumer of device.telemetry.
func serviceLatency(b *testing.B, s *stack, devClients []loadClient, appends *kafkaAppends) serviceRun {
	// Kafka holds the records outside the service's process, and so no
	// earlier run's records are the heap the stack's collector scans.
	kafkatest.DeleteRecords(b, s.brokers)
	var gc0, gc1 runtime.MemStats
	runtime.ReadMemStats(&gc0)
	h0 := handoverBuckets(b, s.devOps)
	cpu0 := cpuTime(b)
	r := runLoad(b, loadSpec{Broker: s.mqttURL, Clients: devClients, Kafka: s.brokers, Topic: ingest.Topic, Events: true})
	cpu := cpuTime(b) - cpu0
	runtime.ReadMemStats(&gc1)
	return serviceRun{loadResult: r, toKafka: appends.latencies(b, r), gcs: gc1.NumGC - gc0.NumGC,
		handover: handoverBuckets(b, s.devOps).minus(h0), stackCPU: cpu}
}

// kafkaAppends records when the stack's Kafka received each sample
// produced to device.telemetry or the bridge's topic, by key/seq (the
// load generator's keys): the moment it went into Kafka.
type kafkaAppends struct {
	mu sync.Mutex
	at map[string]time.Time
}

// watchAppends starts recording the samples s's Kafka receives.
func watchAppends(tb testing.TB, s *stack) *kafkaAppends {
	a := &kafkaAppends{at: map[string]time.Time{}}
	kafkatest.WatchProduce(tb, s.kafka, func(p kafkatest.Produced) {
		if p.Topic != ingest.Topic && p.Topic != latencyBridgeTopic {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		for seq := range seqs(p.Value) {
			key := string(p.Key) + "/" + seq
			if _, again := a.at[key]; !again { // a retry is not when it went in
				a.at[key] = p.At
			}
		}
	})
	return a
}

// latencies returns the publish → Kafka latency of every message of run,
// and forgets what it recorded, for the next run (whose seqs start again
// from 1). A message Kafka did not receive fails tb.
func (a *kafkaAppends) latencies(tb testing.TB, run loadResult) []time.Duration {
	tb.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	lat := make([]time.Duration, 0, len(run.Published))
	for key, published := range run.Published {
		at, ok := a.at[key]
		if !ok {
			tb.Fatalf("%s: published and seen by the consumer, but never produced to Kafka?", key)
		}
		lat = append(lat, at.Sub(published))
	}
	clear(a.at)
	return lat
}

// gcSetting is a garbage-collector setting: GOGC and GOMEMLIMIT.
type gcSetting struct {
	percent int   // GOGC; -1 is off
	limit   int64 // GOMEMLIMIT in bytes; math.MaxInt64 is none
}

// deployedManifest holds the device service's container, whose
// environment sets its collector.
const deployedManifest = "../../deployments/k8s/base/device.yaml"

// deployedGC reads the collector setting the device service is deployed
// with from the GOGC and GOMEMLIMIT of its container in deployedManifest
// (docker-compose.yml sets the same).
func deployedGC(tb testing.TB) gcSetting {
	tb.Helper()
	f, err := os.Open(deployedManifest)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	env := map[string]string{}
	for dec := yaml.NewDecoder(f); ; {
		var doc struct {
			Kind string
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Name string
							Env  []struct{ Name, Value string }
						}
					}
				}
			}
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			tb.Fatalf("%s: %v", deployedManifest, err)
		}
		for _, c := range doc.Spec.Template.Spec.Containers {
			if doc.Kind == "StatefulSet" && c.Name == "device" {
				for _, e := range c.Env {
					env[e.Name] = e.Value
				}
			}
		}
	}
	g := gcSetting{percent: 100, limit: math.MaxInt64}
	if v, ok := env["GOGC"]; ok && v != "off" {
		if g.percent, err = strconv.Atoi(v); err != nil {
			tb.Fatalf("%s: GOGC %q", deployedManifest, v)
		}
	} else if ok {
		g.percent = -1
	}
	if v, ok := env["GOMEMLIMIT"]; ok {
		n, err := humanize.ParseBytes(v)
		if err != nil {
			tb.Fatalf("%s: GOMEMLIMIT %q: %v", deployedManifest, v, err)
		}
		g.limit = int64(n)
	}
	return g
}

// TestDeployedGC reads the device service's manifest as the latency
// benchmark does: a manifest that no longer sets the collector would have
// it measure Go's defaults twice.
func TestDeployedGC(t *testing.T) {
	if g := deployedGC(t); g.percent != -1 || g.limit == math.MaxInt64 {
		t.Fatalf("%s sets GOGC %d, GOMEMLIMIT %d bytes; want off and a limit", deployedManifest, g.percent, g.limit)
	}
}

// use sets g for this process; restore sets back what was there before.
func (g gcSetting) use() (restore func()) {
	percent, limit := debug.SetGCPercent(g.percent), debug.SetMemoryLimit(g.limit)
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

// histogram is a Prometheus histogram's cumulative buckets: count[i]
// observations at most le[i].
type histogram struct {
	le    []time.Duration
	count []float64
}

// handoverBuckets reads comfort_device_telemetry_handover_seconds (receipt
// → acknowledgement once in Kafka) from the device service's /metrics.
func handoverBuckets(tb testing.TB, opsAddr string) histogram {
	tb.Helper()
	resp, err := plainHTTP.Get("http://" + opsAddr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	const prefix = `comfort_device_telemetry_handover_seconds_bucket{le="`
	var h histogram
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		le, n, _ := strings.Cut(rest, `"} `)
		if !ok || le == "+Inf" {
			continue
		}
		sec, err1 := strconv.ParseFloat(le, 64)
		c, err2 := strconv.ParseFloat(n, 64)
		if err1 != nil || err2 != nil {
			tb.Fatalf("handover bucket %q", sc.Text())
		}
		h.le = append(h.le, time.Duration(sec*float64(time.Second)))
		h.count = append(h.count, c)
	}
	return h
}

// minus is h with the observations of an earlier reading taken out.
func (h histogram) minus(earlier histogram) histogram {
	d := histogram{le: h.le, count: slices.Clone(h.count)}
	for i := range d.count {
		if i < len(earlier.count) {
			d.count[i] -= earlier.count[i]
		}
	}
	return d
}

// quantileBound is the upper bound of the first bucket holding the q-th
// quantile; the last bound when none does (it is beyond the buckets).
func (h histogram) quantileBound(q float64) time.Duration {
	if len(h.count) == 0 {
		return 0
	}
	total := h.count[len(h.count)-1]
	for i, c := range h.count {
		if c >= q*total {
			return h.le[i]
		}
	}
	return h.le[len(h.le)-1]
}

// The latency benchmark's load.
const (
	latencyDevices  = 10
	latencyRate     = 5000
	latencyDuration = 4 * time.Second
	latencyTick     = 2 * time.Millisecond
)

// paced publishes spec.Rate messages/s over clients for spec.Duration,
// paced by the clock (every spec.Tick publishes what the elapsed time
// calls for, round-robin over the clients), records each publish in l
// under key/seq, and waits until all have arrived. It returns how many it
// sent.
func paced(tb benchTB, clients []paho.Client, topics, keys []string, spec loadSpec, l *telemetryLatencies) int {
	tb.Helper()
	ticker := time.NewTicker(spec.Tick)
	defer ticker.Stop()
	seq := 1
	var toks []paho.Token
	sent := 0
	t0 := time.Now()
	for time.Since(t0) < spec.Duration {
		<-ticker.C
		due := int(time.Since(t0).Seconds()*float64(spec.Rate)) / len(clients)
		for seq <= due {
			seq++
			for i, c := range clients {
				l.mu.Lock()
				l.sent[keys[i]+"/"+strconv.Itoa(seq)] = time.Now()
				l.mu.Unlock()
				toks = append(toks, c.Publish(topics[i], 1, false, sample(seq)))
				sent++
			}
		}
	}
	for _, t := range toks {
		if !t.WaitTimeout(30*time.Second) || t.Error() != nil {
			tb.Fatalf("publish: %v", t.Error())
		}
	}
	waitCount(tb, "latency samples", int64(sent), l.count)
	return sent
}

// latencyBridgeTopic is where the latency benchmark's bridge produces.
const latencyBridgeTopic = "bench.latency"

// latencyBridge subscribes sub to the benchmark topics and produces each
// message to latencyBridgeTopic through a sarama AsyncProducer that, as
// the service's producer, does not linger, keyed by the publisher's
// index. The returned func stops it.
func latencyBridge(tb testing.TB, s *stack, sub paho.Client) func() {
	tb.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Producer.RequiredAcks = sarama.WaitForAll
	ap, err := sarama.NewAsyncProducer(s.brokers, sc)
	if err != nil {
		tb.Fatal(err)
	}
	go func() {
		for err := range ap.Errors() {
			tb.Errorf("bridge: %v", err)
		}
	}()
	ap.Input() <- &sarama.ProducerMessage{Topic: latencyBridgeTopic, Value: sarama.StringEncoder("warm-up")}
	waitFor := time.Now().Add(10 * time.Second)
	for kafkatest.EndOffset(tb, s.brokers, latencyBridgeTopic) == 0 && time.Now().Before(waitFor) {
		time.Sleep(20 * time.Millisecond)
	}
	if tok := sub.Subscribe("$share/lat/bench/lat/+/telemetry", 1, func(_ paho.Client, m paho.Message) {
		ap.Input() <- &sarama.ProducerMessage{Topic: latencyBridgeTopic, Key: sarama.StringEncoder(strings.Split(m.Topic(), "/")[2]),
			Value: sarama.ByteEncoder(m.Payload())}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		tb.Fatalf("subscribe: %v", tok.Error())
	}
	return func() {
		sub.Unsubscribe("$share/lat/bench/lat/+/telemetry").Wait()
		_ = ap.Close()
	}
}

// BenchmarkCommandRoundTrip sends commands that wait for their result to an
// online simulated device, one after another, and reports the latency of
// SendCommand.
func BenchmarkCommandRoundTrip(b *testing.B) {
	const n = 300
	s := start(b, func(c *device.Config) { c.PresenceDebounce = 100 * time.Millisecond })
	devs := s.provision(b, 1)
	dev := devs[0].ID
	ownerCtx := s.owner(b, "+79510000901", devs[0])
	s.fleet(b, devs, time.Second)
	cmds := devicev1.NewCommandServiceClient(s.devConn)
	eventually(b, "the device online", 20*time.Second, func() bool {
		d, err := datav1.NewDeviceServiceClient(s.dataConn).GetDevice(ownerCtx, &datav1.GetDeviceRequest{DeviceId: dev})
		return err == nil && d.GetDevice().GetOnline()
	})
	params, err := structpb.NewStruct(map[string]any{"mode": "cool"})
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		lat := make([]time.Duration, 0, n)
		for range n {
			t0 := time.Now()
			r, err := cmds.SendCommand(ownerCtx, &devicev1.SendCommandRequest{DeviceId: dev, Name: "set_mode",
				Params: params, WaitForResult: true})
			if err != nil {
				b.Fatal(err)
			}
			if r.GetCommand().GetStatus() != devicev1.CommandStatus_COMMAND_STATUS_SUCCEEDED {
				b.Fatalf("command: %v", r.GetCommand())
			}
			lat = append(lat, time.Since(t0))
		}
		b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
		b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
		b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	}
}

// startMosquitto runs a real Mosquitto 2 with the dynamic-security plugin
// and the service account, and returns it. Unacknowledged messages may
// wait in any number (the ingester's buffer and batch must fit; the
// default, 20, would throttle ingest) and queue without limit (the
// generators bound the backlog). It publishes its $SYS figures every
// second, so that Heap is at most a second old.
func startMosquitto(tb testing.TB, adminPass string, persist bool) *mosquittotest.Broker {
	tb.Helper()
	m := mosquittotest.Start(tb, mosquittotest.Options{AdminPassword: adminPass, Persist: persist,
		Config: "max_inflight_messages 0\nmax_queued_messages 0\nsys_interval 1\n"})
	m.AddClient(serviceUser, servicePass)
	return m
}

// BenchmarkIngestMosquitto is BenchmarkIngest through a real Mosquitto 2
// with the dynamic-security plugin (BROKER_MODE=mosquitto).
func BenchmarkIngestMosquitto(b *testing.B) {
	s := startWithMosquitto(b)
	for range b.N {
		ingestBench(b, s, s.mqttURL, 10000)
	}
}

// startWithMosquitto starts a real Mosquitto 2 with the dynamic-security
// plugin and the stack on it (BROKER_MODE=mosquitto).
func startWithMosquitto(b *testing.B) *stack {
	const adminPass = "dynsec-admin-secret"
	url := startMosquitto(b, adminPass, false).URL
	return start(b, func(c *device.Config) {
		benchConfig(c)
		c.BrokerMode = device.BrokerMosquitto
		c.Mosquitto = device.MosquittoConfig{URL: url, Username: "admin", Password: adminPass}
		c.MQTT.URL = url
	})
}
