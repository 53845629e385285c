// Command sbomreplace corrects, in a CycloneDX SBOM that cyclonedx-gomod
// made of a Go binary, the modules the build replaced by a copy in this
// repository (go.mod's replace => ./third_party/...). The tool names such a
// module by its local path, version "(devel)", a purl no scanner can
// match, which hides what the copy is; this names it as the upstream module
// and version it was copied from, with a pedigree saying it carries our
// patches and where they are, so that advisories for that module still
// find it:
//
//	sbomreplace -bin BINARY SBOM.json
//
// rewrites SBOM.json in place, reading the replacements from the binary's
// own build information. It fails if the SBOM lacks one of them, so a
// change in the tool's output is noticed rather than shipped.
package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
)

func main() {
	bin := flag.String("bin", "", "the binary the SBOM describes (required)")
	flag.Parse()
	if *bin == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: sbomreplace -bin BINARY SBOM.json")
		os.Exit(2)
	}
	if err := run(*bin, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "sbomreplace:", err)
		os.Exit(1)
	}
}

func run(bin, path string) error {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("reading the build information of %s: %w", bin, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := rewrite(data, info.Deps)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

// rewrite returns the SBOM with each module that deps shows replaced by a
// local directory named as its upstream module and version, with a
// pedigree. Every other field is kept as it was.
func rewrite(sbom []byte, deps []*debug.Module) ([]byte, error) {
	var bom map[string]any
	dec := json.NewDecoder(bytes.NewReader(sbom))
	dec.UseNumber()
	if err := dec.Decode(&bom); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if bom["bomFormat"] != "CycloneDX" {
		return nil, fmt.Errorf("not a CycloneDX SBOM (bomFormat %v)", bom["bomFormat"])
	}
	components, _ := bom["components"].([]any)
	for _, d := range deps {
		if d.Replace == nil || !isLocal(d.Replace.Path) {
			continue
		}
		found := false
		for _, c := range components {
			c, ok := c.(map[string]any)
			if !ok || c["name"] != d.Replace.Path {
				continue
			}
			found = true
			purl, _ := c["purl"].(string)
			_, qualifiers, _ := strings.Cut(purl, "?")
			c["name"] = d.Path
			c["version"] = d.Version
			c["purl"] = "pkg:golang/" + d.Path + "@" + d.Version
			if qualifiers != "" {
				c["purl"] = c["purl"].(string) + "?" + qualifiers
			}
			c["pedigree"] = map[string]any{
				"ancestors": []any{map[string]any{
					"type":    "library",
					"name":    d.Path,
					"version": d.Version,
					"purl":    "pkg:golang/" + d.Path + "@" + d.Version,
				}},
				"patches": []any{map[string]any{"type": "unofficial"}},
				"notes": fmt.Sprintf("Built from the copy of %s %s in %s, with this project's patches (its README.md says which and why).",
					d.Path, d.Version, strings.TrimPrefix(d.Replace.Path, "./")),
			}
		}
		if !found {
			return nil, fmt.Errorf("no component %s, the local copy of %s %s the binary was built with", d.Replace.Path, d.Path, d.Version)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(bom); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// isLocal reports whether a replacement is a directory rather than a
// module version.
func isLocal(path string) bool {
	return strings.HasPrefix(path, "./") || strings.HasPrefix(path, "../") || strings.HasPrefix(path, "/")
}
