// Command compose-check loads a Compose file the way `docker compose config`
// does (github.com/compose-spec/compose-go: schema, interpolation,
// normalisation, consistency such as depends_on and volumes that exist):
//
//	compose-check -env COMFORT_ADMIN_PASSWORD=x docker-compose.yml
//
// Then it checks what would only fail at `docker compose up`:
//
//   - every bind-mounted file or directory exists;
//   - a depends_on condition service_healthy waits for a service that has a
//     healthcheck, and service_completed_successfully for a one-shot service
//     (restart "no");
//   - every service built from the Dockerfile names a target.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// list is a repeatable flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var env list
	flag.Var(&env, "env", "NAME=VALUE the file is interpolated with (repeatable); nothing else of the environment is used")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-env NAME=VALUE]... docker-compose.yml")
		os.Exit(2)
	}
	problems, err := check(flag.Arg(0), env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compose-check:", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "compose-check:", p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Printf("compose-check: %s: ok\n", flag.Arg(0))
}

func check(file string, env []string) (problems []string, err error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(abs)
	opts, err := cli.NewProjectOptions([]string{abs}, cli.WithWorkingDirectory(dir), cli.WithEnv(env),
		cli.WithInterpolation(true), cli.WithNormalization(true), cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		return nil, err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(project.Services))
	for name := range project.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		svc := project.Services[name]
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err == nil {
				continue
			}
			rel, _ := filepath.Rel(dir, v.Source)
			problems = append(problems, fmt.Sprintf("service %s mounts %s, which does not exist", name, rel))
		}
		for dep, d := range svc.DependsOn {
			target, ok := project.Services[dep]
			if !ok {
				problems = append(problems, fmt.Sprintf("service %s depends on %s, which is no service", name, dep))
				continue
			}
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0 {
					problems = append(problems, fmt.Sprintf("service %s waits for %s to be healthy, which has no healthcheck", name, dep))
				}
			case types.ServiceConditionCompletedSuccessfully:
				if target.Restart != "" && target.Restart != types.RestartPolicyNo {
					problems = append(problems, fmt.Sprintf("service %s waits for %s to complete, which restarts (%s)", name, dep, target.Restart))
				}
			}
		}
		if svc.Build != nil && svc.Build.Target == "" {
			problems = append(problems, fmt.Sprintf("service %s builds the Dockerfile without a target", name))
		}
	}
	return problems, nil
}
