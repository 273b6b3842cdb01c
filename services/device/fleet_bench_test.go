package device_test

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"golang.org/x/sync/errgroup"

	"github.com/comfortech/platform/services/device"
	"github.com/comfortech/platform/services/device/dynsec"
	"github.com/comfortech/platform/services/device/internal/app"
	"github.com/comfortech/platform/services/device/internal/mosquittotest"
	"github.com/comfortech/platform/services/device/simulator"
)

// The fleet benchmark's load: a realistic steady state, not a stress test.
const (
	fleetDevices = 10_000
	// fleetInterval is each device's telemetry period (±20 % jitter): a
	// thermostat reports every 10 to 30 s.
	fleetInterval = 15 * time.Second
	// fleetConnectRate is the simulator's (first) connections per second.
	// Each connect costs the broker's auth hook a call to the device
	// service (a SHA-256 check of the secret) and the data service a
	// presence change and a state report, which the device service's
	// report workers store eight at a time. When device secrets were
	// argon2id hashes and state reports were stored on the link's delivery
	// goroutine, 30/s was the most this stack sustained: above it the link
	// fell more than 8,192 messages behind and the broker dropped messages
	// for it (mochi: "client store quota reached").
	fleetConnectRate = 200
	// fleetHold is how long the connected fleet runs before memory is
	// measured: a whole telemetry period with its jitter, so every device
	// has published and every buffer on the way has been used.
	fleetHold = fleetInterval * 6 / 5
	// fleetProvisioners is how many BatchProvisionDevices calls run at
	// once: one batch's registration in the data service overlaps the
	// next one's.
	fleetProvisioners = 2
)

// BenchmarkFleet10k connects 10,000 simulated devices to the embedded mochi
// broker (with the device-auth hook asking the device service) and keeps
// them connected: each device publishes `online` retained on its status
// topic with the last will `offline`, subscribes to its commands and
// desired state, reports its state and publishes telemetry every 15 s
// ± 20 %. It reports how many connected, how long connecting them took
// (at fleetConnectRate), when the device service's presence counted them
// all online (comfort_device_presence_changes_total online − offline on
// its /metrics), the CPU each part spent while they connected (by the
// stack's part labels, see cpuByPart), and the memory each part holds for
// them. Provisioning the devices is measured too, outside the timed part.
//
// The simulator runs as a child process (services/device/cmd/simulator,
// built into a temporary directory), so its memory is its own: its RSS is
// read from /proc/<pid>/status. This process then holds the broker, the
// device service, the data service (SQLite), kfake and the identity
// provider. Their memory is told apart by the allocating code: after a
// GC, the heap profile's live bytes (inuse_space, sampled every 64 KiB)
// and the goroutine profile are taken before the fleet starts and once it
// has run for a telemetry period, and every sample is charged to the
// innermost frame of its stack that belongs to a part (see fleetOwners):
// mochi, mqttauth and brokerclient are the broker; package device, its
// internal packages and paho (only the device service's link uses it in
// this process) are the device service; and so on. Goroutines are counted
// by their part label instead where they carry one (the stack labels its
// parts' goroutines, see labelled), and goroutine stacks are charged by
// each part's share of the goroutines added (the runtime does not say
// which stack is whose size). What no part's frame allocated —
// gRPC transports, sarama, the runtime — is reported as shared; SQLite's C
// heap (modernc's libc allocates outside Go) is in neither profile and
// shows only in the process's RSS, which is reported whole besides, with
// the free heap returned to the OS first.
func BenchmarkFleet10k(b *testing.B) { fleetBench(b, nil) }

