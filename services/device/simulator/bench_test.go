package simulator_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/comfortech/platform/services/device/simulator"
)

// BenchmarkFleetMemory connects 1,000 devices to an in-process broker and
// reports the heap and goroutine stacks they add per device, broker
// included (mochi's per-client cost is part of the figure).
func BenchmarkFleetMemory(b *testing.B) {
	const n = 1000
	for range b.N {
		broker := startBroker(b)
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		cs := make([]simulator.Credential, n)
		for i := range cs {
			cs[i] = simulator.Credential{ID: fmt.Sprintf("m-%05d", i), Secret: "s"}
		}
		f, err := simulator.New(simulator.Config{Broker: broker, Devices: cs, Interval: time.Minute, ConnectRate: 2000}, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		for f.Stats().Connected < n {
			time.Sleep(10 * time.Millisecond)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/n, "B/device")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/device")
		cancel()
		<-done
	}
}
