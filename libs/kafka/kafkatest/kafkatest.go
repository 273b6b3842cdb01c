// Package kafkatest starts embedded Kafka-protocol brokers (kfake) for tests
// and reads topics back, so tests of any part can run the real kafka
// package end to end without a Kafka installation.
package kafkatest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/comfortech/platform/libs/kafka"
)

// NewCluster starts a one-broker kfake cluster on a random port, with topic
// auto-creation enabled and opts applied after that, and closes it when the
// test ends.
func NewCluster(tb testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	tb.Helper()
	all := append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation()}, opts...)
	c, err := kfake.NewCluster(all...)
	if err != nil {
		tb.Fatalf("kafkatest: start cluster: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Produced is a record as a cluster received it in a produce request.
type Produced struct {
	Topic      string
	Key, Value []byte
	// At is when the broker received the request; it appends the
	// records right after, so this is when they went into Kafka.
	At time.Time
}

// WatchProduce calls f with every record c receives in a produce request
// from now on, as it receives it, before the broker appends it (and
// whether or not it then accepts it). f runs on the cluster's goroutine,
// which waits for it. Compressed batches are not read: tb fails.
func WatchProduce(tb testing.TB, c *kfake.Cluster, f func(Produced)) {
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		at := time.Now()
		for _, t := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range t.Partitions {
				if err := eachRecord(p.Records, func(r kmsg.Record) {
					f(Produced{Topic: t.Topic, Key: r.Key, Value: r.Value, At: at})
				}); err != nil {
					tb.Errorf("kafkatest: produce request to %s/%d: %v", t.Topic, p.Partition, err)
				}
			}
		}
		return nil, nil, false // not handled: the broker handles it, and f stays
	})
}

// eachRecord calls f with each record of the record batches in b.
func eachRecord(b []byte, f func(kmsg.Record)) error {
	for len(b) > 0 {
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(b); err != nil {
			return err
		}
		if batch.Attributes&0x07 != 0 {
			return errors.New("a compressed record batch")
		}
		rs := batch.Records
		for range batch.NumRecords {
			length, n := binary.Varint(rs)
			if n <= 0 || int(length) > len(rs)-n {
				return errors.New("a truncated record")
			}
			var r kmsg.Record
			if err := r.ReadFrom(rs[:n+int(length)]); err != nil {
				return err
			}
			f(r)
			rs = rs[n+int(length):]
		}
		// Length counts what follows the offset and length fields.
		b = b[12+int(batch.Length):]
	}
	return nil
}

