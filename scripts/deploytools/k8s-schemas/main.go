// Command k8s-schemas turns the Kubernetes OpenAPI v2 document
// (api/openapi-spec/swagger.json of the k8s.io/kubernetes module) into the
// JSON schemas kubeconform reads: one standalone file per kind, version and
// group, laid out as kubeconform's -schema-location expects
// (DIR/v<version>-standalone-strict/<kind>-<group>-<version>.json), with
// the strict rules of kubeconform's own openapi2jsonschema: an object with
// properties allows no others, int-or-string and quantities take strings
// and numbers, and apiVersion and kind must be the file's.
//
//	k8s-schemas -spec swagger.json -version 1.35.4 -out bin/k8s-schemas
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	spec := flag.String("spec", "", "the Kubernetes OpenAPI v2 document (swagger.json)")
	version := flag.String("version", "", "the Kubernetes version it describes, e.g. 1.35.4")
	out := flag.String("out", "", "the schema directory (kubeconform's -schema-location)")
	flag.Parse()
	if *spec == "" || *version == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	n, err := run(*spec, *version, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8s-schemas:", err)
		os.Exit(1)
	}
	fmt.Printf("k8s-schemas: %d schemas of Kubernetes %s in %s\n", n, *version, *out)
}

// gvk is one entry of x-kubernetes-group-version-kind.
type gvk struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

func run(specPath, version, out string) (int, error) {
	raw, err := os.ReadFile(specPath)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return 0, fmt.Errorf("%s: %w", specPath, err)
	}
	if len(doc.Definitions) == 0 {
		return 0, fmt.Errorf("%s: no definitions", specPath)
	}
	defs := make(map[string]any, len(doc.Definitions))
	for name, d := range doc.Definitions {
		defs[name] = strict(d)
	}
	// A quantity is written "500m" or 2 alike (the API server parses both);
	// the document calls it a string.
	const quantity = "io.k8s.apimachinery.pkg.api.resource.Quantity"
	if _, ok := defs[quantity]; !ok {
		return 0, fmt.Errorf("%s: no %s", specPath, quantity)
	}
	defs[quantity] = map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	dir := filepath.Join(out, "v"+strings.TrimPrefix(version, "v")+"-standalone-strict")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	names := make([]string, 0, len(doc.Definitions))
	for name := range doc.Definitions {
		names = append(names, name)
	}
	sort.Strings(names)
	n := 0
	for _, name := range names {
		kinds, err := kindsOf(doc.Definitions[name])
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		for _, k := range kinds {
			schema, err := standalone(defs, name, k)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", name, err)
			}
			b, err := json.Marshal(schema)
			if err != nil {
				return 0, err
			}
			if err := os.WriteFile(filepath.Join(dir, fileName(k)), b, 0o644); err != nil {
				return 0, err
			}
			n++
		}
	}
	if n == 0 {
		return 0, errors.New("no definition names a kind (x-kubernetes-group-version-kind)")
	}
	return n, nil
}

// kindsOf returns the kinds a definition is the schema of. Definitions
// shared by many groups (DeleteOptions, WatchEvent) are no resource a
// manifest holds, and are left out.
func kindsOf(def map[string]any) ([]gvk, error) {
	raw, ok := def["x-kubernetes-group-version-kind"]
	if !ok {
		return nil, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var kinds []gvk
	if err := json.Unmarshal(b, &kinds); err != nil {
		return nil, err
	}
	if len(kinds) != 1 {
		return nil, nil
	}
	return kinds, nil
}

// fileName is kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json.
func fileName(k gvk) string {
	name := strings.ToLower(k.Kind)
	if k.Group != "" {
		name += "-" + strings.ToLower(strings.Split(k.Group, ".")[0])
	}
	return name + "-" + strings.ToLower(k.Version) + ".json"
}

// standalone returns the schema of definition name as kind k: the
// definition itself, apiVersion and kind pinned, with every definition it
// reaches under "definitions" (the $refs stay #/definitions/...).
func standalone(defs map[string]any, name string, k gvk) (map[string]any, error) {
	root, ok := clone(defs[name]).(map[string]any)
	if !ok {
		return nil, errors.New("not an object")
	}
	props, _ := root["properties"].(map[string]any)
	if props == nil {
		return nil, errors.New("a kind without properties")
	}
	apiVersion := k.Version
	if k.Group != "" {
		apiVersion = k.Group + "/" + k.Version
	}
	for field, value := range map[string]string{"apiVersion": apiVersion, "kind": k.Kind} {
		p, _ := props[field].(map[string]any)
		if p == nil {
			return nil, fmt.Errorf("no %s property", field)
		}
		p["enum"] = []any{value}
	}
	reached := make(map[string]any)
	if err := collect(defs, root, reached); err != nil {
		return nil, err
	}
	root["definitions"] = reached
	root["$schema"] = "http://json-schema.org/draft-04/schema#"
	return root, nil
}

// collect adds every definition v refers to, transitively, to reached.
func collect(defs map[string]any, v any, reached map[string]any) error {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			name, ok := strings.CutPrefix(ref, "#/definitions/")
			if !ok {
				return fmt.Errorf("unexpected $ref %q", ref)
			}
			if _, seen := reached[name]; !seen {
				def, ok := defs[name]
				if !ok {
					return fmt.Errorf("$ref to a missing definition %q", name)
				}
				reached[name] = def
				if err := collect(defs, def, reached); err != nil {
					return err
				}
			}
		}
		for _, child := range v {
			if err := collect(defs, child, reached); err != nil {
				return err
			}
		}
	case []any:
		for _, child := range v {
			if err := collect(defs, child, reached); err != nil {
				return err
			}
		}
	}
	return nil
}

// strict applies kubeconform's strict conversion to a schema, recursively:
// objects with properties get additionalProperties false (unless they keep
// unknown fields), int-or-string becomes a string or an integer and a
// quantity a string or a number.
func strict(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if v["format"] == "int-or-string" {
			return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		}
		out := make(map[string]any, len(v)+1)
		for key, child := range v {
			if key == "properties" {
				props := make(map[string]any)
				for name, p := range child.(map[string]any) {
					props[name] = strict(p)
				}
				out[key] = props
				continue
			}
			out[key] = strict(child)
		}
		if _, ok := v["properties"]; ok && v["x-kubernetes-preserve-unknown-fields"] != true {
			if _, set := v["additionalProperties"]; !set {
				out["additionalProperties"] = false
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, child := range v {
			out[i] = strict(child)
		}
		return out
	default:
		return v
	}
}

// clone copies a decoded JSON value deeply.
func clone(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, child := range v {
			out[k] = clone(child)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, child := range v {
			out[i] = clone(child)
		}
		return out
	default:
		return v
	}
}
