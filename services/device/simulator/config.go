package simulator

import (
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/comfortech/platform/services/device/internal/mqttconn"
)

// Credential is what a virtual device needs to log in, as issued by
// provisioning: its id (also its MQTT client id and username), its secret
// (the MQTT password), and the serial and model it reports; plus the claim
// code a user pairs it with, which provisioning shows once like the
// secret, so a credentials file is the record of both.
type Credential struct {
	// ID is the device id.
	ID string `json:"id"`
	// Secret is the device secret.
	Secret string `json:"secret"`
	// Serial is the hardware serial number, reported in state.
	Serial string `json:"serial,omitempty"`
	// Model is the product model; models containing "purifier" also report
	// pm25 and filter_life.
	Model string `json:"model,omitempty"`
	// ClaimCode is the code a user claims the device with; the simulator
	// does not use it.
	ClaimCode string `json:"claim_code,omitempty"`
}

// Config describes a fleet of virtual devices. The zero value of every field
// except Broker and Devices selects a sensible default (see New).
type Config struct {
	// Broker is the MQTT broker URL: tcp://host:port (also mqtt://), or
	// tls://, ssl://, mqtts:// for TLS.
	Broker string
	// TLS configures tls:// brokers (nil: system roots).
	TLS *tls.Config
	// Devices are the credentials of the devices to run, one virtual device
	// each.
	Devices []Credential
	// Interval is each device's telemetry period (default 5s). Ignored when
	// Rate is set.
	Interval time.Duration
	// Rate, when positive, is the fleet-wide telemetry rate in messages per
	// second; each device then publishes every len(Devices)/Rate.
	Rate float64
	// Jitter is the relative random spread of each period, in [0, 1)
	// (default 0.2), so devices drift apart instead of publishing in
	// lockstep.
	Jitter float64
	// ConnectRate bounds (re)connection attempts per second across the
	// fleet (default 200), so thousands of devices don't stampede the
	// broker.
	ConnectRate float64
	// KeepAlive is the MQTT keepalive (default 30s).
	KeepAlive time.Duration
	// CleanSession asks the broker not to keep the session across
	// connections. The default (false) is what the devices do: a persistent
	// session so QoS 1 commands queued while offline are delivered.
	CleanSession bool
	// MaxInflight is the number of unacknowledged telemetry messages a
	// device keeps before it skips a period (default 16).
	MaxInflight int
	// FlapProbability is the probability, at each telemetry period, that a
	// connected device drops offline for FlapDowntime; half of the drops are
	// abrupt (the socket closes, the broker publishes the last will), half
	// clean (the device publishes offline and sends DISCONNECT).
	FlapProbability float64
	// FlapDowntime is how long a flapped device stays offline (default 5s).
	FlapDowntime time.Duration
	// RebootDowntime is how long a device stays offline after a reboot
	// command (default 2s).
	RebootDowntime time.Duration
	// EventProbability is the probability, at each telemetry period, that a
	// device also publishes an alarm on its events topic.
	EventProbability float64
	// Workers is the number of goroutines that publish for the whole fleet
	// (default 16).
	Workers int
}

// Defaults applied by New.
const (
	defaultInterval       = 5 * time.Second
	defaultJitter         = 0.2
	defaultConnectRate    = 200
	defaultKeepAlive      = 30 * time.Second
	defaultMaxInflight    = 16
	defaultFlapDowntime   = 5 * time.Second
	defaultRebootDowntime = 2 * time.Second
	defaultWorkers        = 16
)

