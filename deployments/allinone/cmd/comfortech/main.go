// Command comfortech runs the whole platform in one process with embedded
// infrastructure: `make run`. Ctrl-C stops every part cleanly.
package main

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
)

func main() {
	process.Main("comfortech", func(c allinone.Config) logging.Config { return c.Log },
		func(ctx context.Context, cfg allinone.Config, log *zap.Logger) error {
			p, err := allinone.Start(ctx, cfg, log)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stdout, "Comfortech is running (data in %s). Ctrl-C stops it.\n\n", cfg.DataDir)
			p.PrintEndpoints(os.Stdout)
			return p.Wait()
		})
}
