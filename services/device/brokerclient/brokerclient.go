// Package brokerclient is mqttauth.Authorizer over the device service's
// BrokerAuthService, for a broker running outside the service's process.
// It caches answers for as long as the service allows (cache_ttl_seconds),
// so that the broker's per-message ACL checks stay local.
package brokerclient

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"

	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	"github.com/comfortech/platform/services/device/mqttauth"
)

// maxEntries caps the topic cache; command ids make topics unbounded.
const maxEntries = 100_000

// Client is mqttauth.Authorizer over BrokerAuthService.
type Client struct {
	c   devicev1.BrokerAuthServiceClient
	now func() time.Time

	mu     sync.Mutex
	topics map[topicKey]time.Time // allowed until
}

var _ mqttauth.Authorizer = (*Client)(nil)

type topicKey struct {
	id, topic string
	write     bool
}

// New returns a Client on conn, which must carry a service-account token
// (rpc.WithPerRPCCredentials).
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{c: devicev1.NewBrokerAuthServiceClient(conn), now: time.Now, topics: map[topicKey]time.Time{}}
}

// AuthenticateDevice implements mqttauth.Authorizer. The service caches
// verifications itself, so the answer is not cached here: a revoke takes
// effect at the next connect.
func (c *Client) AuthenticateDevice(ctx context.Context, clientID, username, secret string) error {
	resp, err := c.c.AuthenticateDevice(ctx, &devicev1.AuthenticateDeviceRequest{ClientId: clientID, Username: username, Password: secret})
	if err != nil {
		return fmt.Errorf("brokerclient: authenticate: %w", err)
	}
	if !resp.GetAllowed() {
		return fmt.Errorf("%w: %s", mqttauth.ErrDenied, resp.GetReason())
	}
	return nil
}

// AuthorizeTopic implements mqttauth.Authorizer.
func (c *Client) AuthorizeTopic(ctx context.Context, id, topic string, write bool) error {
	k := topicKey{id, topic, write}
	now := c.now()
	c.mu.Lock()
	until, ok := c.topics[k]
	c.mu.Unlock()
	if ok && now.Before(until) {
		return nil
	}
	access := devicev1.TopicAccess_TOPIC_ACCESS_SUBSCRIBE
	if write {
		access = devicev1.TopicAccess_TOPIC_ACCESS_PUBLISH
	}
	resp, err := c.c.AuthorizeTopic(ctx, &devicev1.AuthorizeTopicRequest{DeviceId: id, Topic: topic, Access: access})
	if err != nil {
		return fmt.Errorf("brokerclient: authorize: %w", err)
	}
	if !resp.GetAllowed() {
		return fmt.Errorf("%w: topic %q", mqttauth.ErrDenied, topic)
	}
	if ttl := time.Duration(resp.GetCacheTtlSeconds()) * time.Second; ttl > 0 {
		c.mu.Lock()
		if len(c.topics) >= maxEntries {
			clear(c.topics)
		}
		c.topics[k] = now.Add(ttl)
		c.mu.Unlock()
	}
	return nil
}
