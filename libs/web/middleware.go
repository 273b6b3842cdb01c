package web

import (
	"fmt"
	"net/http"
	"runtime/debug"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/comfortech/platform/libs/logging"
)

// Middleware wraps a handler.
type Middleware func(http.Handler) http.Handler

// Chain applies middleware so that the first one listed runs first.
func Chain(h http.Handler, mw ...Middleware) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// CallFields starts the request's log fields, which inner middleware
// (authentication) fills and AccessLog writes.
func CallFields(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(logging.WithCallFields(r.Context())))
	})
}

// Recover turns a panic in a handler into a 500 envelope and an error log
// with the stack, instead of a dropped connection.
func Recover(log *zap.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					logging.For(r.Context(), log).Error("panic in HTTP handler",
						zap.String("panic", fmt.Sprint(p)), zap.ByteString("stack", debug.Stack()))
					WriteError(w, r, status.Error(codes.Internal, "panic"))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// LimitBody refuses request bodies larger than limit bytes: at once with
// 413 when Content-Length says so, and with a read error otherwise.
func LimitBody(limit int64) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				writeJSON(w, http.StatusRequestEntityTooLarge, Failure{
					Error: ErrorBody{Code: "INVALID_ARGUMENT", Message: fmt.Sprintf("request body larger than %d bytes", limit)},
				})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			next.ServeHTTP(w, r)
		})
	}
}

// AccessLog logs one line per request at debug level (info for 5xx), with
// the request's fields. It never logs headers or bodies.
func AccessLog(log *zap.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(rec, r)
			level := zap.DebugLevel
			if rec.status >= 500 {
				level = zap.WarnLevel
			}
			// Check first: building the call's fields costs allocations a
			// busy server should not pay for lines that are not written.
			if ce := log.Check(level, "http request"); ce != nil {
				ce.Write(append(logging.Fields(r.Context()),
					zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", rec.status))...)
			}
		})
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
