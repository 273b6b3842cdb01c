package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// watchLag sets comfort_kafka_consumer_lag_messages for the runner's group
// every LagInterval until ctx ends, then removes the group's series. Lag is
// measured from the brokers' point of view, as Kafka's own tools do: the
// partitions' high watermarks minus the offsets the group committed, so it
// also counts what a dead or stuck member has left behind.
func (r *Runner) watchLag(ctx context.Context, sc *sarama.Config) {
	defer r.metrics.lag.DeletePartialMatch(prometheus.Labels{"group": r.rc.Group})
	var client sarama.Client
	defer func() {
		if client != nil {
			_ = client.Close()
		}
	}()
	for {
		var err error
		if client == nil {
			client, err = sarama.NewClient(r.cfg.Brokers, sc)
			if err != nil {
				client = nil
			}
		}
		if client != nil {
			err = r.measureLag(client)
		}
		if err != nil {
			r.log.Debug("consumer lag not measured", zap.Error(err))
		}
		if !sleep(ctx, r.rc.LagInterval) {
			return
		}
	}
}

// measureLag reads the group's committed offsets and the high watermarks
// of its topics' partitions and sets the lag gauge of each topic. A topic
// that does not exist yet is skipped.
func (r *Runner) measureLag(c sarama.Client) error {
	topics := *r.consuming.Load()
	for _, topic := range r.rc.Topics {
		if !slices.Contains(topics, topic) {
			// Not consumed now (Select): no lag to alert on.
			r.metrics.lag.DeleteLabelValues(r.rc.Group, topic)
		}
	}
	if len(topics) == 0 {
		return nil
	}
	if err := c.RefreshMetadata(topics...); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return fmt.Errorf("refresh metadata: %w", err)
	}
	parts := make(map[string][]int32, len(topics))
	for _, topic := range topics {
		ps, err := c.Partitions(topic)
		if err != nil || len(ps) == 0 {
			continue
		}
		parts[topic] = ps
	}
	if len(parts) == 0 {
		return nil
	}
	// The admin shares the client; closing it would close the client too.
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		return fmt.Errorf("cluster admin: %w", err)
	}
	committed, err := admin.ListConsumerGroupOffsets(r.rc.Group, parts)
	if err != nil {
		return fmt.Errorf("committed offsets of %s: %w", r.rc.Group, err)
	}
	for topic, ps := range parts {
		var lag int64
		for _, p := range ps {
			high, err := c.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return fmt.Errorf("high watermark of %s/%d: %w", topic, p, err)
			}
			from := int64(-1)
			if b := committed.GetBlock(topic, p); b != nil && errors.Is(b.Err, sarama.ErrNoError) {
				from = b.Offset
			}
			if from < 0 {
				// Nothing committed yet: the group starts at the oldest
				// offset (Consumer.Offsets.Initial).
				if from, err = c.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
					return fmt.Errorf("oldest offset of %s/%d: %w", topic, p, err)
				}
			}
			lag += max(high-from, 0)
		}
		r.metrics.lag.WithLabelValues(r.rc.Group, topic).Set(float64(lag))
	}
	return nil
}
