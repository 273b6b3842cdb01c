package allinone_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/comfortech/platform/proto/openapi"
)

// TestAdminGatewayGuardsEveryRoute walks every operation of the admin
// gateway's OpenAPI document: each refuses an anonymous caller (401) and
// an app user's token (403) before anything else, and each is served (an
// administrator's call gets past the guard: any answer but 401, 403 and
// 404-without-envelope, which would mean the route is not there).
func TestAdminGatewayGuardsEveryRoute(t *testing.T) {
	p, cancel := start(t, t.TempDir())
	defer stop(t, p, cancel)
	waitReady(t, p)
	authAPI := call{t, "http://" + p.Addr("auth-gateway", "http")}
	adminAPI := call{t, "http://" + p.Addr("admin-gateway", "http")}
	admin := adminToken(t, p, authAPI)
	user := authAPI.tokens("/v1/auth/register", map[string]string{
		"phone": fmt.Sprintf("+7959%06d1", time.Now().UnixNano()%1_000_000), "password": "Comfort-2026"}).AccessToken

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Admin, &doc); err != nil {
		t.Fatal(err)
	}
	// Path parameters get a well-formed id that names nothing.
	param := regexp.MustCompile(`\{[^}]+\}`)
	var routes []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			routes = append(routes, strings.ToUpper(method)+" "+param.ReplaceAllString(path, "0190a3c2-7d4e-7c3b-9f1a-2b3c4d5e6f70"))
		}
	}
	sort.Strings(routes)
	if len(routes) < 40 {
		t.Fatalf("the admin API lists only %d operations", len(routes))
	}
	for _, route := range routes {
		method, path, _ := strings.Cut(route, " ")
		var body any
		if method != http.MethodGet && method != http.MethodDelete {
			body = map[string]any{}
		}
		expectAdminOnly(t, adminAPI, user, method, path, body)
		if method == http.MethodGet || method == http.MethodDelete {
			// Reads and deletions of nothing are safe to try as the
			// administrator: the route must exist and answer in the envelope.
			code, env := adminAPI.do(method, path, admin, nil)
			if code == http.StatusUnauthorized || code == http.StatusForbidden || (code == http.StatusNotFound && env.Error.Code == "") {
				t.Errorf("admin %s: %d %+v", route, code, env.Error)
			}
		}
	}
	t.Logf("%d operations guarded", len(routes))
}
