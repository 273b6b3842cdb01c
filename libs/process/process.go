// Package process assembles what every Comfortech binary runs besides its
// own work: a metrics registry, readiness checks, the ops listener
// (/healthz, /readyz, /metrics) and a lifecycle group in which its servers
// and workers start together and drain together.
//
// A part's Run builds a Process, adds its servers with ServeGRPC, ServeHTTP
// and Go, and calls Run.
package process

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/comfortech/platform/libs/auth"
	"github.com/comfortech/platform/libs/health"
	"github.com/comfortech/platform/libs/lifecycle"
	"github.com/comfortech/platform/libs/metrics"
	"github.com/comfortech/platform/libs/rpc"
	"github.com/comfortech/platform/libs/tracing"
	"github.com/comfortech/platform/libs/web"
)

// Config is the part of every binary's configuration that this package uses.
type Config struct {
	// OpsAddr is where /healthz, /readyz and /metrics are served. Each part
	// sets it from its own variable, since the default differs per part.
	OpsAddr string `env:"-"`
	// HTTP bounds the HTTP servers' timeouts and drain.
	HTTP web.ServerConfig
	// ReadinessInterval is how often the gRPC health status is re-evaluated.
	ReadinessInterval time.Duration `env:"READINESS_INTERVAL" envDefault:"5s"`
	// Tracing says where spans are exported (the OTEL_* variables).
	Tracing tracing.Config
	// TracerProvider, when set, is used instead of one built from Tracing
	// (process.WithTracerProvider); its owner shuts it down.
	TracerProvider trace.TracerProvider `env:"-"`
}

// Process is one running binary (or one part inside the all-in-one binary).
type Process struct {
	// Name names the part in logs and metrics.
	Name string
	// Log is the part's logger.
	Log *zap.Logger
	// Metrics is the part's registry; packages register their metrics here.
	Metrics *metrics.Registry
	// Health holds the part's readiness checks.
	Health *health.Checker
	// Tracer records the part's spans: its servers', clients' and Kafka
	// producers' and consumers'. It is a no-op provider unless tracing is
	// configured.
	Tracer *tracing.Provider

	cfg   Config
	group *lifecycle.Group
}

// New returns a Process with a fresh registry and checker, and its tracer
// provider. It fails only on a tracing configuration the exporter cannot use.
func New(name string, log *zap.Logger, cfg Config) (*Process, error) {
	if cfg.ReadinessInterval <= 0 {
		cfg.ReadinessInterval = 5 * time.Second
	}
	if cfg.HTTP == (web.ServerConfig{}) {
		cfg.HTTP = web.DefaultServerConfig()
	}
	tp := tracing.Borrowed(cfg.TracerProvider)
	if cfg.TracerProvider == nil {
		var err error
		// Building the exporter connects nowhere yet.
		if tp, err = tracing.New(context.Background(), cfg.Tracing, name); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	p := &Process{
		Name:    name,
		Log:     log,
		Metrics: metrics.New(),
		Health:  health.New(2 * time.Second),
		Tracer:  tp,
		cfg:     cfg,
		group:   lifecycle.New(log),
	}
	p.group.OnStop(p.Health.Drain)
	// Readiness as a metric, so alerts see a part that runs but cannot
	// reach what it needs (up only says it answers scrapes).
	p.Metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "ready",
		Help: "1 while the part is ready (its /readyz answers 200 at the last evaluation), else 0.",
	}, func() float64 {
		if p.Health.Ready() {
			return 1
		}
		return 0
	}))
	return p, nil
}

