package admingw

import (
	"fmt"
	"net/http"

	"github.com/comfortech/platform/libs/web"
	"github.com/comfortech/platform/proto/eventcatalog"
)

// serveEventCatalog serves the platform's event catalog, every topic and
// event type with its schema, as an AsyncAPI 3.0 document at GET
// /v1/events/asyncapi: the catalog compiled into this binary, built once.
// Like every route of the gateway, it is for administrators only.
func serveEventCatalog(gw *web.Gateway) error {
	cat, err := eventcatalog.Load()
	if err != nil {
		return err
	}
	doc, err := cat.AsyncAPI()
	if err != nil {
		return fmt.Errorf("event catalog: %w", err)
	}
	gw.Routes.HandleFunc("GET /v1/events/asyncapi", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	return nil
}
