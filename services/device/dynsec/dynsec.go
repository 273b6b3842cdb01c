// Package dynsec drives Mosquitto 2's dynamic-security plugin over MQTT
// ($CONTROL/dynamic-security/v1) to mirror device credentials into the
// production broker: one client (username = device id, password = its
// secret) and one role per device, because Mosquitto 2.0.11's dynamic
// security has no %u substitution in ACLs. The role's ACLs come from
// package acl, so Mosquitto enforces the same topics as the embedded
// broker's hook.
//
// A Client has the method set of the service's app.Broker.
package dynsec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/comfortech/platform/services/device/internal/acl"
)

// The plugin's control topics.
const (
	ControlTopic  = "$CONTROL/dynamic-security/v1"
	ResponseTopic = ControlTopic + "/response"
)

// Config locates the broker and the dynamic-security admin account.
type Config struct {
	// Broker is the broker's URL, e.g. tcp://127.0.0.1:1883.
	Broker string
	// Username and Password are an account allowed the control topic
	// (the one `mosquitto_ctrl dynsec init` creates).
	Username, Password string
	// ClientID is the MQTT client id; empty means "device-service-dynsec".
	ClientID string
	// Timeout bounds connecting and each command; zero means 10 s.
	Timeout time.Duration
}

// Client sends dynamic-security commands and waits for their answers.
type Client struct {
	mqtt    paho.Client
	timeout time.Duration
	seq     atomic.Uint64

	mu      sync.Mutex
	pending map[string]chan response
}

// command is one dynamic-security command; fields it does not use stay empty.
type command struct {
	Command         string    `json:"command"`
	Username        string    `json:"username,omitempty"`
	Password        string    `json:"password,omitempty"`
	Rolename        string    `json:"rolename,omitempty"`
	Roles           []RoleRef `json:"roles,omitempty"`
	ACLs            []ACL     `json:"acls,omitempty"`
	CorrelationData string    `json:"correlationData,omitempty"`
}

// RoleRef names a role a client holds, as the plugin's commands and its
// configuration file spell it.
type RoleRef struct {
	Rolename string `json:"rolename"`
}

// ACL is one entry of a role's access control list, as the plugin's
// commands and its configuration file spell it.
type ACL struct {
	// Type is the plugin's ACL type, e.g. "publishClientSend".
	Type  string `json:"acltype"`
	Topic string `json:"topic"`
	Allow bool   `json:"allow"`
}

type response struct {
	Command         string `json:"command"`
	Error           string `json:"error"`
	CorrelationData string `json:"correlationData"`
}

// Error is a command the plugin refused.
type Error struct {
	// Command is the command's name.
	Command string
	// Msg is the plugin's message, e.g. "Client not found".
	Msg string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("dynsec: %s: %s", e.Command, e.Msg) }

// NotFound reports whether the plugin said the client or role does not exist.
func (e *Error) NotFound() bool { return strings.Contains(strings.ToLower(e.Msg), "not found") }

// exists reports whether the plugin said the client or role exists already.
func (e *Error) exists() bool { return strings.Contains(strings.ToLower(e.Msg), "already exists") }

// Dial connects to the broker and subscribes to the plugin's responses.
// The connection reconnects by itself; Close ends it.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = "device-service-dynsec"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	c := &Client{timeout: cfg.Timeout, pending: map[string]chan response{}}
	o := paho.NewClientOptions().AddBroker(cfg.Broker).SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).SetPassword(cfg.Password).SetCleanSession(true).
		SetConnectTimeout(cfg.Timeout).SetAutoReconnect(true).SetConnectRetry(false).
		SetOnConnectHandler(func(m paho.Client) {
			// Resubscribe on every (re)connect: the session is clean.
			m.Subscribe(ResponseTopic, 1, c.onResponse)
		})
	c.mqtt = paho.NewClient(o)
	tok := c.mqtt.Connect()
	if err := wait(ctx, tok, cfg.Timeout); err != nil {
		return nil, fmt.Errorf("dynsec: connect %s: %w", cfg.Broker, err)
	}
	// The subscription made by the connect handler must be in place before
	// the first command; subscribing again here waits for it.
	if err := wait(ctx, c.mqtt.Subscribe(ResponseTopic, 1, c.onResponse), cfg.Timeout); err != nil {
		c.mqtt.Disconnect(0)
		return nil, fmt.Errorf("dynsec: subscribe: %w", err)
	}
	return c, nil
}

// Close disconnects.
func (c *Client) Close() { c.mqtt.Disconnect(250) }

// RoleName is the role that holds device id's ACLs.
func RoleName(id string) string { return "device-" + id }

