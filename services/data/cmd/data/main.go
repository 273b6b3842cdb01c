// Command data runs the data service. See package data for what it does
// and the README for its configuration.
package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
	"github.com/comfortech/platform/services/data"
)

func main() {
	process.Main("data", func(c data.Config) logging.Config { return c.Log },
		func(ctx context.Context, cfg data.Config, log *zap.Logger) error { return data.Run(ctx, cfg, log) })
}
