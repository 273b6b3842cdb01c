// Package app holds the device service's use cases for credentials:
// provisioning devices (alone or in bulk) with their MQTT secret and claim
// code, rotating, revoking and decommissioning, and the broker's questions
// (may this client connect, may this device use this topic).
package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/comfortech/platform/services/device/internal/acl"
	"github.com/comfortech/platform/services/device/internal/secret"
)

// MaxBatch is the most devices BatchProvision takes at once.
const MaxBatch = 1000

// MaxGrace is the longest grace period of a rotation.
const MaxGrace = 7 * 24 * time.Hour

// The request rules, the same as the proto's (which the gRPC server
// enforces first); the app checks them again for its other callers.
var (
	serialRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{3,63}$`)
	modelRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	claimCodeRe = regexp.MustCompile(`^[A-Za-z0-9-]{6,32}$`)
)

// Config tunes App.
type Config struct {
	// CacheTTL is how long a successful verification is remembered, so a
	// reconnect storm costs no store lookups; zero means 30 s, negative disables
	// the cache. It is also the cache lifetime advertised to brokers, and
	// bounds how long another replica may still accept a revoked secret.
	CacheTTL time.Duration
	// CacheSize caps the remembered verifications; zero means 100,000.
	CacheSize int
	// Broker mirrors credential changes into the broker; nil means
	// NopBroker.
	Broker Broker
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Log receives compensation failures.
	Log *zap.Logger
}

// App is the use cases.
type App struct {
	store    Store
	registry Registry
	broker   Broker
	clock    func() time.Time
	log      *zap.Logger
	cache    *verified
}

// New returns the use cases over store and the data service's registry.
func New(store Store, registry Registry, cfg Config) *App {
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.Broker == nil {
		cfg.Broker = NopBroker{}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &App{store: store, registry: registry, broker: cfg.Broker, clock: cfg.Clock, log: cfg.Log,
		cache: &verified{ttl: cfg.CacheTTL, max: cfg.CacheSize, m: map[string]verifiedEntry{}}}
}

// ProvisionRequest describes a device to create.
type ProvisionRequest struct {
	// Serial is the serial number printed on the device.
	Serial string
	// Model is the device model id.
	Model string
	// FirmwareVersion is the factory firmware, if known.
	FirmwareVersion string
	// ClaimCode replaces the generated claim code (e.g. already printed).
	ClaimCode string
}

// Provisioned is a new device with its credentials, shown once.
type Provisioned struct {
	DeviceID, Serial, Model string
	// Secret is the MQTT password; only its hash is kept.
	Secret string
	// ClaimCode is printed on the box; the data service keeps its hash.
	ClaimCode string
	// CreatedAt is when the device was provisioned.
	CreatedAt time.Time
}

// Provision creates one device: see BatchProvision.
func (a *App) Provision(ctx context.Context, r ProvisionRequest) (Provisioned, error) {
	ps, err := a.provision(ctx, []ProvisionRequest{r}, func(_ int, field string) string { return field })
	if err != nil {
		return Provisioned{}, err
	}
	return ps[0], nil
}

// BatchProvision creates up to MaxBatch devices, all or nothing: each gets
// a UUID v7 id, a random secret and a claim code (unless given), is stored
// here with its secret's hash, registered in the data service and added to
// the broker. An invalid or already provisioned serial fails the whole
// batch, naming its index; what was done for the others is undone.
func (a *App) BatchProvision(ctx context.Context, rs []ProvisionRequest) ([]Provisioned, error) {
	if len(rs) == 0 || len(rs) > MaxBatch {
		return nil, invalid("requests", fmt.Sprintf("must list 1 to %d devices", MaxBatch))
	}
	return a.provision(ctx, rs, func(i int, field string) string { return fmt.Sprintf("requests[%d].%s", i, field) })
}

func (a *App) provision(ctx context.Context, rs []ProvisionRequest, field func(i int, name string) string) ([]Provisioned, error) {
	seen := make(map[string]int, len(rs))
	for i, r := range rs {
		switch {
		case !serialRe.MatchString(r.Serial):
			return nil, invalid(field(i, "serial"), "must be 4 to 64 letters, digits or dashes")
		case !modelRe.MatchString(r.Model):
			return nil, invalid(field(i, "model"), "must be a model id")
		case len(r.FirmwareVersion) > 64:
			return nil, invalid(field(i, "firmware_version"), "must be at most 64 characters")
		case r.ClaimCode != "" && !claimCodeRe.MatchString(r.ClaimCode):
			return nil, invalid(field(i, "claim_code"), "must be 6 to 32 letters, digits or dashes")
		}
		if j, dup := seen[r.Serial]; dup {
			return nil, invalid(field(i, "serial"), fmt.Sprintf("repeats item %d", j))
		}
		seen[r.Serial] = i
	}

	now := a.clock().UTC()
	out := make([]Provisioned, len(rs))
	creds := make([]Credential, len(rs))
	for i, r := range rs {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("app: device id: %w", err)
		}
		p := Provisioned{DeviceID: id.String(), Serial: r.Serial, Model: r.Model, Secret: secret.New(),
			ClaimCode: r.ClaimCode, CreatedAt: now}
		if p.ClaimCode == "" {
			p.ClaimCode = secret.NewClaimCode()
		}
		out[i] = p
		creds[i] = Credential{DeviceID: p.DeviceID, Serial: p.Serial, Model: p.Model, CreatedAt: now, UpdatedAt: now}
	}
	for i := range creds {
		creds[i].SecretHash = secret.Hash(out[i].Secret)
	}

	if err := a.store.InsertCredentials(ctx, creds); err != nil {
		if ie, ok := errors.AsType[*ItemError](err); ok && errors.Is(err, ErrConflict) {
			return nil, &Error{Kind: ErrConflict, Field: field(ie.Index, "serial"),
				Msg: field(ie.Index, "serial") + ": already provisioned"}
		}
		return nil, err
	}
	// From here on a failure undoes everything: the rows, the registry
	// entries and the broker accounts made so far.
	done := make([]bool, len(rs))
	var g errgroup.Group
	g.SetLimit(8)
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, p := range out {
		g.Go(func() error {
			err := a.registry.RegisterDevice(gctx, NewDevice{ID: p.DeviceID, Serial: p.Serial, Model: p.Model,
				FirmwareVersion: rs[i].FirmwareVersion, ClaimCode: p.ClaimCode})
			if err == nil {
				done[i] = true
				err = a.broker.AddDevice(gctx, p.DeviceID, p.Secret)
			}
			if err != nil {
				cancel()
				return &ItemError{Index: i, Err: err}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		a.undoProvision(out, done)
		ie, _ := errors.AsType[*ItemError](err)
		if errors.Is(err, ErrConflict) {
			return nil, &Error{Kind: ErrConflict, Field: field(ie.Index, "serial"),
				Msg: field(ie.Index, "serial") + ": already registered to another device"}
		}
		return nil, fmt.Errorf("app: provision: %w", err)
	}
	return out, nil
}

// undoProvision removes what provision made; it runs on its own context
// because the request's may be what failed.
func (a *App) undoProvision(ps []Provisioned, registered []bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.DeviceID
		if !registered[i] {
			continue
		}
		if err := a.broker.RemoveDevice(ctx, p.DeviceID); err != nil {
			a.log.Warn("undo provision: broker", zap.String("device_id", p.DeviceID), zap.Error(err))
		}
		if err := a.registry.UnregisterDevice(ctx, p.DeviceID); err != nil {
			a.log.Warn("undo provision: registry", zap.String("device_id", p.DeviceID), zap.Error(err))
		}
	}
	if err := a.store.DeleteCredentials(ctx, ids...); err != nil {
		a.log.Error("undo provision: credentials left behind", zap.Strings("device_ids", ids), zap.Error(err))
	}
}

// Rotated is the outcome of RotateSecret.
type Rotated struct {
	// Secret is the new MQTT password, shown once.
	Secret string
	// OldExpiresAt is when the previous secret stops working.
	OldExpiresAt time.Time
}

// RotateSecret issues a new secret for a device, also after a revoke.
// The previous one keeps working for grace (0 = stops at once, at most
// MaxGrace) — on brokers that ask BrokerAuthService; a broker with its own
// accounts has one password per device and switches at once.
func (a *App) RotateSecret(ctx context.Context, deviceID string, grace time.Duration) (Rotated, error) {
	if grace < 0 || grace > MaxGrace {
		return Rotated{}, invalid("grace_period", "must be between 0 and 7 days")
	}
	c, err := a.credential(ctx, deviceID)
	if err != nil {
		return Rotated{}, err
	}
	now := a.clock().UTC()
	s := secret.New()
	if c.RevokedAt.IsZero() && c.SecretHash != "" && grace > 0 {
		c.OldSecretHash, c.OldSecretExpiresAt = c.SecretHash, now.Add(grace)
	} else {
		c.OldSecretHash, c.OldSecretExpiresAt = "", time.Time{}
	}
	c.SecretHash, c.RevokedAt, c.UpdatedAt = secret.Hash(s), time.Time{}, now
	if err := a.store.UpdateSecrets(ctx, c); err != nil {
		return Rotated{}, err
	}
	a.cache.forget(deviceID)
	if err := a.broker.SetSecret(ctx, deviceID, s); err != nil {
		return Rotated{}, fmt.Errorf("app: rotate: broker: %w", err)
	}
	exp := c.OldSecretExpiresAt
	if exp.IsZero() {
		exp = now
	}
	return Rotated{Secret: s, OldExpiresAt: exp}, nil
}

// RevokeSecret makes every secret of the device stop working at once; the
// device stays registered and comes back with RotateSecret.
func (a *App) RevokeSecret(ctx context.Context, deviceID string) error {
	c, err := a.credential(ctx, deviceID)
	if err != nil {
		return err
	}
	if err := a.revoke(ctx, c); err != nil {
		return err
	}
	if err := a.broker.DisableDevice(ctx, deviceID); err != nil {
		return fmt.Errorf("app: revoke: broker: %w", err)
	}
	return nil
}

func (a *App) revoke(ctx context.Context, c Credential) error {
	now := a.clock().UTC()
	c.SecretHash, c.OldSecretHash, c.OldSecretExpiresAt, c.UpdatedAt = "", "", time.Time{}, now
	if c.RevokedAt.IsZero() {
		c.RevokedAt = now
	}
	if err := a.store.UpdateSecrets(ctx, c); err != nil {
		return err
	}
	a.cache.forget(c.DeviceID)
	return nil
}

// Decommission removes a device for good: its secret is revoked first (so
// a failure half way leaves a device that cannot connect, and a retry
// finishes the job), then its registry entry and data, its broker account
// and its credentials.
func (a *App) Decommission(ctx context.Context, deviceID string) error {
	c, err := a.credential(ctx, deviceID)
	if err != nil {
		return err
	}
	if err := a.revoke(ctx, c); err != nil {
		return err
	}
	if err := a.broker.RemoveDevice(ctx, deviceID); err != nil {
		return fmt.Errorf("app: decommission: broker: %w", err)
	}
	if err := a.registry.UnregisterDevice(ctx, deviceID); err != nil {
		return fmt.Errorf("app: decommission: %w", err)
	}
	return a.store.DeleteCredentials(ctx, deviceID)
}

// Credential returns a device's credential record (hashes only), for the
// audit log's picture of a device before an operator's change.
func (a *App) Credential(ctx context.Context, deviceID string) (Credential, error) {
	return a.credential(ctx, deviceID)
}

func (a *App) credential(ctx context.Context, deviceID string) (Credential, error) {
	if _, err := uuid.Parse(deviceID); err != nil {
		return Credential{}, invalid("device_id", "must be a UUID")
	}
	c, err := a.store.GetCredential(ctx, deviceID)
	if errors.Is(err, ErrNotFound) {
		return Credential{}, notFound("device")
	}
	return c, err
}

// Verdict is a broker question's answer. A refusal is an answer, not an
// error.
type Verdict struct {
	// Allowed says whether the client may go on.
	Allowed bool
	// Reason says why not, for the broker's log only.
	Reason string
	// CacheTTL is how long the broker may remember the verdict.
	CacheTTL time.Duration
}

// Authenticate checks a connecting client's credentials: client id and
// username must both be the device id, the device provisioned and not
// revoked, and the password its secret (or, during a rotation's grace
// period, its previous one). Successful checks are remembered for
// Config.CacheTTL, keyed by id and the secret's SHA-256.
func (a *App) Authenticate(ctx context.Context, clientID, username, password string) (Verdict, error) {
	refuse := func(reason string) (Verdict, error) { return Verdict{Reason: reason}, nil }
	switch {
	case clientID != username:
		return refuse("client id and username differ")
	case uuid.Validate(clientID) != nil:
		return refuse("client id is not a device id")
	case password == "":
		return refuse("no password")
	}
	now := a.clock()
	digest := sha256.Sum256([]byte(password))
	if a.cache.has(clientID, digest, now) {
		return Verdict{Allowed: true, CacheTTL: a.cache.ttl}, nil
	}
	c, err := a.store.GetCredential(ctx, clientID)
	switch {
	case errors.Is(err, ErrNotFound):
		return refuse("unknown device")
	case err != nil:
		return Verdict{}, err
	case !c.RevokedAt.IsZero():
		return refuse("secret revoked")
	}
	for _, h := range []string{c.SecretHash, c.OldSecretHash} {
		if h == "" || (h == c.OldSecretHash && !now.Before(c.OldSecretExpiresAt)) {
			continue
		}
		ok, err := secret.Verify(password, h)
		if err != nil {
			return Verdict{}, fmt.Errorf("app: device %s: %w", clientID, err)
		}
		if ok {
			ttl := a.cache.ttl
			if h == c.OldSecretHash {
				// Never remember an old secret past its expiry.
				ttl = min(ttl, c.OldSecretExpiresAt.Sub(now))
			}
			a.cache.put(clientID, digest, now, now.Add(ttl))
			return Verdict{Allowed: true, CacheTTL: max(ttl, 0)}, nil
		}
	}
	return refuse("wrong secret")
}

// AuthorizeTopic says whether device deviceID may publish to topic
// (write) or subscribe to the filter topic: see package acl. It depends on
// nothing but its arguments, so brokers may cache it for long.
func (a *App) AuthorizeTopic(deviceID, topic string, write bool) Verdict {
	if acl.Allowed(deviceID, topic, write) {
		return Verdict{Allowed: true, CacheTTL: time.Hour}
	}
	return Verdict{Reason: "outside the device's topics", CacheTTL: time.Hour}
}

// verified remembers recent successful verifications.
type verified struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[string]verifiedEntry
}

type verifiedEntry struct {
	digest [sha256.Size]byte
	until  time.Time
}

func (v *verified) has(id string, digest [sha256.Size]byte, now time.Time) bool {
	if v.ttl < 0 {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[id]
	return ok && e.digest == digest && now.Before(e.until)
}

func (v *verified) put(id string, digest [sha256.Size]byte, now, until time.Time) {
	if v.ttl < 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.m) >= v.max {
		// Full: drop what has expired, or everything if nothing has. A
		// storm refills it at one store lookup per device.
		for k, e := range v.m {
			if !now.Before(e.until) {
				delete(v.m, k)
			}
		}
		if len(v.m) >= v.max {
			clear(v.m)
		}
	}
	v.m[id] = verifiedEntry{digest: digest, until: until}
}

func (v *verified) forget(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, id)
}
