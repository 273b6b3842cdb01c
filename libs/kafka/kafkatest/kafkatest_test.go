package kafkatest_test

import (
	"testing"

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
