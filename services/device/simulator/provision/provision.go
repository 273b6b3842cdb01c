// Package provision creates the credentials of virtual devices through the
// platform's operator API, so that a simulated fleet runs against real,
// provisioned devices: it logs an administrator in through the auth gateway
// (POST /v1/auth/login) when no token is given, and batch-provisions
// devices through the admin gateway (POST
// /v1/fleet/devices:batch-provision), in batches the API accepts.
//
// It speaks the gateways' REST envelope ({"success", "data" | "error"});
// package simulator knows nothing of HTTP.
package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/libs/web"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	"github.com/comfortech/platform/services/device/internal/app"
	"github.com/comfortech/platform/services/device/simulator"
)

// MaxBatch is the most devices one batch-provision call accepts
// (comfortech.device.v1.BatchProvisionDevicesRequest.requests).
const MaxBatch = app.MaxBatch

// Defaults applied by Provision.
const (
	// DefaultModel is the model of provisioned devices when none is given.
	DefaultModel = "thermostat-t1"
	// defaultTimeout bounds each HTTP call when the client has no timeout;
	// hashing a thousand secrets takes the service a few seconds.
	defaultTimeout = 2 * time.Minute
)

// APIError is an error answer of a gateway, in the envelope's terms.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Code is the envelope's error code: INVALID_ARGUMENT, UNAUTHENTICATED, ...
	Code string
	// Message is the envelope's error message.
	Message string
	// Field names the offending request field, when the gateway said.
	Field string
}

// Error implements error.
func (e *APIError) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// Login logs username in through the auth gateway at authURL
// (http://host:8081) and returns the access token.
func Login(ctx context.Context, hc *http.Client, authURL, username, password string) (string, error) {
	var tokens struct {
		AccessToken string `json:"access_token"`
	}
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		return "", err
	}
	data, err := post(ctx, hc, strings.TrimRight(authURL, "/")+"/v1/auth/login", "", body)
	if err != nil {
		return "", fmt.Errorf("provision: login as %s: %w", username, err)
	}
	if err := json.Unmarshal(data, &tokens); err != nil || tokens.AccessToken == "" {
		return "", fmt.Errorf("provision: login as %s: no access token in the answer", username)
	}
	return tokens.AccessToken, nil
}

// Request describes the devices to provision.
type Request struct {
	// Count is how many devices to provision.
	Count int
	// SerialPrefix starts every serial; the device's number (from 1)
	// follows: SIM-20261201T120000-000001. Empty: "SIM-" and the current
	// time, so that runs don't collide.
	SerialPrefix string
	// Model is the devices' model (default DefaultModel).
	Model string
	// FirmwareVersion is the factory firmware recorded for each device.
	FirmwareVersion string
	// BatchSize is how many devices each call provisions (default and at
	// most MaxBatch).
	BatchSize int
}

// Client provisions devices through an admin gateway.
type Client struct {
	// AdminURL is the admin gateway's base URL, e.g. http://localhost:8082.
	AdminURL string
	// Token is an administrator's access token.
	Token string
	// HTTP is the client to call with (nil: one with a generous timeout).
	HTTP *http.Client
}

// Provision provisions r.Count devices, r.BatchSize at a time, and returns
// their credentials in serial order. Each batch is all or nothing; when a
// batch fails, Provision returns the credentials of the batches before it
// with the error, since their secrets cannot be read again.
func (c *Client) Provision(ctx context.Context, r Request) ([]simulator.Credential, error) {
	if r.Count <= 0 {
		return nil, errors.New("provision: count must be positive")
	}
	if r.BatchSize <= 0 || r.BatchSize > MaxBatch {
		r.BatchSize = MaxBatch
	}
	if r.Model == "" {
		r.Model = DefaultModel
	}
	if r.SerialPrefix == "" {
		r.SerialPrefix = "SIM-" + time.Now().UTC().Format("20060102T150405")
	}
	url := strings.TrimRight(c.AdminURL, "/") + "/v1/fleet/devices:batch-provision"
	creds := make([]simulator.Credential, 0, r.Count)
	for first := 0; first < r.Count; first += r.BatchSize {
		req := &devicev1.BatchProvisionDevicesRequest{}
		for i := first; i < min(first+r.BatchSize, r.Count); i++ {
			req.Requests = append(req.Requests, &devicev1.ProvisionDeviceRequest{
				Serial: fmt.Sprintf("%s-%06d", r.SerialPrefix, i+1), Model: r.Model, FirmwareVersion: r.FirmwareVersion,
			})
		}
		var resp devicev1.BatchProvisionDevicesResponse
		if err := c.call(ctx, url, req, &resp); err != nil {
			return creds, fmt.Errorf("provision: devices %d to %d: %w", first+1, first+len(req.Requests), err)
		}
		if len(resp.GetItems()) != len(req.GetRequests()) {
			return creds, fmt.Errorf("provision: devices %d to %d: %d answered", first+1, first+len(req.Requests), len(resp.GetItems()))
		}
		for _, d := range resp.GetItems() {
			creds = append(creds, simulator.Credential{ID: d.GetDeviceId(), Secret: d.GetSecret(), Serial: d.GetSerial(), Model: d.GetModel()})
		}
	}
	return creds, nil
}

// call posts req as the administrator and decodes the answer's data into
// resp.
func (c *Client) call(ctx context.Context, url string, req, resp proto.Message) error {
	body, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(req)
	if err != nil {
		return err
	}
	data, err := post(ctx, c.HTTP, url, c.Token, body)
	if err != nil {
		return err
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, resp); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	return nil
}

// envelope is the gateways' answer (see package web).
type envelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Error   *web.ErrorBody  `json:"error"`
}

// post sends body as JSON to url, with token as bearer when set, and
// returns the envelope's data, or its error as an *APIError.
func post(ctx context.Context, hc *http.Client, url, token string, body []byte) (json.RawMessage, error) {
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("%s answered %d without the envelope", url, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || !env.Success {
		e := &APIError{Status: resp.StatusCode}
		if env.Error != nil {
			e.Code, e.Message = env.Error.Code, env.Error.Message
			if len(env.Error.Details) > 0 {
				e.Field = env.Error.Details[0].Field
			}
		}
		return nil, e
	}
	return env.Data, nil
}
