// Command notify runs the notify service. See package notify for what it does
// and the README for its configuration.
package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/services/notify"
)

func main() {
	process.Main("notify", func(c notify.Config) logging.Config { return c.Log },
		func(ctx context.Context, cfg notify.Config, log *zap.Logger) error { return notify.Run(ctx, cfg, log) })
}
