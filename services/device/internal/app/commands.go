package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
)

// CommandStatus is where a command is in its life:
// QUEUED → SENT → SUCCEEDED | FAILED, or → EXPIRED when its TTL runs out.
type CommandStatus string

// The command statuses.
const (
	CommandQueued    CommandStatus = "QUEUED"
	CommandSent      CommandStatus = "SENT"
	CommandSucceeded CommandStatus = "SUCCEEDED"
	CommandFailed    CommandStatus = "FAILED"
	CommandExpired   CommandStatus = "EXPIRED"
)

// Final reports whether s is a final status.
func (s CommandStatus) Final() bool {
	return s == CommandSucceeded || s == CommandFailed || s == CommandExpired
}

// Command is an instruction for a device and what became of it.
type Command struct {
	// ID is the command id (UUID v7), the last segment of its topic.
	ID string
	// DeviceID is the device.
	DeviceID string
	// Name is the command name, e.g. set_mode.
	Name string
	// Params are the command's arguments (never nil once stored).
	Params map[string]any
	// Status is the current status.
	Status CommandStatus
	// Result is what the device answered with `ok`; nil otherwise.
	Result map[string]any
	// Error is the device's error, or why the command expired.
	Error string
	// RequestedBy is the account id of the user or operator who sent it.
	RequestedBy string
	// CreatedAt, SentAt and CompletedAt are when it was accepted,
	// published and completed; the latter two are zero until then.
	CreatedAt, SentAt, CompletedAt time.Time
	// ExpiresAt is when it expires unless a result arrived.
	ExpiresAt time.Time
}

// CommandStore keeps the commands. Status changes are conditional, so
// that replicas, the sweeper and late results can race safely.
type CommandStore interface {
	// InsertCommand stores a new command.
	InsertCommand(ctx context.Context, c Command) error
	// GetCommand returns a device's command or an error wrapping ErrNotFound.
	GetCommand(ctx context.Context, deviceID, id string) (Command, error)
	// ListCommands returns up to limit commands of a device, newest first,
	// with ids below beforeID when it is set, of one status when it is set.
	ListCommands(ctx context.Context, deviceID string, status CommandStatus, beforeID string, limit int) ([]Command, error)
	// MarkCommandSent moves a QUEUED command to SENT; false if it was not
	// QUEUED.
	MarkCommandSent(ctx context.Context, id string, at time.Time) (bool, error)
	// RequeueCommand moves a SENT command back to QUEUED (its publish
	// failed).
	RequeueCommand(ctx context.Context, id string) error
	// CompleteCommand moves a QUEUED or SENT command of the device to a
	// final status and returns it; false if the command is unknown or
	// already final.
	CompleteCommand(ctx context.Context, deviceID, id string, status CommandStatus, result map[string]any, errMsg string, at time.Time) (Command, bool, error)
	// QueuedCommands returns a device's QUEUED commands that expire after
	// now, oldest first.
	QueuedCommands(ctx context.Context, deviceID string, now time.Time) ([]Command, error)
	// DueCommands returns up to limit QUEUED or SENT commands that expire at
	// or before now.
	DueCommands(ctx context.Context, now time.Time, limit int) ([]Command, error)
}

// AccessRole is how an account reaches a device.
type AccessRole int

// The access roles.
const (
	// AccessNone: the account cannot see the device (or it does not exist).
	AccessNone AccessRole = iota
	// AccessOwner: the account claimed the device.
	AccessOwner
	// AccessMember: the owner shared the device with the account.
	AccessMember
)

// Access tells how an account reaches a device (the data service).
type Access interface {
	// DeviceAccess returns accountID's role on deviceID.
	DeviceAccess(ctx context.Context, deviceID, accountID string) (AccessRole, error)
}

// CommandLink delivers commands to the devices (the MQTT link).
type CommandLink interface {
	// Online reports whether the device is connected, as far as this
	// replica knows.
	Online(deviceID string) bool
	// PublishCommand publishes payload on devices/{deviceID}/commands/{commandID}
	// (QoS 1) and waits for the broker's acknowledgement.
	PublishCommand(ctx context.Context, deviceID, commandID string, payload []byte) error
}

// CommandEvents publishes command results (device.lifecycle).
type CommandEvents interface {
	// CommandCompleted tells that c reached its final status.
	CommandCompleted(ctx context.Context, c Command) error
}

// Caller is who calls a command use case.
type Caller struct {
	// AccountID is the caller's account (the token's subject).
	AccountID string
	// Operator is true for an admin, who may command any provisioned device.
	Operator bool
}

// SendCommandRequest is a command to send.
type SendCommandRequest struct {
	// DeviceID, Name and Params describe the command.
	DeviceID, Name string
	Params         map[string]any
	// TTL bounds how long it may wait for the device and its result;
	// default DefaultCommandTTL.
	TTL time.Duration
	// Wait asks to return when the command completes or WaitTimeout
	// (default DefaultCommandWait, at most MaxCommandWait) passes.
	Wait        bool
	WaitTimeout time.Duration
}

