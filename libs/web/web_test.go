package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/comfortech/platform/libs/requestid"
	"github.com/comfortech/platform/libs/web"
)

func withDetails(t *testing.T, c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	t.Helper()
	st := status.New(c, msg)
	var err error
	for _, d := range details {
		if st, err = st.WithDetails(d); err != nil {
			t.Fatal(err)
		}
	}
	return st.Err()
}

func decodeFailure(t *testing.T, rec *httptest.ResponseRecorder) web.Failure {
	t.Helper()
	var f web.Failure
	if err := json.Unmarshal(rec.Body.Bytes(), &f); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	if f.Success {
		t.Fatal("error envelope has success=true")
	}
	return f
}

func TestWriteError(t *testing.T) {
	t.Parallel()
	fieldPath := "name"
	tests := []struct {
		name        string
		err         error
		wantStatus  int
		wantCode    string
		wantMessage string
		wantField   string
		retryAfter  string
	}{
		{name: "not found", err: status.Error(codes.NotFound, "device not found"), wantStatus: 404, wantCode: "NOT_FOUND", wantMessage: "device not found"},
		{name: "conflict", err: status.Error(codes.AlreadyExists, "phone taken"), wantStatus: 409, wantCode: "ALREADY_EXISTS"},
		{name: "unauthenticated", err: status.Error(codes.Unauthenticated, "token expired"), wantStatus: 401, wantCode: "UNAUTHENTICATED"},
		{name: "forbidden", err: status.Error(codes.PermissionDenied, "admin only"), wantStatus: 403, wantCode: "PERMISSION_DENIED"},
		{name: "version conflict", err: status.Error(codes.Aborted, "version mismatch"), wantStatus: 409, wantCode: "ABORTED"},
		{
			name: "protovalidate violations name the field",
			err: withDetails(t, codes.InvalidArgument, "validation error: ...", &validatepb.Violations{Violations: []*validatepb.Violation{{
				Field:   &validatepb.FieldPath{Elements: []*validatepb.FieldPathElement{{FieldName: &fieldPath}}},
				Message: proto.String("value length must be at least 1 characters"),
			}}}),
			wantStatus: 400, wantCode: "INVALID_ARGUMENT", wantField: "name",
		},
		{
			name: "bad request details name the field",
			err: withDetails(t, codes.InvalidArgument, "bad phone", &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
				Field: "phone", Description: "must be E.164",
			}}}),
			wantStatus: 400, wantCode: "INVALID_ARGUMENT", wantField: "phone",
		},
		{
			name:       "rate limit sets Retry-After",
			err:        withDetails(t, codes.ResourceExhausted, "slow down", &errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)}),
			wantStatus: 429, wantCode: "RESOURCE_EXHAUSTED", retryAfter: "2",
		},
		{name: "internal messages are hidden", err: status.Error(codes.Internal, "pq: relation accounts does not exist"), wantStatus: 500, wantCode: "INTERNAL", wantMessage: "internal error"},
		{name: "plain errors are internal", err: errors.New("dial tcp 10.0.0.1: refused"), wantStatus: 500, wantCode: "INTERNAL", wantMessage: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req = req.WithContext(requestid.With(req.Context(), "rid-1"))
			rec := httptest.NewRecorder()
			web.WriteError(rec, req, tt.err)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			f := decodeFailure(t, rec)
			if f.Error.Code != tt.wantCode || f.RequestID != "rid-1" {
				t.Fatalf("envelope %+v", f)
			}
			if tt.wantMessage != "" && f.Error.Message != tt.wantMessage {
				t.Fatalf("message %q, want %q", f.Error.Message, tt.wantMessage)
			}
			if tt.wantField != "" && (len(f.Error.Details) != 1 || f.Error.Details[0].Field != tt.wantField) {
				t.Fatalf("details %+v, want field %q", f.Error.Details, tt.wantField)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

func TestGatewayEnvelope(t *testing.T) {
	t.Parallel()
	mux := runtime.NewServeMux(web.MuxOptions()...)

	t.Run("answers are wrapped with proto field names", func(t *testing.T) {
		t.Parallel()
		req := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
		_, marshaler := runtime.MarshalerForRequest(mux, req)
		msg, _ := structpb.NewStruct(map[string]any{"device_id": "d1"})
		rec := httptest.NewRecorder()
		runtime.ForwardResponseMessage(req.Context(), mux, marshaler, rec, req, msg)
		if rec.Code != 200 || rec.Body.String() != `{"success":true,"data":{"device_id":"d1"}}` {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	})

	t.Run("unknown request fields are refused by name", func(t *testing.T) {
		t.Parallel()
		req := httptest.NewRequest(http.MethodPost, "/v1/x", strings.NewReader(`{"field": "a", "description": "b", "color": "red"}`))
		inbound, _ := runtime.MarshalerForRequest(mux, req)
		var fv errdetails.BadRequest_FieldViolation
		err := inbound.NewDecoder(req.Body).Decode(&fv)
		if err == nil || !strings.Contains(err.Error(), "color") {
			t.Fatalf("decode error %v does not name the field", err)
		}
	})

	t.Run("unknown paths answer the envelope", func(t *testing.T) {
		t.Parallel()
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/nowhere", nil))
		if rec.Code != 404 || decodeFailure(t, rec).Error.Code != "NOT_FOUND" {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	})
}

func TestRecoverAndLimit(t *testing.T) {
	t.Parallel()
	h := web.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		if _, err := io.ReadAll(r.Body); err != nil {
			web.WriteError(w, r, err)
			return
		}
		web.WriteData(w, http.StatusOK, map[string]string{"ok": "yes"})
	}), requestid.Middleware, web.Recover(zap.NewNop()), web.LimitBody(16))

	tests := []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"panic becomes 500", httptest.NewRequest(http.MethodGet, "/panic", nil), 500},
		{"declared oversize body is 413", httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 17))), 413},
		{"streamed oversize body is 400", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader(strings.Repeat("x", 64))))
			r.ContentLength = -1
			return r
		}(), 400},
		{"small body passes", httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tt.req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body.String())
			}
			if tt.status >= 400 {
				decodeFailure(t, rec)
			}
		})
	}
}

// TestServeDrainsInFlightRequests cancels the server while a request is
// being answered: the request must still complete, then Serve returns.
func TestServeDrainsInFlightRequests(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
			t.Error("request context cancelled by the shutdown")
			return
		}
		web.WriteData(w, http.StatusOK, "done")
	})
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- web.Serve(ctx, lis, h, web.DefaultServerConfig()) }()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + lis.Addr().String() + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-started
	cancel()

	r := <-got
	if r.err != nil || r.status != 200 || !strings.Contains(r.body, `"done"`) {
		t.Fatalf("in-flight request: %+v", r)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
	if _, err := net.DialTimeout("tcp", lis.Addr().String(), time.Second); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}

func TestGatewayHandler(t *testing.T) {
	t.Parallel()
	g := web.NewGateway([]byte(`{"swagger":"2.0"}`))
	h := g.Handler(zap.NewNop(), web.DefaultBodyLimit)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs/openapi.json", nil))
	if rec.Code != 200 || rec.Body.String() != `{"swagger":"2.0"}` || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("openapi: %d %q", rec.Code, rec.Body.String())
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `spec-url="/docs/openapi.json"`) {
		t.Fatalf("docs page: %d", rec.Code)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/unknown", nil))
	f := decodeFailure(t, rec)
	if rec.Code != 404 || f.RequestID == "" || rec.Header().Get(requestid.Header) != f.RequestID {
		t.Fatalf("unknown path: %d %+v", rec.Code, f)
	}
}
