// Command auth-gateway runs the auth gateway. See package authgw for what it
// does and README.md beside this module for its configuration.
package main

import (
	"context"

	"go.uber.org/zap"

	authgw "github.com/comfortech/platform/gateways/auth"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
)

func main() {
	process.Main("auth-gateway", func(c authgw.Config) logging.Config { return c.Log },
		func(ctx context.Context, cfg authgw.Config, log *zap.Logger) error { return authgw.Run(ctx, cfg, log) })
}