// FreePort returns a TCP port that was free a moment ago, for a cluster
// started later with kfake.Ports (a broker that is "down" at first).
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("kafkatest: free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr returns the 127.0.0.1 address for port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Config returns a kafka.Config for brokers with short retry intervals
// suited to tests.
func Config(brokers []string) kafka.Config {
	return kafka.Config{
		Brokers:        brokers,
		ClientID:       "kafkatest",
		RetryBackoff:   50 * time.Millisecond,
		DialTimeout:    time.Second,
		CommitInterval: 100 * time.Millisecond,
	}
}

// ReadTopic reads every partition of topic from the oldest offset until it
// holds n messages or timeout passes, and returns them ordered by
// partition then offset. It fails the test on timeout.
func ReadTopic(tb testing.TB, brokers []string, topic string, n int, timeout time.Duration) []kafka.Message {
	tb.Helper()
	msgs, err := readTopic(brokers, topic, n, timeout)
	if err != nil {
		tb.Fatalf("kafkatest: read %s: %v", topic, err)
	}
	return msgs
}

func readTopic(brokers []string, topic string, n int, timeout time.Duration) ([]kafka.Message, error) {
	deadline := time.Now().Add(timeout)
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Consumer.Return.Errors = true
	// Close waits for the fetch in flight; keep it short.
	sc.Consumer.MaxWaitTime = 50 * time.Millisecond
	c, err := sarama.NewConsumer(brokers, sc)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.Close() }()

	// The topic may not exist yet: wait for its metadata.
	var parts []int32
	for {
		parts, err = c.Partitions(topic)
		if err == nil && len(parts) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no partitions: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := make(chan *sarama.ConsumerMessage, 1024)
	stop := make(chan struct{})
	var pcs []sarama.PartitionConsumer
	defer func() {
		close(stop) // first, so no forwarder blocks on out while closing
		for _, pc := range pcs {
			_ = pc.Close()
		}
	}()
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		pcs = append(pcs, pc)
		go func() {
			for m := range pc.Messages() {
				select {
				case out <- m:
				case <-stop:
				}
			}
		}()
	}
	var got []*sarama.ConsumerMessage
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for len(got) < n {
		select {
		case m := <-out:
			got = append(got, m)
		case <-timer.C:
			return nil, errors.New("timed out after " + strconv.Itoa(len(got)) + " of " + strconv.Itoa(n) + " messages")
		}
	}
	sort.SliceStable(got, func(i, j int) bool {
		if got[i].Partition != got[j].Partition {
			return got[i].Partition < got[j].Partition
		}
		return got[i].Offset < got[j].Offset
	})
	msgs := make([]kafka.Message, len(got))
	for i, cm := range got {
		m := kafka.Message{Topic: cm.Topic, Key: cm.Key, Value: cm.Value, Partition: cm.Partition, Offset: cm.Offset, Timestamp: cm.Timestamp}
		for _, h := range cm.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: string(h.Key), Value: h.Value})
		}
		msgs[i] = m
	}
	return msgs, nil
}

// EndOffset returns the sum over topic's partitions of the next offset to
// be written: the number of records ever produced to it, so a test can
// assert that nothing was written twice.
func EndOffset(tb testing.TB, brokers []string, topic string) int64 {
	tb.Helper()
	c := client(tb, brokers)
	defer func() { _ = c.Close() }()
	var sum int64
	for _, off := range endOffsets(tb, c, topic) {
		sum += off
	}
	return sum
}

// DeleteRecords deletes every record written so far to the topics on
// brokers (the internal __ topics aside), as retention would. kfake keeps
// what it is sent in the memory of the process it runs in; a benchmark
// that shares that process deletes what it no longer reads, so that the
// records of earlier runs are not the heap its garbage collector scans.
func DeleteRecords(tb testing.TB, brokers []string) {
	tb.Helper()
	c := client(tb, brokers)
	defer func() { _ = c.Close() }()
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		tb.Fatalf("kafkatest: admin: %v", err)
	}
	topics, err := c.Topics()
	if err != nil {
		tb.Fatalf("kafkatest: topics: %v", err)
	}
	for _, topic := range topics {
		if strings.HasPrefix(topic, "__") {
			continue
		}
		if err := admin.DeleteRecords(topic, endOffsets(tb, c, topic)); err != nil {
			tb.Fatalf("kafkatest: delete records of %s: %v", topic, err)
		}
	}
}

// client connects to brokers.
func client(tb testing.TB, brokers []string) sarama.Client {
	tb.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	c, err := sarama.NewClient(brokers, sc)
	if err != nil {
		tb.Fatalf("kafkatest: client: %v", err)
	}
	return c
}

// endOffsets returns the next offset to be written of each of topic's
// partitions.
func endOffsets(tb testing.TB, c sarama.Client, topic string) map[int32]int64 {
	tb.Helper()
	parts, err := c.Partitions(topic)
	if err != nil {
		tb.Fatalf("kafkatest: partitions of %s: %v", topic, err)
	}
	ends := make(map[int32]int64, len(parts))
	for _, p := range parts {
		if ends[p], err = c.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			tb.Fatalf("kafkatest: end offset of %s[%d]: %v", topic, p, err)
		}
	}
	return ends
}
