// Package mqttauth is the embedded broker's (mochi-mqtt v2) auth and ACL
// hook: devices connect with client id = username = device id and their
// secret, and may use only their own topics — both decided by an
// Authorizer, normally the device service's BrokerAuthService (see package
// brokerclient) — while the device service's own account, configured
// here, may do everything.
//
// It imports only mochi-mqtt and the standard library so that the dev
// stack's broker can install it cheaply.
package mqttauth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ErrDenied is what an Authorizer returns (possibly wrapped, with the
// reason) for a refusal, as opposed to a failure to decide.
var ErrDenied = errors.New("mqttauth: denied")

// Authorizer decides about devices.
type Authorizer interface {
	// AuthenticateDevice checks a connecting client: nil lets it in.
	AuthenticateDevice(ctx context.Context, clientID, username, secret string) error
	// AuthorizeTopic checks whether device id may publish to (write) or
	// subscribe to / receive from topic: nil allows it.
	AuthorizeTopic(ctx context.Context, id, topic string, write bool) error
}

// Options configure a Hook.
type Options struct {
	// Authorizer decides about devices. Required.
	Authorizer Authorizer
	// ServiceUsername and ServicePassword are the device service's own
	// account, allowed every topic; empty disables it.
	ServiceUsername, ServicePassword string
	// Timeout bounds each Authorizer call; zero means 5 s.
	Timeout time.Duration
	// Log receives refusals and failures; nil means slog.Default().
	Log *slog.Logger
}

// Hook is the mochi-mqtt hook. Install it with server.AddHook(h, nil).
type Hook struct {
	mqtt.HookBase
	o Options
}

// New returns a hook with o.
func New(o Options) *Hook {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Hook{o: o}
}

// ID implements mqtt.Hook.
func (h *Hook) ID() string { return "comfortech-device-auth" }

// Provides implements mqtt.Hook.
func (h *Hook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// OnConnectAuthenticate implements mqtt.Hook: the service account by its
// configured password, anyone else as a device.
func (h *Hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := pk.Connect.Username, pk.Connect.Password
	if h.isService(user) {
		ok := subtle.ConstantTimeCompare(pass, []byte(h.o.ServicePassword)) == 1
		if !ok {
			h.o.Log.Warn("mqtt: service account refused: wrong password", "remote", cl.Net.Remote)
		}
		return ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.o.Timeout)
	defer cancel()
	err := h.o.Authorizer.AuthenticateDevice(ctx, cl.ID, string(user), string(pass))
	if err != nil {
		h.log(err, "mqtt: device refused", "client_id", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	return true
}

// OnACLCheck implements mqtt.Hook: the service account and the broker's
// inline client may do anything; a device what the Authorizer allows,
// under the username it authenticated with.
func (h *Hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline || h.isService(cl.Properties.Username) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.o.Timeout)
	defer cancel()
	err := h.o.Authorizer.AuthorizeTopic(ctx, string(cl.Properties.Username), topic, write)
	if err != nil {
		h.log(err, "mqtt: topic denied", "client_id", cl.ID, "topic", topic, "write", write)
		return false
	}
	return true
}

func (h *Hook) isService(user []byte) bool {
	return h.o.ServiceUsername != "" && bytes.Equal(user, []byte(h.o.ServiceUsername))
}

// log reports a refusal at info level and a failure to decide at warn.
func (h *Hook) log(err error, msg string, args ...any) {
	if errors.Is(err, ErrDenied) {
		h.o.Log.Info(msg, append(args, "reason", err.Error())...)
		return
	}
	h.o.Log.Warn(msg, append(args, "error", err.Error())...)
}