// Device is what AddDevice creates in the plugin for one device: a client
// and the one role it holds.
type Device struct {
	// Username is the device id (client id = username = device id).
	Username string
	// Password is the device secret, in the clear: the plugin hashes it.
	Password string
	// Role is the client's role, RoleName(id).
	Role string
	// ACLs are the role's entries: publishing to the device's own
	// topics, subscribing to and receiving its own filters (package acl).
	ACLs []ACL
}

// NewDevice returns the client and role of device id with secret. It
// fails for an id that cannot name a topic subtree.
func NewDevice(id, secret string) (Device, error) {
	if !acl.ValidDeviceID(id) {
		return Device{}, fmt.Errorf("dynsec: invalid device id %q", id)
	}
	pub, sub := acl.Filters(id)
	var acls []ACL
	for _, t := range pub {
		acls = append(acls, ACL{Type: "publishClientSend", Topic: t, Allow: true})
	}
	for _, t := range sub {
		acls = append(acls, ACL{Type: "subscribePattern", Topic: t, Allow: true},
			ACL{Type: "publishClientReceive", Topic: t, Allow: true})
	}
	return Device{Username: id, Password: secret, Role: RoleName(id), ACLs: acls}, nil
}

// AddDevice creates device id's role (its topics) and client (password
// secret) with that role, as NewDevice describes them. It is idempotent:
// an existing role is kept and an existing client is made again (which
// drops its session).
func (c *Client) AddDevice(ctx context.Context, id, secret string) error {
	d, err := NewDevice(id, secret)
	if err != nil {
		return err
	}
	if err := c.do(ctx, command{Command: "createRole", Rolename: d.Role, ACLs: d.ACLs}); err != nil && !isExists(err) {
		return err
	}
	create := command{Command: "createClient", Username: d.Username, Password: d.Password, Roles: []RoleRef{{d.Role}}}
	err = c.do(ctx, create)
	if !isExists(err) {
		return err
	}
	// 2.0.11 answers addClientRole for a role the client has with an
	// "Internal error", so an existing client is replaced instead.
	if err := c.do(ctx, command{Command: "deleteClient", Username: d.Username}); err != nil && !isNotFound(err) {
		return err
	}
	return c.do(ctx, create)
}

// SetSecret sets device id's password and enables its client (after a
// revoke). Mosquitto keeps one password per client, so the old secret
// stops working at once.
func (c *Client) SetSecret(ctx context.Context, id, secret string) error {
	if err := c.do(ctx, command{Command: "setClientPassword", Username: id, Password: secret}); err != nil {
		return err
	}
	return c.do(ctx, command{Command: "enableClient", Username: id})
}

// DisableDevice refuses device id's connections; the plugin also
// disconnects its current session.
func (c *Client) DisableDevice(ctx context.Context, id string) error {
	return c.do(ctx, command{Command: "disableClient", Username: id})
}

// RemoveDevice deletes device id's client (disconnecting it) and role;
// what is already gone is not an error.
func (c *Client) RemoveDevice(ctx context.Context, id string) error {
	if err := c.do(ctx, command{Command: "deleteClient", Username: id}); err != nil && !isNotFound(err) {
		return err
	}
	if err := c.do(ctx, command{Command: "deleteRole", Rolename: RoleName(id)}); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

func isNotFound(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.NotFound()
}

func isExists(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.exists()
}

// do sends one command and waits for its response.
func (c *Client) do(ctx context.Context, cmd command) error {
	cmd.CorrelationData = strconv.FormatUint(c.seq.Add(1), 10)
	ch := make(chan response, 1)
	c.mu.Lock()
	c.pending[cmd.CorrelationData] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, cmd.CorrelationData)
		c.mu.Unlock()
	}()
	body, err := json.Marshal(map[string][]command{"commands": {cmd}})
	if err != nil {
		return fmt.Errorf("dynsec: %w", err)
	}
	if err := wait(ctx, c.mqtt.Publish(ControlTopic, 1, false, body), c.timeout); err != nil {
		return fmt.Errorf("dynsec: %s: publish: %w", cmd.Command, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	select {
	case r := <-ch:
		if r.Error != "" {
			return &Error{Command: cmd.Command, Msg: r.Error}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("dynsec: %s: no response: %w", cmd.Command, ctx.Err())
	}
}

// onResponse hands each response to the command waiting for it.
func (c *Client) onResponse(_ paho.Client, m paho.Message) {
	var body struct {
		Responses []response `json:"responses"`
	}
	if err := json.Unmarshal(m.Payload(), &body); err != nil {
		return // not ours to judge; the waiting command times out
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range body.Responses {
		if ch, ok := c.pending[r.CorrelationData]; ok {
			select {
			case ch <- r:
			default: // a duplicate; the first one counts
			}
		}
	}
}

// wait waits for tok within timeout or until ctx ends.
func wait(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return errors.New("timed out")
	case <-ctx.Done():
		return ctx.Err()
	}
}
