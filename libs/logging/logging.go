// Package logging builds the zap logger of every Comfortech binary and adds
// the fields of the current call (request id, trace id, account id) to it.
//
// Loggers are built once in main and passed down; nothing uses a global
// logger. Values that must never reach a log (tokens, passwords, secrets,
// full phone numbers) have helpers here that mask them.
package logging

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/comfortech/platform/libs/requestid"
)

// Config selects the level and the encoding of the logs.
type Config struct {
	// Level is debug, info, warn or error.
	Level string `env:"LOG_LEVEL" envDefault:"info"`
	// Format is json (production) or console (development).
	Format string `env:"LOG_FORMAT" envDefault:"json"`
}

// New builds a logger that writes to stderr and names the service in every line.
func New(cfg Config, service string) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	var zc zap.Config
	switch strings.ToLower(cfg.Format) {
	case "json", "":
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.TimeKey = "time"
		zc.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	case "console":
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
	default:
		return nil, fmt.Errorf("LOG_FORMAT: want json or console, got %q", cfg.Format)
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.DisableStacktrace = level > zapcore.DebugLevel
	log, err := zc.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return log.With(zap.String("service", service)), nil
}

type fieldsKey struct{}

// callFields holds the fields learnt while a call runs. It is shared by
// every context derived from the call's, so that a field added deep inside
// (the account id, once the token is verified) also reaches the access log
// written by an outer interceptor or middleware.
type callFields struct {
	mu     sync.Mutex
	fields []zap.Field
}

// WithCallFields returns a context that collects the fields of one call.
// Servers call it first thing for every request.
func WithCallFields(ctx context.Context) context.Context {
	return context.WithValue(ctx, fieldsKey{}, &callFields{})
}

// AddFields adds fields to the call of ctx; without WithCallFields earlier
// in the chain it does nothing.
func AddFields(ctx context.Context, fields ...zap.Field) {
	if cf, ok := ctx.Value(fieldsKey{}).(*callFields); ok {
		cf.mu.Lock()
		cf.fields = append(cf.fields, fields...)
		cf.mu.Unlock()
	}
}

// Fields returns the call's fields: request_id and trace_id when known, then
// those added with AddFields.
func Fields(ctx context.Context) []zap.Field {
	var extra []zap.Field
	if cf, ok := ctx.Value(fieldsKey{}).(*callFields); ok {
		cf.mu.Lock()
		extra = append(extra, cf.fields...)
		cf.mu.Unlock()
	}
	fields := make([]zap.Field, 0, 2+len(extra))
	if id := requestid.From(ctx); id != "" {
		fields = append(fields, zap.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		fields = append(fields, zap.String("trace_id", sc.TraceID().String()))
	}
	return append(fields, extra...)
}

// For returns log with the call's fields from ctx.
func For(ctx context.Context, log *zap.Logger) *zap.Logger {
	if f := Fields(ctx); len(f) > 0 {
		return log.With(f...)
	}
	return log
}

// AccountID is the field naming the account a call acts for.
func AccountID(id string) zap.Field { return zap.String("account_id", id) }

// Phone logs a phone number with all but its country prefix and last two
// digits masked: "+79516519741" becomes "+7********41".
func Phone(key, phone string) zap.Field { return zap.String(key, MaskPhone(phone)) }

// MaskPhone masks a phone number as Phone does.
func MaskPhone(phone string) string {
	if len(phone) <= 4 {
		return strings.Repeat("*", len(phone))
	}
	return phone[:2] + strings.Repeat("*", len(phone)-4) + phone[len(phone)-2:]
}