// withDefaults validates c and returns it with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Broker == "" {
		errs = append(errs, errors.New("broker URL is empty"))
	} else if err := mqttconn.CheckURL(c.Broker); err != nil {
		errs = append(errs, err)
	}
	if len(c.Devices) == 0 {
		errs = append(errs, errors.New("no devices"))
	}
	seen := make(map[string]struct{}, len(c.Devices))
	for i, d := range c.Devices {
		if d.ID == "" || strings.ContainsAny(d.ID, "/+#") {
			errs = append(errs, fmt.Errorf("device %d: id %q is empty or contains / + #", i, d.ID))
			continue
		}
		if _, dup := seen[d.ID]; dup {
			errs = append(errs, fmt.Errorf("device %d: duplicate id %q", i, d.ID))
		}
		seen[d.ID] = struct{}{}
	}
	if c.Interval < 0 || c.Rate < 0 || c.ConnectRate < 0 || c.KeepAlive < 0 || c.MaxInflight < 0 || c.Workers < 0 ||
		c.FlapDowntime < 0 || c.RebootDowntime < 0 {
		errs = append(errs, errors.New("durations, rates and counts must not be negative"))
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("jitter %v: must be in [0, 1)", c.Jitter))
	}
	if c.FlapProbability < 0 || c.FlapProbability > 1 || c.EventProbability < 0 || c.EventProbability > 1 {
		errs = append(errs, errors.New("probabilities must be in [0, 1]"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("simulator config: %w", err)
	}
	if c.Interval == 0 {
		c.Interval = defaultInterval
	}
	if c.Rate > 0 {
		c.Interval = time.Duration(float64(len(c.Devices)) / c.Rate * float64(time.Second))
		c.Interval = max(c.Interval, time.Millisecond)
	}
	if c.Jitter == 0 {
		c.Jitter = defaultJitter
	}
	if c.ConnectRate == 0 {
		c.ConnectRate = defaultConnectRate
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = defaultKeepAlive
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = defaultMaxInflight
	}
	if c.FlapDowntime == 0 {
		c.FlapDowntime = defaultFlapDowntime
	}
	if c.RebootDowntime == 0 {
		c.RebootDowntime = defaultRebootDowntime
	}
	if c.Workers == 0 {
		c.Workers = defaultWorkers
	}
	return c, nil
}

// LoadCredentials reads device credentials from a file: JSON (an array of
// {"id", "secret", "serial", "model", "claim_code"} objects, or an object
// with such an array under "devices") when the name ends in .json,
// otherwise CSV with a header row naming the columns id, secret, serial,
// model and claim_code (any order; all but id and secret optional).
func LoadCredentials(path string) ([]Credential, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	defer f.Close()
	var creds []Credential
	if strings.EqualFold(filepath.Ext(path), ".json") {
		creds, err = readJSON(f)
	} else {
		creds, err = readCSV(f)
	}
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	return creds, nil
}

// SaveCredentials writes creds to a new file at path in the format
// LoadCredentials reads (JSON when the name ends in .json, otherwise CSV
// with a header row), readable by its owner only: the secrets cannot be
// read from the platform again. It refuses to overwrite an existing file.
func SaveCredentials(path string, creds []Credential) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("credentials %s: %w", path, cerr)
		}
	}()
	if strings.EqualFold(filepath.Ext(path), ".json") {
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		err = enc.Encode(creds)
	} else {
		cw := csv.NewWriter(f)
		_ = cw.Write([]string{"id", "secret", "serial", "model", "claim_code"})
		for _, c := range creds {
			_ = cw.Write([]string{c.ID, c.Secret, c.Serial, c.Model, c.ClaimCode})
		}
		cw.Flush()
		err = cw.Error()
	}
	if err != nil {
		return fmt.Errorf("credentials %s: %w", path, err)
	}
	return nil
}

// readJSON decodes a JSON array of credentials or {"devices": [...]}.
func readJSON(r io.Reader) ([]Credential, error) {
	var raw json.RawMessage
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, err
	}
	var creds []Credential
	if err := json.Unmarshal(raw, &creds); err == nil {
		return creds, nil
	}
	var wrapped struct {
		Devices []Credential `json:"devices"`
	}
	if err := json.Unmarshal(raw, &wrapped); err != nil {
		return nil, errors.New(`want an array of {"id","secret","serial","model"} or {"devices": [...]}`)
	}
	return wrapped.Devices, nil
}

// readCSV decodes CSV credentials with a header row.
func readCSV(r io.Reader) ([]Credential, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	col := map[string]int{"id": -1, "secret": -1, "serial": -1, "model": -1, "claim_code": -1}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, ok := col[h]; ok {
			col[h] = i
		}
	}
	if col["id"] < 0 || col["secret"] < 0 {
		return nil, errors.New("header must name the columns id and secret")
	}
	field := func(rec []string, name string) string {
		if i := col[name]; i >= 0 && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var creds []Credential
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return creds, nil
		}
		if err != nil {
			return nil, err
		}
		creds = append(creds, Credential{
			ID: field(rec, "id"), Secret: field(rec, "secret"),
			Serial: field(rec, "serial"), Model: field(rec, "model"), ClaimCode: field(rec, "claim_code"),
		})
	}
}
