package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/comfortech/platform/libs/apiclient"
	"github.com/comfortech/platform/libs/web"
)

// TestDo drives a gateway that answers with the platform's own envelope
// writers (package web): success data decodes into protobuf and plain
// values, an error answer becomes an *APIError with the envelope's code,
// message and field, and the bearer token and query reach the server.
func TestDo(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			web.WriteError(w, r, status.Error(codes.InvalidArgument, "not JSON"))
			return
		}
		in["auth"], in["q"] = r.Header.Get("Authorization"), r.URL.Query().Get("q")
		web.WriteData(w, http.StatusOK, in)
	})
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) {
		web.WriteError(w, r, status.Error(codes.NotFound, "device not found"))
	})
	mux.HandleFunc("GET /proxy", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	c := &apiclient.Client{BaseURL: srv.URL + "/", Token: func(context.Context) (string, error) { return "tok", nil }}

	in, _ := structpb.NewStruct(map[string]any{"serial_number": "CT-1"})
	var out structpb.Struct
	if err := c.Do(ctx, http.MethodPost, "/echo", url.Values{"q": {"a b"}}, in, &out); err != nil {
		t.Fatal(err)
	}
	if f := out.GetFields(); f["serial_number"].GetStringValue() != "CT-1" || f["auth"].GetStringValue() != "Bearer tok" || f["q"].GetStringValue() != "a b" {
		t.Errorf("echo = %v", f)
	}
	var plain map[string]string
	if err := c.Do(ctx, http.MethodPost, "/echo", nil, map[string]string{"k": "v"}, &plain); err != nil || plain["k"] != "v" {
		t.Errorf("plain echo = %v, %v", plain, err)
	}

	err := c.Do(ctx, http.MethodGet, "/missing", nil, nil, nil)
	apiErr, ok := errors.AsType[*apiclient.APIError](err)
	if !ok || apiErr.Status != http.StatusNotFound || apiErr.Code != "NOT_FOUND" || apiErr.Message != "device not found" {
		t.Errorf("missing: %#v", err)
	}
	err = c.Do(ctx, http.MethodPost, "/echo", nil, json.RawMessage(`[1]`), nil)
	if apiErr, ok := errors.AsType[*apiclient.APIError](err); !ok || apiErr.Code != "INVALID_ARGUMENT" {
		t.Errorf("bad body: %#v", err)
	}
	err = c.Do(ctx, http.MethodGet, "/proxy", nil, nil, nil)
	if _, ok := errors.AsType[*apiclient.APIError](err); ok || err == nil {
		t.Errorf("a proxy's page: %v, want a plain error", err)
	}

	failing := &apiclient.Client{BaseURL: srv.URL, Token: func(context.Context) (string, error) { return "", io.ErrUnexpectedEOF }}
	if err := failing.Do(ctx, http.MethodGet, "/missing", nil, nil, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("token error: %v", err)
	}
}

// TestDecodeField checks that a validation failure names its field.
func TestDecodeField(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	rec.WriteHeader(http.StatusBadRequest)
	_, _ = rec.WriteString(`{"success":false,"error":{"code":"INVALID_ARGUMENT","message":"invalid request: serial: too short",` +
		`"details":[{"field":"requests[1].serial","description":"too short"}]},"request_id":"r-1"}`)
	_, err := apiclient.Decode(rec.Result())
	apiErr, ok := errors.AsType[*apiclient.APIError](err)
	if !ok || apiErr.Field != "requests[1].serial" || apiErr.RequestID != "r-1" || len(apiErr.Details) != 1 {
		t.Fatalf("%#v", err)
	}
	if got := apiErr.Error(); got != "400 INVALID_ARGUMENT: invalid request: serial: too short (field requests[1].serial)" {
		t.Errorf("Error() = %q", got)
	}
}
