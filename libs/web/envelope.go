// Package web is the HTTP side every gateway shares: the response envelope,
// the mapping from gRPC status to HTTP status, grpc-gateway options that
// produce the envelope, middleware (request id, panic recovery, body limit)
// and a server with timeouts and a graceful drain.
//
// Every answer is an envelope:
//
//	{"success": true,  "data": {...}}
//	{"success": false, "error": {"code": "NOT_FOUND", "message": "device not found",
//	                             "details": [{"field": "name", "description": "..."}]},
//	 "request_id": "..."}
package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/comfortech/platform/libs/requestid"
)

// Failure is the envelope of an error answer.
type Failure struct {
	Success   bool      `json:"success"`
	Error     ErrorBody `json:"error"`
	RequestID string    `json:"request_id,omitempty"`
}

// ErrorBody says what went wrong, in terms a client can act on.
type ErrorBody struct {
	// Code is the gRPC code name: INVALID_ARGUMENT, NOT_FOUND, ...
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details []FieldDetail `json:"details,omitempty"`
}

// FieldDetail names one invalid field of a request.
type FieldDetail struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// success is the envelope of a plain-JSON answer.
type success struct {
	Success bool `json:"success"`
	Data    any  `json:"data"`
}

// WriteData answers with status and data inside a success envelope. Data is
// encoded with encoding/json; answers that are protobuf messages go through
// the grpc-gateway marshaler instead (see MuxOptions).
func WriteData(w http.ResponseWriter, status int, data any) {
	writeJSON(w, status, success{Success: true, Data: data})
}

// WriteError answers with the envelope for err. A gRPC status error keeps
// its code and message, except that Internal and Unknown messages are
// replaced so that no internal detail reaches a client. Any other error is
// an internal error.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	st := Status(err)
	if ri := retryInfo(st); ri > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ri))
	}
	writeJSON(w, runtime.HTTPStatusFromCode(st.Code()), Failure{
		Error:     Body(st),
		RequestID: requestid.From(r.Context()),
	})
}

// Status converts err to a gRPC status; errors without one are Internal.
func Status(err error) *status.Status {
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		return status.New(codes.InvalidArgument, "request body too large")
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	return status.New(codes.Internal, "internal error")
}

// Body builds the error body of st, with field details taken from
// protovalidate violations and google.rpc.BadRequest details.
func Body(st *status.Status) ErrorBody {
	body := ErrorBody{Code: code.Code(st.Code()).String(), Message: st.Message()}
	switch st.Code() {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		body.Message = "internal error"
		return body
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *validatepb.Violations:
			for _, v := range d.GetViolations() {
				body.Details = append(body.Details, FieldDetail{
					Field:       protovalidate.FieldPathString(v.GetField()),
					Description: v.GetMessage(),
				})
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				body.Details = append(body.Details, FieldDetail{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	if len(body.Details) > 0 && st.Code() == codes.InvalidArgument {
		// protovalidate's own message repeats every violation; the details
		// carry them, so the message stays short.
		body.Message = "invalid request: " + body.Details[0].Field + ": " + body.Details[0].Description
	}
	return body
}

// retryInfo returns the whole seconds a client should wait, from a
// google.rpc.RetryInfo detail, or 0.
func retryInfo(st *status.Status) int {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			secs := int(ri.GetRetryDelay().AsDuration().Seconds() + 0.999)
			return max(secs, 1)
		}
	}
	return 0
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