// BenchmarkFleet10kMosquitto is BenchmarkFleet10k through a real
// Mosquitto 2 with the dynamic-security plugin (the production broker),
// which runs as its own process: its memory is its RSS, read from
// /proc/<pid>/status, and its CPU is read from /proc/<pid>/stat.
//
// The devices are provisioned in the device service as usual, but the
// service mirrors none of them into the plugin (it runs with the embedded
// broker's no-op Broker, its link on Mosquitto): the plugin rewrites its
// whole file after every change through its control topic, so 10,000
// devices would take about an hour (38 s for the first thousand, 170 s
// for the third). They are seeded into the plugin's file instead, each
// client and role as AddDevice creates them (mosquittotest.Seed, held to
// that by dynsec's TestSeededDevices), and the broker restarted.
//
// Its broker figures are Mosquitto's. Like mochi's, broker-B/device and
// broker-MB are the live heap the connected fleet added: Mosquitto's own
// count of the bytes it has allocated and not freed
// (mosquittotest.Broker.Heap); broker-dynsec-B/device is the heap the
// plugin holds per provisioned device, connected or not. broker-rss-MB is
// its RSS with the fleet connected, and broker-rss-B/device that RSS less
// its RSS before the devices were seeded, per device: all it holds for a
// device, credentials and connection. Its RSS does not tell the two
// apart: loading the seeded file parses it whole, and the allocator keeps
// what that freed for the connections that follow (measured: RSS 116 MB
// after loading, the same with the fleet connected). broker-cpu-ms/connect
// is its CPU while the fleet connected.
func BenchmarkFleet10kMosquitto(b *testing.B) {
	const adminPass = "dynsec-admin-secret"
	// Mosquitto holds a file per connection.
	raiseFileLimit(b, fleetDevices+1024)
	fleetBench(b, startMosquitto(b, adminPass, false))
}

