// Package provision creates the credentials of virtual devices through the
// platform's operator API, so that a simulated fleet runs against real,
// provisioned devices: it logs an administrator in through the auth gateway
// (POST /v1/auth/login) when no token is given, and batch-provisions
// devices through the admin gateway (POST
// /v1/fleet/devices:batch-provision), in batches the API accepts. The
// simulator command and `comfortctl devices provision` use it.
//
// It speaks the gateways' REST envelope through package apiclient; package
// simulator knows nothing of HTTP.
package provision

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/comfortech/platform/libs/apiclient"
	devicev1 "github.com/comfortech/platform/proto/comfortech/device/v1"
	"github.com/comfortech/platform/services/device/internal/app"
	"github.com/comfortech/platform/services/device/simulator"
)

// MaxBatch is the most devices one batch-provision call accepts
// (comfortech.device.v1.BatchProvisionDevicesRequest.requests).
const MaxBatch = app.MaxBatch

// DefaultModel is the model of provisioned devices when none is given.
const DefaultModel = "thermostat-t1"

// APIError is an error answer of a gateway, in the envelope's terms.
type APIError = apiclient.APIError

// Login logs username in through the auth gateway at authURL
// (http://host:8081) and returns the access token.
func Login(ctx context.Context, hc *http.Client, authURL, username, password string) (string, error) {
	var tokens struct {
		AccessToken string `json:"access_token"`
	}
	api := &apiclient.Client{BaseURL: authURL, HTTP: hc}
	err := api.Do(ctx, http.MethodPost, "/v1/auth/login", nil, map[string]string{"username": username, "password": password}, &tokens)
	if err != nil {
		return "", fmt.Errorf("provision: login as %s: %w", username, err)
	}
	if tokens.AccessToken == "" {
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

// Device is one device to provision, as the factory recorded it.
type Device struct {
	// Serial is the serial number printed on the device.
	Serial string
	// Model is the device model id.
	Model string
	// FirmwareVersion is the factory firmware (optional).
	FirmwareVersion string
	// ClaimCode is the code printed on the device (optional: the service
	// generates one).
	ClaimCode string
}

// Client provisions devices through an admin gateway.
type Client struct {
	// AdminURL is the admin gateway's base URL, e.g. http://localhost:8082.
	AdminURL string
	// Token is an administrator's access token.
	Token string
	// TokenSource, when set, is asked for the token of each call instead
	// of Token, for callers that refresh it during a long run.
	TokenSource func(ctx context.Context) (string, error)
	// HTTP is the client to call with (nil: one with a generous timeout).
	HTTP *http.Client
	// Progress, when set, is called after each batch with the number of
	// devices provisioned so far and the total.
	Progress func(done, total int)
}

// Provision provisions r.Count devices with generated serials, r.BatchSize
// at a time, and returns their credentials in serial order (see
// ProvisionDevices).
func (c *Client) Provision(ctx context.Context, r Request) ([]simulator.Credential, error) {
	if r.Count <= 0 {
		return nil, errors.New("provision: count must be positive")
	}
	if r.Model == "" {
		r.Model = DefaultModel
	}
	if r.SerialPrefix == "" {
		r.SerialPrefix = "SIM-" + time.Now().UTC().Format("20060102T150405")
	}
	devices := make([]Device, r.Count)
	for i := range devices {
		devices[i] = Device{Serial: fmt.Sprintf("%s-%06d", r.SerialPrefix, i+1), Model: r.Model, FirmwareVersion: r.FirmwareVersion}
	}
	return c.ProvisionDevices(ctx, devices, r.BatchSize)
}

// ProvisionDevices provisions devices, batchSize at a time (0 or more than
// MaxBatch: MaxBatch), and returns their credentials in the same order.
// Each batch is all or nothing; when a batch fails, ProvisionDevices
// returns the credentials of the batches before it with the error, since
// their secrets cannot be read again.
func (c *Client) ProvisionDevices(ctx context.Context, devices []Device, batchSize int) ([]simulator.Credential, error) {
	if len(devices) == 0 {
		return nil, errors.New("provision: no devices")
	}
	if batchSize <= 0 || batchSize > MaxBatch {
		batchSize = MaxBatch
	}
	api := &apiclient.Client{BaseURL: c.AdminURL, HTTP: c.HTTP, Token: c.TokenSource}
	if api.Token == nil {
		api.Token = func(context.Context) (string, error) { return c.Token, nil }
	}
	creds := make([]simulator.Credential, 0, len(devices))
	for first := 0; first < len(devices); first += batchSize {
		batch := devices[first:min(first+batchSize, len(devices))]
		req := &devicev1.BatchProvisionDevicesRequest{}
		for _, d := range batch {
			req.Requests = append(req.Requests, &devicev1.ProvisionDeviceRequest{
				Serial: d.Serial, Model: d.Model, FirmwareVersion: d.FirmwareVersion, ClaimCode: d.ClaimCode,
			})
		}
		var resp devicev1.BatchProvisionDevicesResponse
		if err := api.Do(ctx, http.MethodPost, "/v1/fleet/devices:batch-provision", nil, req, &resp); err != nil {
			return creds, fmt.Errorf("provision: devices %d to %d: %w", first+1, first+len(batch), err)
		}
		if len(resp.GetItems()) != len(batch) {
			return creds, fmt.Errorf("provision: devices %d to %d: %d answered", first+1, first+len(batch), len(resp.GetItems()))
		}
		for _, d := range resp.GetItems() {
			creds = append(creds, simulator.Credential{ID: d.GetDeviceId(), Secret: d.GetSecret(), Serial: d.GetSerial(),
				Model: d.GetModel(), ClaimCode: d.GetClaimCode()})
		}
		if c.Progress != nil {
			c.Progress(len(creds), len(devices))
		}
	}
	return creds, nil
}
