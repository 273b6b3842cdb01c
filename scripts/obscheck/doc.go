// Package obscheck holds the checks of the platform's observability files,
// run by `make obs-check`: the Grafana dashboards under
// deployments/grafana/dashboards and the Prometheus rules under
// deployments/prometheus parse, use only metrics the parts export (the
// inventory deployments/prometheus/metrics.txt, which a test of the
// all-in-one platform keeps true), select only scraped jobs, apply rate()
// only to counters, and every alert has a promtool test in which it fires
// and one in which it does not.
//
// It is a module of its own, outside the workspace, because the Prometheus
// modules it needs (the PromQL parser, and promtool pinned as a tool) would
// move shared dependencies of the platform.
package obscheck