// Command limits (the API's).
const (
	DefaultCommandTTL  = time.Minute
	MaxCommandTTL      = 24 * time.Hour
	DefaultCommandWait = 10 * time.Second
	MaxCommandWait     = 30 * time.Second
	// MaxCommandPage is the largest page of ListCommands; DefaultCommandPage
	// the default.
	MaxCommandPage     = 500
	DefaultCommandPage = 50
)

// CommandsConfig holds the Commands' collaborators and tuning.
type CommandsConfig struct {
	// Link delivers commands; nil keeps every command QUEUED.
	Link CommandLink
	// Events publishes results; nil publishes none.
	Events CommandEvents
	// SweepInterval is how often expired commands are looked for; default 1 s.
	SweepInterval time.Duration
	// Log receives failures.
	Log *zap.Logger
}

// Commands is the command use cases: send, track, expire.
type Commands struct {
	store   CommandStore
	devices Store
	access  Access
	cfg     CommandsConfig

	mu      sync.Mutex
	waiters map[string]chan struct{} // closed when the command completes here
}

// NewCommands returns the command use cases.
func NewCommands(store CommandStore, devices Store, access Access, cfg CommandsConfig) *Commands {
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Commands{store: store, devices: devices, access: access, cfg: cfg, waiters: map[string]chan struct{}{}}
}

// authorize checks that caller may command deviceID (see authorize).
func (c *Commands) authorize(ctx context.Context, caller Caller, deviceID string) error {
	return authorize(ctx, c.devices, c.access, caller, deviceID)
}

// Send accepts a command, publishes it at once when the device is online,
// and, when asked, waits for its result.
func (c *Commands) Send(ctx context.Context, caller Caller, req SendCommandRequest) (Command, error) {
	switch {
	case req.TTL < 0 || req.TTL > MaxCommandTTL:
		return Command{}, invalid("ttl", "must be between 1s and 24h")
	case req.WaitTimeout < 0 || req.WaitTimeout > MaxCommandWait:
		return Command{}, invalid("wait_timeout", "must be at most 30s")
	case req.Name == "":
		return Command{}, invalid("name", "required")
	}
	if err := c.authorize(ctx, caller, req.DeviceID); err != nil {
		return Command{}, err
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = DefaultCommandTTL
	}
	if req.Params == nil {
		req.Params = map[string]any{}
	}
	now := time.Now().UTC()
	cmd := Command{ID: uuid.Must(uuid.NewV7()).String(), DeviceID: req.DeviceID, Name: req.Name, Params: req.Params,
		Status: CommandQueued, RequestedBy: caller.AccountID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	// Registered before the command exists, so no completion is missed.
	done := c.waiter(cmd.ID)
	defer c.forget(cmd.ID)
	if err := c.store.InsertCommand(ctx, cmd); err != nil {
		return Command{}, err
	}
	// Checked after the insert: a device coming online meanwhile either
	// sees the command in its queue or is seen online here.
	if c.cfg.Link != nil && c.cfg.Link.Online(cmd.DeviceID) {
		c.deliver(ctx, cmd)
	}
	if req.Wait {
		wait := req.WaitTimeout
		if wait == 0 {
			wait = DefaultCommandWait
		}
		c.wait(ctx, cmd, done, wait)
	}
	return c.store.GetCommand(ctx, cmd.DeviceID, cmd.ID)
}

// wait returns when the command completes, wait passes or ctx ends. It
// also polls the store: another replica may receive the result.
func (c *Commands) wait(ctx context.Context, cmd Command, done <-chan struct{}, wait time.Duration) {
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-done:
			return
		case <-timeout.C:
			return
		case <-ctx.Done():
			return
		case <-poll.C:
			if got, err := c.store.GetCommand(ctx, cmd.DeviceID, cmd.ID); err == nil && got.Status.Final() {
				return
			}
		}
	}
}

func (c *Commands) waiter(id string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	c.waiters[id] = ch
	return ch
}

func (c *Commands) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.waiters, id)
}

func (c *Commands) notify(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.waiters[id]; ok {
		close(ch)
		delete(c.waiters, id)
	}
}

// commandPayload is the message on devices/{id}/commands/{cid}.
type commandPayload struct {
	Name      string         `json:"name"`
	Params    map[string]any `json:"params"`
	ExpiresAt int64          `json:"expires_at"` // Unix ms
}

// deliver claims a QUEUED command (QUEUED → SENT) and publishes it; a
// failed publish puts it back in the queue for the next connection.
func (c *Commands) deliver(ctx context.Context, cmd Command) {
	log := c.cfg.Log.With(zap.String("device_id", cmd.DeviceID), zap.String("command_id", cmd.ID))
	payload, err := json.Marshal(commandPayload{Name: cmd.Name, Params: cmd.Params, ExpiresAt: cmd.ExpiresAt.UnixMilli()})
	if err != nil {
		log.Error("command not encodable", zap.Error(err))
		return
	}
	ok, err := c.store.MarkCommandSent(ctx, cmd.ID, time.Now().UTC())
	if err != nil || !ok {
		if err != nil {
			log.Warn("command not marked sent", zap.Error(err))
		}
		return // someone else sent it, or it completed
	}
	if err := c.cfg.Link.PublishCommand(ctx, cmd.DeviceID, cmd.ID, payload); err != nil {
		log.Warn("command not published; queued again", zap.Error(err))
		if err := c.store.RequeueCommand(context.WithoutCancel(ctx), cmd.ID); err != nil {
			log.Error("command not requeued", zap.Error(err))
		}
	}
}