// Listen returns given when it is not nil, and otherwise listens on addr.
// Parts take optional pre-opened listeners so that tests and the all-in-one
// binary can use port 0 and learn the address before start.
func Listen(addr string, given net.Listener) (net.Listener, error) {
	if given != nil {
		return given, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// Go adds a worker to the process.
func (p *Process) Go(name string, a lifecycle.Actor) { p.group.Add(name, a) }

// OnStop registers f to run when the process starts to stop.
func (p *Process) OnStop(f func()) { p.group.OnStop(f) }

// ServeGRPC adds a gRPC server on l.
func (p *Process) ServeGRPC(l net.Listener, srv *grpc.Server) {
	p.group.Add("grpc "+l.Addr().String(), func(ctx context.Context) error {
		// Initialised here, once the caller has registered its services,
		// so every method has its series from the first scrape.
		p.Metrics.GRPCServer().InitializeMetrics(srv)
		return rpc.Serve(ctx, l, srv, p.cfg.HTTP.DrainTimeout)
	})
}

// ServeHTTP adds an HTTP server on l, counted in the metrics as server.
func (p *Process) ServeHTTP(server string, l net.Listener, h http.Handler) {
	h = p.Metrics.HTTPMiddleware(server)(h)
	h = web.Tracing(p.Tracer, server)(h)
	p.group.Add("http "+l.Addr().String(), func(ctx context.Context) error {
		return web.Serve(ctx, l, h, p.cfg.HTTP)
	})
}

// Run serves the ops listener l (nil: listen on Config.OpsAddr) and every
// server and worker added, until ctx ends or one of them fails.
func (p *Process) Run(ctx context.Context, opsListener net.Listener) error {
	l, err := Listen(p.cfg.OpsAddr, opsListener)
	if err != nil {
		return fmt.Errorf("%s ops: %w", p.Name, err)
	}
	mux := http.NewServeMux()
	p.Health.Register(mux)
	mux.Handle("GET /metrics", p.Metrics.Handler())
	ops := web.ServerConfig{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, DrainTimeout: time.Second}
	p.group.Add("ops "+l.Addr().String(), func(ctx context.Context) error {
		return web.Serve(ctx, l, mux, ops)
	})
	p.group.Add("readiness", func(ctx context.Context) error {
		return p.Health.Watch(ctx, p.cfg.ReadinessInterval)
	})
	p.Log.Info("started", zap.String("ops", l.Addr().String()))
	err = p.group.Run(ctx)
	// After the drain: the spans of the last requests go out too.
	flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ferr := p.Tracer.Shutdown(flushCtx); ferr != nil {
		p.Log.Warn("spans not exported at stop", zap.Error(ferr))
	}
	return err
}

// GRPCServer listens on addr (or uses given), builds a gRPC server with the
// standard interceptors, this process's health service and reflection, and
// adds it to the process. The caller registers its services on it before
// Run.
func (p *Process) GRPCServer(addr string, given net.Listener, opts ...rpc.ServerOption) (*grpc.Server, error) {
	l, err := Listen(addr, given)
	if err != nil {
		return nil, fmt.Errorf("%s grpc: %w", p.Name, err)
	}
	opts = append([]rpc.ServerOption{rpc.WithServerTracing(p.Tracer)}, opts...)
	srv, err := rpc.NewServer(p.Log, p.Metrics, p.Health, opts...)
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("%s grpc: %w", p.Name, err)
	}
	p.ServeGRPC(l, srv)
	return srv, nil
}

// Dial returns a client connection to the gRPC service at addr that this
// part calls (see Connect), and makes the part ready only while that
// service reports itself serving: a gateway is ready when the services
// behind it are. name names the readiness check; the caller closes the
// connection after Run.
func (p *Process) Dial(name, addr string, opts ...rpc.ClientOption) (*grpc.ClientConn, error) {
	conn, err := p.Connect(addr, opts...)
	if err != nil {
		return nil, err
	}
	p.Health.Add(name, rpc.HealthCheck(conn))
	return conn, nil
}

// Connect returns a client connection to the gRPC service at addr (see
// rpc.Dial), traced and counted in the part's metrics like its other
// calls, for a service the part works without for a while: its readiness
// does not depend on it. The caller closes the connection after Run.
func (p *Process) Connect(addr string, opts ...rpc.ClientOption) (*grpc.ClientConn, error) {
	opts = append([]rpc.ClientOption{rpc.WithClientTracing(p.Tracer)}, opts...)
	conn, err := rpc.Dial(addr, p.Metrics, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	return conn, nil
}

// Verifier starts the token verifier of s, stopping with ctx, and makes the
// process ready only once the identity provider's keys are loaded.
func (p *Process) Verifier(ctx context.Context, s auth.Settings) (*auth.Verifier, error) {
	v, err := s.NewVerifier(ctx, p.Log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	p.Health.Add("identity", v.Ready)
	return v, nil
}