// fleetBench is BenchmarkFleet10k through the embedded mochi broker (m
// nil) or through the Mosquitto m.
func fleetBench(b *testing.B, broker *mosquittotest.Broker) {
	sim := buildSimulator(b)
	// Finer heap sampling than the default 512 KiB, so the smaller parts'
	// shares are not sampling noise. Only allocations from now on count,
	// before and after alike.
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 64 << 10

	var edit func(*device.Config)
	if broker != nil {
		edit = func(c *device.Config) { c.MQTT.URL = broker.URL }
	}
	s := start(quietTB{b}, edit)
	t0 := time.Now()
	batches := make([][]provisioned, (fleetDevices+app.MaxBatch-1)/app.MaxBatch)
	var g errgroup.Group
	g.SetLimit(fleetProvisioners)
	for i := range batches {
		g.Go(func() (err error) {
			batches[i], err = s.provisionBatch(min(app.MaxBatch, fleetDevices-i*app.MaxBatch))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatalf("provision: %v", err)
	}
	provisioning := time.Since(t0)
	creds := make([]simulator.Credential, 0, fleetDevices)
	for _, ps := range batches {
		for _, p := range ps {
			creds = append(creds, p.Credential)
		}
	}
	credFile := filepath.Join(b.TempDir(), "devices.json")
	body, err := json.Marshal(creds)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(credFile, body, 0o600); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(provisioning.Seconds(), "provision-s")
	b.Logf("provisioned %d devices in %v (BatchProvisionDevices, %d a batch, %d at once)", len(creds),
		provisioning.Round(time.Millisecond), app.MaxBatch, fleetProvisioners)
	var m *fleetMosquitto
	if broker != nil {
		m = seedMosquitto(b, s, broker, creds)
	}

	// Provisioning leaves work behind (the data service's outbox relays
	// 10,000 events, the device service consumes them): start from a
	// quiet stack.
	settle := settled(b, time.Minute)
	b.ReportMetric(settle.Seconds(), "settle-s")

	b.ResetTimer()
	for range b.N {
		fleetRun(b, s, sim, credFile, m)
	}
}

// fleetMosquitto is the Mosquitto of BenchmarkFleet10kMosquitto.
type fleetMosquitto struct {
	*mosquittotest.Broker
	// emptyRSS is its RSS before the devices were seeded, with only the
	// dynamic-security admin and the service account.
	emptyRSS int64
}

// seedMosquitto puts the devices of creds into m's dynamic-security plugin
// (see BenchmarkFleet10kMosquitto): it stops m, seeds its file, starts it
// again and waits until the device service's link has subscribed again.
func seedMosquitto(b *testing.B, s *stack, m *mosquittotest.Broker, creds []simulator.Credential) *fleetMosquitto {
	devs := make([]dynsec.Device, len(creds))
	for i, c := range creds {
		d, err := dynsec.NewDevice(c.ID, c.Secret)
		if err != nil {
			b.Fatal(err)
		}
		devs[i] = d
	}
	empty, _ := procMemory(b, m.Pid())
	emptyHeap := m.Heap()
	t0 := time.Now()
	m.Stop()
	eventually(b, "the device service to see the broker gone", 10*time.Second, func() bool { return !ready(s.devOps) })
	m.Seed(devs)
	m.Start()
	eventually(b, "the device service to subscribe again", time.Minute, func() bool { return ready(s.devOps) })
	seeding := time.Since(t0)
	time.Sleep(2 * time.Second) // a $SYS figure from after the link's return
	seeded, _ := procMemory(b, m.Pid())
	seededHeap := m.Heap()
	n := float64(len(devs))
	mb := func(v int64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(seeding.Seconds(), "seed-s")
	b.ReportMetric(float64(seededHeap-emptyHeap)/n, "broker-dynsec-B/device")
	b.Logf("seeded %d devices into Mosquitto's dynamic-security file and restarted it in %v: heap %.1f → %.1f MB (%.0f B/device), RSS %.1f → %.1f MB",
		len(devs), seeding.Round(time.Millisecond), mb(emptyHeap), mb(seededHeap), float64(seededHeap-emptyHeap)/n, mb(empty), mb(seeded))
	return &fleetMosquitto{Broker: m, emptyRSS: empty}
}

// raiseFileLimit lets the processes this one starts open n files, as far
// as the hard limit allows. Go raises its own soft limit to the hard one
// but starts other processes with the soft limit it found, unless the
// program sets the limit itself.
func raiseFileLimit(tb testing.TB, n uint64) {
	tb.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		tb.Fatal(err)
	}
	if l.Max < n {
		tb.Fatalf("the hard limit of open files is %d; the broker needs %d for the fleet (ulimit -Hn)", l.Max, n)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		tb.Fatal(err)
	}
}

// quietTB drops the stack's debug and info lines: one per gRPC call at
// debug (10,000 devices make hundreds of thousands), which would fill this
// process's memory, and the start-up lines, which would take the ten lines
// `go test` keeps of a benchmark's output. Warnings and errors pass.
type quietTB struct{ testing.TB }

// Logf implements testing.TB.
func (q quietTB) Logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	// zaptest's lines are "time\tLEVEL\tlogger\tmessage...".
	if f := strings.SplitN(line, "\t", 3); len(f) > 1 && (f[1] == "DEBUG" || f[1] == "INFO") {
		return
	}
	q.TB.Log(line)
}

// buildSimulator builds the simulator binary into a temporary directory.
func buildSimulator(tb testing.TB) string {
	tb.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		tb.Skipf("no go command to build the simulator: %v", err)
	}
	bin := filepath.Join(tb.TempDir(), "simulator")
	if out, err := exec.Command(goBin, "build", "-o", bin, "./cmd/simulator").CombinedOutput(); err != nil {
		tb.Fatalf("build the simulator: %v\n%s", err, out)
	}
	return bin
}

// simProcess is a running simulator binary.
type simProcess struct {
	cmd *exec.Cmd
	// connected, failed and lost are the devices connected, the connection
	// attempts refused or failed and the connections the broker closed,
	// from its periodic stats line.
	connected, failed, lost atomic.Int64
	done                    chan struct{}
	logFile                 string
}

