// Command main-gateway runs the main gateway. See package maingw for what it
// does and the README for its configuration.
package main

import (
	"context"

	"go.uber.org/zap"

	maingw "github.com/comfortech/platform/gateways/main"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
)

func main() {
	process.Main("main-gateway", func(c maingw.Config) logging.Config { return c.Log },
		func(ctx context.Context, cfg maingw.Config, log *zap.Logger) error { return maingw.Run(ctx, cfg, log) })
}
