package main

import (
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
)

const sbom = `{
  "bomFormat": "CycloneDX",
  "specVersion": "1.6",
  "components": [
    {"bom-ref": "pkg:golang/./third_party/mochi-server@(devel)?type=module", "type": "library",
     "name": "./third_party/mochi-server", "version": "(devel)",
     "purl": "pkg:golang/./third_party/mochi-server@(devel)?goarch=arm64&goos=linux&type=module"},
    {"bom-ref": "pkg:golang/golang.org/x/net@v0.60.0?type=module", "type": "library",
     "name": "golang.org/x/net", "version": "v0.60.0", "purl": "pkg:golang/golang.org/x/net@v0.60.0?type=module",
     "hashes": [{"alg": "SHA-256", "content": "00"}]}
  ],
  "dependencies": [{"ref": "pkg:golang/./third_party/mochi-server@(devel)?type=module"}]
}`

var deps = []*debug.Module{
	{Path: "github.com/mochi-mqtt/server/v2", Version: "v2.7.9", Replace: &debug.Module{Path: "./third_party/mochi-server", Version: "(devel)"}},
	{Path: "golang.org/x/net", Version: "v0.60.0"},
	// Replaced by another version: the tool names it right already.
	{Path: "example.com/other", Version: "v1.0.0", Replace: &debug.Module{Path: "example.com/fork", Version: "v1.0.1"}},
}

func TestRewrite(t *testing.T) {
	out, err := rewrite([]byte(sbom), deps)
	if err != nil {
		t.Fatal(err)
	}
	var bom struct {
		Components []struct {
			BOMRef   string `json:"bom-ref"`
			Name     string
			Purl     string
			Hashes   []any
			Version  string
			Pedigree *struct {
				Ancestors []struct{ Name, Version, Purl string }
				Patches   []struct{ Type string }
				Notes     string
			}
		}
		Dependencies []struct{ Ref string }
	}
	if err := json.Unmarshal(out, &bom); err != nil {
		t.Fatal(err)
	}
	mochi, net := bom.Components[0], bom.Components[1]
	if mochi.Name != "github.com/mochi-mqtt/server/v2" || mochi.Version != "v2.7.9" ||
		mochi.Purl != "pkg:golang/github.com/mochi-mqtt/server/v2@v2.7.9?goarch=arm64&goos=linux&type=module" {
		t.Errorf("the local copy is now %s %s %s; want the upstream module, version and purl", mochi.Name, mochi.Version, mochi.Purl)
	}
	if p := mochi.Pedigree; p == nil || len(p.Ancestors) != 1 || p.Ancestors[0].Purl != "pkg:golang/github.com/mochi-mqtt/server/v2@v2.7.9" ||
		len(p.Patches) != 1 || p.Patches[0].Type != "unofficial" || !strings.Contains(p.Notes, "third_party/mochi-server") {
		t.Errorf("pedigree = %+v; want upstream as ancestor, our patches, and where they are", p)
	}
	// The bom-ref ties the dependency graph together: unchanged.
	if mochi.BOMRef != bom.Dependencies[0].Ref {
		t.Errorf("bom-ref %s no longer matches the dependency graph's %s", mochi.BOMRef, bom.Dependencies[0].Ref)
	}
	if net.Name != "golang.org/x/net" || net.Pedigree != nil || len(net.Hashes) != 1 {
		t.Errorf("a module that was not replaced changed: %+v", net)
	}

	if _, err := rewrite([]byte(strings.ReplaceAll(sbom, "./third_party/mochi-server", "./elsewhere")), deps); err == nil ||
		!strings.Contains(err.Error(), "no component ./third_party/mochi-server") {
		t.Errorf("an SBOM without the local copy: %v; want an error naming it", err)
	}
	if _, err := rewrite([]byte(`{"bomFormat":"SPDX"}`), deps); err == nil {
		t.Error("a document that is not CycloneDX was accepted")
	}
}
