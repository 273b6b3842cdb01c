package simulator

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The wire types below follow the device protocol published in
// proto/asyncapi.yaml (ARCHITECTURE §6); tests and tools may use them to
// read what the simulator sends.

// Telemetry is one telemetry sample on devices/{id}/telemetry.
type Telemetry struct {
	// TS is the sample time in Unix milliseconds.
	TS int64 `json:"ts"`
	// Seq increases by one with every sample a device sends.
	Seq uint64 `json:"seq"`
	// Metrics maps metric names to values.
	Metrics map[string]float64 `json:"metrics"`
}

// Command is what the platform sends on devices/{id}/commands/{commandId}.
type Command struct {
	// Name selects the command: reboot, set_mode, set_target_temperature.
	Name string `json:"name"`
	// Params are the command's arguments.
	Params json.RawMessage `json:"params,omitempty"`
	// ExpiresAt is when the command must no longer run: Unix milliseconds
	// (the protocol's form) or, leniently, an RFC 3339 string.
	ExpiresAt json.RawMessage `json:"expires_at,omitempty"`
}

// Expiry returns the command's expiry time, the zero time if it has none.
func (c Command) Expiry() (time.Time, error) {
	s := strings.TrimSpace(string(c.ExpiresAt))
	if s == "" || s == "null" || s == "0" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.UnixMilli(int64(f)), nil
	}
	var str string
	if err := json.Unmarshal(c.ExpiresAt, &str); err == nil {
		if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("expires_at: want Unix milliseconds")
}

// Result statuses.
const (
	StatusOK    = "ok"
	StatusError = "error"
)

// CommandResult is a device's answer on
// devices/{id}/commands/{commandId}/result.
type CommandResult struct {
	// Status is "ok" or "error".
	Status string `json:"status"`
	// Result is the command's output when Status is "ok".
	Result map[string]any `json:"result,omitempty"`
	// Error says why the command failed when Status is "error".
	Error string `json:"error,omitempty"`
}

// Event is a device alarm on devices/{id}/events.
type Event struct {
	// TS is when the alarm was raised, in Unix milliseconds.
	TS int64 `json:"ts"`
	// Type is filter_change, fault or co_detected.
	Type string `json:"type"`
	// Level is the notification level: info, warning, error or critical.
	Level string `json:"level"`
	// Message is a human-readable description.
	Message string `json:"message,omitempty"`
}

// Presence payloads on devices/{id}/status.
const (
	Online  = "online"
	Offline = "offline"
)

// Topic returns devices/{id}/{suffix}.
func Topic(deviceID, suffix string) string {
	return "devices/" + deviceID + "/" + suffix
}
