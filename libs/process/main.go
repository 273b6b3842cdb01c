package process

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/config"
	"github.com/comfortech/platform/libs/logging"
)

// Main is the whole main function of a binary: it parses C from the
// environment once, builds the logger, runs run until SIGINT or SIGTERM, and
// exits non-zero with a clear message when anything fails.
//
// Run with the single argument HealthcheckArg, the binary instead probes the
// /healthz of the same part running beside it, at the address C reads from
// OPS_ADDR (or its default), and exits 0 when it is alive.
func Main[C any](name string, logConfig func(C) logging.Config, run func(context.Context, C, *zap.Logger) error) {
	if len(os.Args) == 2 && os.Args[1] == HealthcheckArg {
		os.Exit(healthcheck[C](name))
	}
	if err := main(name, logConfig, run); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// healthcheck is Main's probe mode; it returns the exit code.
func healthcheck[C any](name string) int {
	addr, ok := config.Lookup[C]("OPS_ADDR")
	if !ok || addr == "" {
		fmt.Fprintf(os.Stderr, "%s: healthcheck: this binary has no OPS_ADDR\n", name)
		return 2
	}
	if err := Healthcheck(context.Background(), addr, 3*time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

func main[C any](name string, logConfig func(C) logging.Config, run func(context.Context, C, *zap.Logger) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Parse[C]()
	if err != nil {
		return err
	}
	log, err := logging.New(logConfig(cfg), name)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer func() { _ = log.Sync() }()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("stopped with an error", zap.Error(err))
		return err
	}
	log.Info("stopped")
	return nil
}
