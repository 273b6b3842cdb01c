// Command dockerfile-check parses a Dockerfile with BuildKit's own parser
// and the build checks `docker build --check` runs while parsing:
//
//	dockerfile-check -image data -part data -stage build -stage runtime Dockerfile
//
// Then it checks the platform's rules for its images:
//
//   - each image named by -image is a target, and there is no other target
//     but the stages named by -stage;
//   - a RUN of scripts/build.sh builds every image's binary, so the images
//     and `make build` compile the same way;
//   - each image's ENTRYPOINT is its binary and it runs as a user other than
//     root; each -part image probes itself with HEALTHCHECK CMD
//     ["/usr/local/bin/NAME", "healthcheck"].
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// list is a repeatable flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var images, parts, stages list
	flag.Var(&images, "image", "an image target and the binary it runs (repeatable)")
	flag.Var(&parts, "part", "an image that must have a HEALTHCHECK (repeatable)")
	flag.Var(&stages, "stage", "a stage that is no image, e.g. build (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 || len(images) == 0 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-check -image NAME... [-part NAME]... [-stage NAME]... Dockerfile")
		os.Exit(2)
	}
	problems, err := check(flag.Arg(0), images, parts, stages)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerfile-check:", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "dockerfile-check: %s: %s\n", flag.Arg(0), p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Printf("dockerfile-check: %s: ok (%d images)\n", flag.Arg(0), len(images))
}

func check(path string, images, parts, extra []string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	res, err := parser.Parse(f)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, w := range res.Warnings {
		problems = append(problems, "parser: "+w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		problems = append(problems, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]instructions.Stage)
	for _, s := range stages {
		name := strings.ToLower(s.Name)
		byName[name] = s
		if name == "" || (!slices.Contains(images, name) && !slices.Contains(extra, name)) {
			problems = append(problems, fmt.Sprintf("stage %q is neither an image (-image) nor a known stage (-stage)", s.Name))
		}
	}
	built := false
	for _, s := range stages {
		for _, c := range s.Commands {
			run, ok := c.(*instructions.RunCommand)
			if !ok || !strings.Contains(strings.Join(run.CmdLine, " "), "scripts/build.sh") {
				continue
			}
			built = true
			words := strings.Fields(strings.Join(run.CmdLine, " "))
			for _, img := range images {
				if !slices.Contains(words, img) {
					problems = append(problems, fmt.Sprintf("stage %s: scripts/build.sh does not build %s", s.Name, img))
				}
			}
		}
	}
	if !built {
		problems = append(problems, "no RUN of scripts/build.sh: the images must build as `make build` does")
	}
	for _, img := range images {
		s, ok := byName[img]
		if !ok {
			problems = append(problems, fmt.Sprintf("no target %s", img))
			continue
		}
		bin := "/usr/local/bin/" + img
		var entry []string
		var health []string
		user := ""
		// Walk the stage and the stages it is built on, nearest first.
		for cur, seen := s, map[string]bool{}; ; {
			for i := len(cur.Commands) - 1; i >= 0; i-- {
				switch c := cur.Commands[i].(type) {
				case *instructions.EntrypointCommand:
					if entry == nil {
						entry = c.CmdLine
					}
				case *instructions.HealthCheckCommand:
					if health == nil && c.Health != nil {
						health = c.Health.Test
					}
				case *instructions.UserCommand:
					if user == "" {
						user = c.User
					}
				}
			}
			base, ok := byName[strings.ToLower(cur.BaseName)]
			if !ok || seen[base.Name] {
				break
			}
			seen[base.Name] = true
			cur = base
		}
		if !slices.Equal(entry, []string{bin}) {
			problems = append(problems, fmt.Sprintf("target %s: ENTRYPOINT is %q, want [%q]", img, entry, bin))
		}
		if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
			problems = append(problems, fmt.Sprintf("target %s runs as root (USER %q)", img, user))
		}
		if slices.Contains(parts, img) && !slices.Equal(health, []string{"CMD", bin, "healthcheck"}) {
			problems = append(problems, fmt.Sprintf("target %s: HEALTHCHECK is %q, want CMD [%q, \"healthcheck\"]", img, health, bin))
		}
	}
	return problems, nil
}
