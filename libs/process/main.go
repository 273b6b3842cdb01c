package process

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/config"
	"github.com/comfortech/platform/libs/logging"
)

// Main is the whole main function of a binary: it parses C from the
// environment once, builds the logger, runs run until SIGINT or SIGTERM, and
// exits non-zero with a clear message when anything fails.
func Main[C any](name string, logConfig func(C) logging.Config, run func(context.Context, C, *zap.Logger) error) {
	if err := main(name, logConfig, run); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
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
