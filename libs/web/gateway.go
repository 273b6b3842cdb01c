package web

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// MuxOptions configures a grpc-gateway ServeMux to speak the envelope:
// answers are wrapped in {"success": true, "data": ...}, errors become the
// error envelope, JSON field names are the proto names, unknown request
// fields are refused, and the x-request-id reaches the gRPC call.
func MuxOptions() []runtime.ServeMuxOption {
	return []runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &envelopeMarshaler{JSONPb: runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		runtime.WithErrorHandler(func(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
			WriteError(w, r, err)
		}),
		runtime.WithRoutingErrorHandler(func(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
			WriteError(w, r, routingError(httpStatus))
		}),
		runtime.WithIncomingHeaderMatcher(headerMatcher),
		runtime.WithMiddlewares(routeSpanName),
	}
}

// headerMatcher forwards the standard headers and the request id.
func headerMatcher(key string) (string, bool) {
	if http.CanonicalHeaderKey(key) == "X-Request-Id" {
		return "x-request-id", true
	}
	return runtime.DefaultHeaderMatcher(key)
}

func routingError(httpStatus int) error {
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		return status.Error(codes.Unimplemented, "method not allowed")
	case http.StatusBadRequest:
		return status.Error(codes.InvalidArgument, "bad request")
	default:
		return status.Error(codes.NotFound, "no such path")
	}
}

// envelopeMarshaler wraps every answer the gateway marshals in the success
// envelope. Errors never reach it: the error handler writes them.
type envelopeMarshaler struct {
	runtime.JSONPb
}

var (
	envelopeOpen  = []byte(`{"success":true,"data":`)
	envelopeClose = []byte(`}`)
)

// Marshal implements runtime.Marshaler.
func (m *envelopeMarshaler) Marshal(v any) ([]byte, error) {
	data, err := m.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(envelopeOpen)+len(data)+len(envelopeClose))
	out = append(append(append(out, envelopeOpen...), data...), envelopeClose...)
	return out, nil
}