// DeviceOnline publishes the device's queued commands that have not
// expired (the presence tracker's online transition).
func (c *Commands) DeviceOnline(ctx context.Context, deviceID string) {
	if c.cfg.Link == nil {
		return
	}
	cmds, err := c.store.QueuedCommands(ctx, deviceID, time.Now())
	if err != nil {
		c.cfg.Log.Warn("queued commands not read", zap.String("device_id", deviceID), zap.Error(err))
		return
	}
	for _, cmd := range cmds {
		c.deliver(ctx, cmd)
	}
}

// commandResult is the message on devices/{id}/commands/{cid}/result.
type commandResult struct {
	Status string         `json:"status"`
	Result map[string]any `json:"result"`
	Error  string         `json:"error"`
}

// HandleResult applies a device's result message. Results of unknown or
// already completed commands, and malformed ones, are logged and ignored.
func (c *Commands) HandleResult(ctx context.Context, deviceID, commandID string, payload []byte, at time.Time) {
	log := c.cfg.Log.With(zap.String("device_id", deviceID), zap.String("command_id", commandID))
	var r commandResult
	if err := json.Unmarshal(payload, &r); err != nil || (r.Status != "ok" && r.Status != "error") {
		log.Warn("malformed command result ignored")
		return
	}
	status, result, msg := CommandSucceeded, r.Result, ""
	if r.Status == "error" {
		status, result, msg = CommandFailed, nil, r.Error
		if msg == "" {
			msg = "the device reported an error"
		}
	}
	c.complete(ctx, deviceID, commandID, status, result, msg, at.UTC(), log)
}

// complete records a final status, tells the waiters and emits the event.
func (c *Commands) complete(ctx context.Context, deviceID, id string, status CommandStatus, result map[string]any, msg string, at time.Time, log *zap.Logger) {
	cmd, ok, err := c.store.CompleteCommand(ctx, deviceID, id, status, result, msg, at)
	if err != nil {
		log.Warn("command status not stored", zap.Error(err))
		return
	}
	if !ok {
		log.Info("result of an unknown or completed command ignored", zap.String("status", string(status)))
		return
	}
	c.notify(id)
	if c.cfg.Events != nil {
		// Bounded: results arrive on the MQTT delivery goroutine.
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := c.cfg.Events.CommandCompleted(ctx, cmd); err != nil {
			log.Warn("command result event not published", zap.Error(err))
		}
	}
}

// Run expires the commands past their TTL until ctx ends.
func (c *Commands) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.sweep(ctx)
		}
	}
}

// sweep marks the due commands EXPIRED.
func (c *Commands) sweep(ctx context.Context) {
	now := time.Now().UTC()
	due, err := c.store.DueCommands(ctx, now, 500)
	if err != nil {
		c.cfg.Log.Warn("expired commands not read", zap.Error(err))
		return
	}
	for _, cmd := range due {
		log := c.cfg.Log.With(zap.String("device_id", cmd.DeviceID), zap.String("command_id", cmd.ID))
		reason := "no result before the TTL ran out"
		if cmd.Status == CommandQueued {
			reason = "the device did not come online before the TTL ran out"
		}
		c.complete(ctx, cmd.DeviceID, cmd.ID, CommandExpired, nil, reason, now, log)
	}
}

// Get returns one command of a device the caller may command.
func (c *Commands) Get(ctx context.Context, caller Caller, deviceID, id string) (Command, error) {
	if err := c.authorize(ctx, caller, deviceID); err != nil {
		return Command{}, err
	}
	cmd, err := c.store.GetCommand(ctx, deviceID, id)
	if errors.Is(err, ErrNotFound) {
		return Command{}, notFound("command")
	}
	return cmd, err
}

// List returns a page of a device's commands, newest first, and the token
// of the next page ("" on the last).
func (c *Commands) List(ctx context.Context, caller Caller, deviceID string, status CommandStatus, pageSize int, pageToken string) ([]Command, string, error) {
	if pageSize < 0 || pageSize > MaxCommandPage {
		return nil, "", invalid("page_size", fmt.Sprintf("must be between 0 and %d", MaxCommandPage))
	}
	if pageToken != "" && uuid.Validate(pageToken) != nil {
		return nil, "", invalid("page_token", "invalid")
	}
	if err := c.authorize(ctx, caller, deviceID); err != nil {
		return nil, "", err
	}
	if pageSize == 0 {
		pageSize = DefaultCommandPage
	}
	cmds, err := c.store.ListCommands(ctx, deviceID, status, pageToken, pageSize+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(cmds) > pageSize {
		cmds = cmds[:pageSize]
		next = cmds[pageSize-1].ID
	}
	return cmds, next, nil
}
