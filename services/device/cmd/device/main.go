// Command device runs the device service. See package device for what it does
// and the README for its configuration.
package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/services/device"
)

func main() {
	process.Main("device", func(c device.Config) logging.Config { return c.Log },
		func(ctx context.Context, cfg device.Config, log *zap.Logger) error { return device.Run(ctx, cfg, log) })
}
