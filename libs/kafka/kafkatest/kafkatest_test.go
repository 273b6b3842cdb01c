package kafkatest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/comfortech/platform/libs/kafka/kafkatest"
)

func TestDeleteRecords(t *testing.T) {
	brokers := kafkatest.NewCluster(t).ListenAddrs()
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	for _, v := range []string{"a", "b", "c"} {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "t", Partition: 0, Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}

	kafkatest.DeleteRecords(t, brokers)

	c, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	oldest, err1 := c.GetOffset("t", 0, sarama.OffsetOldest)
	newest, err2 := c.GetOffset("t", 0, sarama.OffsetNewest)
	if err1 != nil || err2 != nil || oldest != 3 || newest != 3 {
		t.Fatalf("after DeleteRecords: oldest %d (%v), newest %d (%v); want both 3", oldest, err1, newest, err2)
	}
	if got := kafkatest.EndOffset(t, brokers, "t"); got != 3 {
		t.Fatalf("EndOffset = %d, want 3: deleting records does not rewind the log", got)
	}
}

func TestWatchProduce(t *testing.T) {
	c := kafkatest.NewCluster(t)
	var (
		mu   sync.Mutex
		seen []kafkatest.Produced
	)
	kafkatest.WatchProduce(t, c, func(p kafkatest.Produced) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, p)
	})
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(c.ListenAddrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	before := time.Now()
	if err := p.SendMessages([]*sarama.ProducerMessage{
		{Topic: "t", Key: sarama.StringEncoder("k1"), Value: sarama.StringEncoder("one")},
		{Topic: "t", Key: sarama.StringEncoder("k2"), Value: sarama.StringEncoder("two")},
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "u", Key: sarama.StringEncoder("k3"), Value: sarama.StringEncoder("three")}); err != nil {
		t.Fatal(err)
	}
	after := time.Now()

	mu.Lock()
	defer mu.Unlock()
	want := []struct{ topic, key, value string }{{"t", "k1", "one"}, {"t", "k2", "two"}, {"u", "k3", "three"}}
	if len(seen) != len(want) {
		t.Fatalf("watched %d records, want %d: %+v", len(seen), len(want), seen)
	}
	for i, w := range want {
		s := seen[i]
		if s.Topic != w.topic || string(s.Key) != w.key || string(s.Value) != w.value {
			t.Errorf("record %d: %s %q=%q, want %s %q=%q", i, s.Topic, s.Key, s.Value, w.topic, w.key, w.value)
		}
		if s.At.Before(before) || s.At.After(after) {
			t.Errorf("record %d watched at %v, outside the sends (%v to %v)", i, s.At, before, after)
		}
	}
}