// simStats matches the counts of the simulator's stats line ("15:04:05
// connected 812/10000, published ... connects 815 (failed 3, lost 0, ...").
var simStats = regexp.MustCompile(`connected (\d+)/\d+,.* \(failed (\d+), lost (\d+),`)

// startSimulator runs the simulator binary bin on the stack's broker with
// the credentials in credFile until tb ends.
func startSimulator(tb testing.TB, bin, broker, credFile string) *simProcess {
	tb.Helper()
	p := &simProcess{done: make(chan struct{}), logFile: filepath.Join(tb.TempDir(), "simulator.log")}
	logs, err := os.Create(p.logFile)
	if err != nil {
		tb.Fatal(err)
	}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(os.Environ(), "SIM_BROKER="+broker, "SIM_CREDENTIALS="+credFile,
		"SIM_INTERVAL="+fleetInterval.String(), "SIM_CONNECT_RATE="+strconv.Itoa(fleetConnectRate),
		"SIM_STATS_EVERY=200ms", "LOG_LEVEL=warn", "LOG_FORMAT=console")
	p.cmd.Stderr = logs
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := simStats.FindStringSubmatch(sc.Text()); m != nil {
				for i, v := range []*atomic.Int64{&p.connected, &p.failed, &p.lost} {
					n, _ := strconv.ParseInt(m[i+1], 10, 64)
					v.Store(n)
				}
			}
			_, _ = fmt.Fprintln(logs, sc.Text())
		}
	}()
	tb.Cleanup(func() {
		p.stop(tb)
		_ = logs.Close()
		if tb.Failed() {
			if b, err := os.ReadFile(p.logFile); err == nil {
				tb.Logf("simulator output (tail):\n%s", tail(b, 4096))
			}
		}
	})
	return p
}

