// Command admin-gateway runs the admin gateway. See package admingw for what it
// does and the README for its configuration.
package main

import (
	"context"

	"go.uber.org/zap"

	admingw "github.com/comfortech/platform/gateways/admin"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
)

func main() {
	process.Main("admin-gateway", func(c admingw.Config) logging.Config { return c.Log },
		func(ctx context.Context, cfg admingw.Config, log *zap.Logger) error {
			return admingw.Run(ctx, cfg, log)
		})
}
