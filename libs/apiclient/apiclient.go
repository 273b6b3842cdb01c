// Package apiclient is the client side of the gateways' REST envelope
// (package web): it sends a JSON request, returns the data of a success
// answer and turns an error answer into an *APIError carrying the
// envelope's code, message and field. Tools that drive the platform over
// HTTP — comfortctl, the simulator's provisioning — share it, so they read
// answers the same way.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/comfortech/platform/libs/web"
)

// DefaultTimeout bounds a call when the Client has no HTTP client of its
// own; batch provisioning hashes a thousand secrets in one call, which
// takes the device service seconds.
const DefaultTimeout = 2 * time.Minute

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 64 << 20

// APIError is an error answer of a gateway, in the envelope's terms.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Code is the envelope's error code: INVALID_ARGUMENT, UNAUTHENTICATED,
	// NOT_FOUND, ...
	Code string
	// Message is the envelope's error message.
	Message string
	// Field names the first offending request field, when the gateway said.
	Field string
	// Details are every field the gateway named, with what is wrong.
	Details []web.FieldDetail
	// RequestID is the request id the gateway logged the call under.
	RequestID string
}

// Error implements error.
func (e *APIError) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// Client calls one gateway.
type Client struct {
	// BaseURL is the gateway's base URL, e.g. http://localhost:8082.
	BaseURL string
	// HTTP is the client to call with (nil: one with DefaultTimeout).
	HTTP *http.Client
	// Token returns the bearer token of each call; nil calls anonymously.
	Token func(ctx context.Context) (string, error)
}

// Do sends method path?query with in as its JSON body and decodes the
// answer's data into out.
//
// in is nil (no body), a proto.Message (protojson with proto field names,
// as the gateways read it) or any value encoding/json encodes. out is nil
// (the data is dropped), a proto.Message (unknown fields are discarded,
// so an older tool reads a newer gateway), a *json.RawMessage, or any value
// encoding/json decodes into.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != nil {
		token, err := c.Token(ctx)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := Decode(resp)
	if _, ok := err.(*APIError); ok {
		return err // the request id identifies the call
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	if err := unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: answer: %w", method, path, err)
	}
	return nil
}

// envelope is either answer of a gateway.
type envelope struct {
	Success   bool            `json:"success"`
	Data      json.RawMessage `json:"data"`
	Error     *web.ErrorBody  `json:"error"`
	RequestID string          `json:"request_id"`
}

// Decode reads resp's envelope and returns its data, or its error as an
// *APIError. An answer that is not an envelope (a proxy's error page) is
// an error naming the status.
func Decode(resp *http.Response) (json.RawMessage, error) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, err
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || (!env.Success && env.Error == nil) {
		return nil, fmt.Errorf("answered %s without the envelope", resp.Status)
	}
	if resp.StatusCode >= 300 || !env.Success {
		e := &APIError{Status: resp.StatusCode, RequestID: env.RequestID}
		if env.Error != nil {
			e.Code, e.Message, e.Details = env.Error.Code, env.Error.Message, env.Error.Details
			if len(e.Details) > 0 {
				e.Field = e.Details[0].Field
			}
		}
		return nil, e
	}
	return env.Data, nil
}

func marshal(in any) ([]byte, error) {
	if m, ok := in.(proto.Message); ok {
		return protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	}
	return json.Marshal(in)
}

func unmarshal(data []byte, out any) error {
	if len(data) == 0 || string(data) == "null" {
		return nil // no data: out keeps its zero value
	}
	switch out := out.(type) {
	case proto.Message:
		return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, out)
	case *json.RawMessage:
		*out = append((*out)[:0], data...)
		return nil
	default:
		return json.Unmarshal(data, out)
	}
}