// stop asks the simulator to disconnect its devices cleanly (SIGTERM) and
// kills it if it has not exited within a minute.
func (p *simProcess) stop(tb testing.TB) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		tb.Errorf("simulator did not stop within a minute; killed")
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.cmd.Wait()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// fleetRun is one iteration of BenchmarkFleet10k: connect the fleet, wait
// for presence, run a telemetry period, measure, stop the fleet and wait
// until the service has seen every device go offline. The broker is the
// embedded one in this process, or m.
func fleetRun(b *testing.B, s *stack, sim, credFile string, m *fleetMosquitto) {
	online := func() int64 {
		return counter(b, s.devOps, "comfort_device_presence_changes_total{", `"online"`) -
			counter(b, s.devOps, "comfort_device_presence_changes_total{", `"offline"`)
	}
	samples := func() int64 { return counter(b, s.devOps, "comfort_device_telemetry_samples_total", "") }

	var mosqHeapBefore int64
	if m != nil {
		mosqHeapBefore = m.Heap()
	}
	before := takeMemSnapshot(b)
	t0 := time.Now()
	var p *simProcess
	var connectTime, presenceTime, mosqCPU time.Duration
	// The CPU each part spends while the fleet connects (telemetry of the
	// devices already connected included).
	if m != nil {
		mosqCPU = procCPU(b, m.Pid())
	}
	cpu := cpuByPart(b, func() {
		p = startSimulator(b, sim, s.mqttURL, credFile)
		// Half as long again as the rate allows, and a minute more.
		connectWait := time.Duration(fleetDevices/fleetConnectRate)*time.Second*3/2 + time.Minute
		waitFor(b, "the devices to connect", connectWait, func() int64 { return p.connected.Load() }, fleetDevices)
		connectTime = time.Since(t0)
		waitFor(b, "the device service to count them online", time.Minute, online, fleetDevices)
		presenceTime = time.Since(t0)
	})
	if m != nil {
		mosqCPU = procCPU(b, m.Pid()) - mosqCPU
	}

	s0 := samples()
	time.Sleep(fleetHold)
	rate := float64(samples()-s0) / fleetHold.Seconds()
	connectedNow := p.connected.Load()
	onlineNow := online()
	after := takeMemSnapshot(b)
	simRSS, simPeak := procMemory(b, p.cmd.Process.Pid)

	owners := after.minus(before)
	// The live heap the connected fleet added to the broker: its part of
	// this process's, or Mosquitto's own count.
	brokerMem := owners[partBroker]
	var mosqRSS, mosqPeak int64
	if m != nil {
		mosqRSS, mosqPeak = procMemory(b, m.Pid())
		brokerMem = m.Heap() - mosqHeapBefore
	}
	n := float64(fleetDevices)
	mb := func(v int64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(float64(connectedNow), "devices-connected")
	b.ReportMetric(float64(onlineNow), "presence-online")
	b.ReportMetric(connectTime.Seconds(), "connect-s")
	b.ReportMetric(presenceTime.Seconds(), "presence-s")
	b.ReportMetric(float64(p.failed.Load()), "connect-failures")
	b.ReportMetric(float64(p.lost.Load()), "connections-lost")
	b.ReportMetric(rate, "telemetry-msgs/s")
	b.ReportMetric(float64(brokerMem)/n, "broker-B/device")
	b.ReportMetric(float64(owners[partDevice])/n, "service-B/device")
	b.ReportMetric(mb(brokerMem), "broker-MB")
	b.ReportMetric(mb(owners[partDevice]), "service-MB")
	b.ReportMetric(float64(after.gs[partDevice]-before.gs[partDevice]), "service-goroutines")
	b.ReportMetric(mb(after.goMemory()-before.goMemory()), "proc-go-delta-MB")
	b.ReportMetric(mb(after.rss-before.rss), "proc-rss-delta-MB")
	b.ReportMetric(mb(after.rss), "proc-rss-MB")
	b.ReportMetric(float64(simRSS)/n, "sim-rss-B/device")
	b.ReportMetric(mb(simRSS), "sim-rss-MB")
	if m != nil {
		b.ReportMetric(mb(mosqRSS), "broker-rss-MB")
		b.ReportMetric(float64(mosqRSS-m.emptyRSS)/n, "broker-rss-B/device")
		b.ReportMetric(float64(mosqCPU.Microseconds())/1000/n, "broker-cpu-ms/connect")
	} else if cpu != nil {
		b.ReportMetric(float64(cpu[partBroker].Microseconds())/1000/n, "broker-cpu-ms/connect")
	}
	if cpu != nil {
		b.ReportMetric(float64(cpu[partDevice].Microseconds())/1000/n, "service-cpu-ms/connect")
	}

	b.Logf("%d devices connected in %v (%d/s asked, %d attempts failed, %d connections lost), all online in the device service after %v; telemetry %.0f msgs/s",
		connectedNow, connectTime.Round(time.Millisecond), fleetConnectRate, p.failed.Load(), p.lost.Load(), presenceTime.Round(time.Millisecond), rate)
	b.Logf("this process: RSS %.0f → %.0f MB (peak %.0f MB), Go heap+stacks %.0f → %.0f MB, goroutines %d → %d",
		mb(before.rss), mb(after.rss), mb(after.peak), mb(before.goMemory()), mb(after.goMemory()), before.goroutines(), after.goroutines())
	var parts []string
	for _, o := range append(fleetOwnerNames(), "shared") {
		if o == partBroker && m != nil {
			continue // not in this process
		}
		parts = append(parts, fmt.Sprintf("%s %+.1f MB (heap %+.1f, %+d goroutines; %.0f B/device)", o, mb(owners[o]),
			mb(after.heap[o]-before.heap[o]), after.gs[o]-before.gs[o], float64(owners[o])/n))
	}
	b.Logf("added by part: %s", strings.Join(parts, ", "))
	var cpus []string
	for _, part := range slices.Sorted(maps.Keys(cpu)) {
		name := cmp.Or(part, "unlabelled")
		cpus = append(cpus, fmt.Sprintf("%s %.1f s", name, cpu[part].Seconds()))
	}
	b.Logf("simulator process: RSS %.0f MB (peak %.0f MB), %.0f B/device; CPU while connecting: %s",
		mb(simRSS), mb(simPeak), float64(simRSS)/n, strings.Join(cpus, ", "))
	if m != nil {
		b.Logf("mosquitto process: heap %.1f → %.1f MB (%+.0f B/device); RSS %.1f MB (peak %.1f MB), %.1f MB without the devices (%.0f B/device); CPU while connecting %.1f s",
			mb(mosqHeapBefore), mb(mosqHeapBefore+brokerMem), float64(brokerMem)/n, mb(mosqRSS), mb(mosqPeak),
			mb(m.emptyRSS), float64(mosqRSS-m.emptyRSS)/n, mosqCPU.Seconds())
	}

	if connectedNow != fleetDevices || onlineNow != fleetDevices {
		b.Errorf("after %v: %d connected, %d online in the device service; want %d", fleetHold, connectedNow, onlineNow, fleetDevices)
	}
	b.StopTimer()
	// Every device goes offline cleanly, all within a few seconds. Whether
	// the device service sees every `offline` is reported, not required:
	// 10,000 at once can overrun its link's 8,192 in-flight messages, and
	// the next iteration needs only that they come back online.
	t1 := time.Now()
	p.stop(b)
	deadline := time.Now().Add(time.Minute)
	for online() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	b.Logf("fleet stopped: the device service counted %d of %d offline after %v", fleetDevices-online(), fleetDevices,
		time.Since(t1).Round(time.Millisecond))
	// The counter moves before the change is recorded in the data service,
	// on Kafka and in the history: let the last ones finish before the
	// stack stops.
	time.Sleep(3 * time.Second)
	b.StartTimer()
}

// settled waits, up to max, until this process uses less than a fifth of a
// CPU over a second, and returns how long that took.
func settled(tb testing.TB, max time.Duration) time.Duration {
	tb.Helper()
	t0 := time.Now()
	for time.Since(t0) < max {
		c0 := cpuTime(tb)
		time.Sleep(time.Second)
		if cpuTime(tb)-c0 < 200*time.Millisecond {
			break
		}
	}
	return time.Since(t0)
}

// waitFor waits until count() reaches n.
func waitFor(tb testing.TB, what string, d time.Duration, count func() int64, n int64) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for count() < n {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s: %d of %d", d, what, count(), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fleetOwners are the parts running in the benchmark's process, each
// with the function-name prefixes of its code, tried in this order.
var fleetOwners = []struct {
	name     string
	prefixes []string
}{
	{partBroker, []string{"github.com/mochi-mqtt/server/", "github.com/comfortech/platform/services/device/mqttauth.",
		"github.com/comfortech/platform/services/device/brokerclient."}},
	{partDevice, []string{"github.com/comfortech/platform/services/device.", "github.com/comfortech/platform/services/device/internal/",
		"github.com/eclipse/paho.mqtt.golang"}},
	{partData, []string{"github.com/comfortech/platform/services/data."}},
	{partKafka, []string{"github.com/twmb/franz-go/"}},
	{"harness", []string{"testing.", "go.uber.org/zap/zaptest", "github.com/comfortech/platform/deployments/allinone/devstack/idp",
		"github.com/comfortech/platform/services/device_test.", "runtime/pprof."}},
}

func fleetOwnerNames() []string {
	names := make([]string, len(fleetOwners))
	for i, o := range fleetOwners {
		names[i] = o.name
	}
	return names
}

// ownerOf returns the part of a profile sample: its part label (which the
// stack's goroutines carry, see labelled) in a goroutine profile, else
// the part of the innermost frame of its stack (innermost first, inlined
// calls included) that belongs to one, else "shared".
func ownerOf(smp *profile.Sample) string {
	if l := smp.Label[partLabel]; len(l) == 1 {
		return l[0]
	}
	for _, loc := range smp.Location {
		for _, l := range loc.Line {
			if l.Function == nil {
				continue
			}
			for _, o := range fleetOwners {
				for _, p := range o.prefixes {
					if strings.HasPrefix(l.Function.Name, p) {
						return o.name
					}
				}
			}
		}
	}
	return "shared"
}

// memSnapshot is this process's memory at one moment, right after a GC.
type memSnapshot struct {
	heap map[string]int64 // live heap bytes by part
	gs   map[string]int64 // goroutines by part
	mem  runtime.MemStats
	rss  int64
	peak int64
}

func takeMemSnapshot(tb testing.TB) memSnapshot {
	tb.Helper()
	runtime.GC()
	runtime.GC() // the heap profile is as of the last completed cycle
	s := memSnapshot{heap: byOwner(tb, "heap", "inuse_space"), gs: byOwner(tb, "goroutine", "goroutine")}
	// Return the free heap to the OS, so that the RSS is what is live,
	// not what connecting's garbage once took.
	debug.FreeOSMemory()
	runtime.ReadMemStats(&s.mem)
	s.rss, s.peak = procMemory(tb, os.Getpid())
	return s
}

// goMemory is the Go heap in use plus goroutine stacks.
func (s memSnapshot) goMemory() int64 { return int64(s.mem.HeapInuse + s.mem.StackInuse) }

func (s memSnapshot) goroutines() int64 {
	var n int64
	for _, v := range s.gs {
		n += v
	}
	return n
}

// minus returns each part's memory added since before: its live heap and
// its share of the goroutine stacks added, by its share of the goroutines
// added.
func (s memSnapshot) minus(before memSnapshot) map[string]int64 {
	out := map[string]int64{}
	stacks := int64(s.mem.StackInuse) - int64(before.mem.StackInuse)
	added := s.goroutines() - before.goroutines()
	for _, o := range append(fleetOwnerNames(), "shared") {
		out[o] = s.heap[o] - before.heap[o]
		if added > 0 {
			out[o] += stacks * (s.gs[o] - before.gs[o]) / added
		}
	}
	return out
}

// byOwner sums the sample values of type typ of the named runtime profile
// by part.
func byOwner(tb testing.TB, name, typ string) map[string]int64 {
	tb.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup(name).WriteTo(&buf, 0); err != nil {
		tb.Fatal(err)
	}
	prof, err := profile.Parse(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	idx := -1
	for i, st := range prof.SampleType {
		if st.Type == typ {
			idx = i
		}
	}
	if idx < 0 {
		tb.Fatalf("%s profile has no %s samples", name, typ)
	}
	out := map[string]int64{}
	for _, smp := range prof.Sample {
		out[ownerOf(smp)] += smp.Value[idx]
	}
	return out
}

// procCPU returns the user and system CPU time process pid has used, from
// /proc/<pid>/stat (in clock ticks of 1/100 s: USER_HZ, which is 100 on
// every architecture this runs on).
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	body, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// "pid (comm) state ppid ...": utime and stime are the 14th and 15th
	// fields, the 12th and 13th after the command name (which may hold
	// spaces).
	f := strings.Fields(string(body[bytes.LastIndexByte(body, ')')+1:]))
	if len(f) < 13 {
		tb.Fatalf("/proc/%d/stat: %q", pid, body)
	}
	var ticks int64
	for _, v := range f[11:13] {
		t, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			tb.Fatalf("/proc/%d/stat: %v", pid, err)
		}
		ticks += t
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// procMemory returns the resident set size of process pid and its peak,
// in bytes, from /proc/<pid>/status.
func procMemory(tb testing.TB, pid int) (rss, peak int64) {
	tb.Helper()
	body, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(body), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			peak = v << 10
		}
	}
	return rss, peak
}
