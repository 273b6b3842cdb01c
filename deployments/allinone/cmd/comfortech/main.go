// Command comfortech runs the whole platform in one process with embedded
// infrastructure: `make run`. Ctrl-C stops every part cleanly.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/comfortech/platform/deployments/allinone"
	"github.com/comfortech/platform/libs/logging"
	"github.com/comfortech/platform/libs/process"
)

// opsClient is the realm's operators' client, a service account with the
// admin role whose secret the platform keeps in the data directory.
const opsClient = "comfortech-ops"

func main() {
	process.Main("comfortech", func(c allinone.Config) logging.Config { return c.Log },
		func(ctx context.Context, cfg allinone.Config, log *zap.Logger) error {
			p, err := allinone.Start(ctx, cfg, log)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stdout, "Comfortech is running (data in %s). Ctrl-C stops it.\n\n", cfg.DataDir)
			p.PrintEndpoints(os.Stdout)
			fmt.Fprintf(os.Stdout, "\nIdentity provider realm: %s\n", p.Issuer)
			if p.AdminPasswordGenerated {
				// Printed once, on the start that generated it; it stays in
				// the data directory for the next starts.
				fmt.Fprintf(os.Stdout, "Platform and identity-provider admin: admin / %s (generated; kept in %s)\n",
					p.AdminPassword.Reveal(), filepath.Join(cfg.DataDir, "secrets", "admin-password"))
			} else {
				fmt.Fprintln(os.Stdout, "Platform and identity-provider admin: admin (password from COMFORT_ADMIN_PASSWORD or the data directory)")
			}
			fmt.Fprintf(os.Stdout, "Operators' client (comfortctl login --client-id %s): secret in %s\n",
				opsClient, filepath.Join(cfg.DataDir, "secrets", "client-"+opsClient))
			return p.Wait()
		})
}
