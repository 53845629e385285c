// Package yamlconf decodes Porthole's YAML config files (portholed's and the
// agent's) strictly: an unknown key is an error that names the key and its
// line, so a typo never silently falls back to a default, and every error
// reads on one line in the config's own terms.
package yamlconf

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

var unknownField = regexp.MustCompile(`(?m)line (\d+): field (\S+) not found in type .*$`)

// Decode decodes data into v, refusing keys v has no field for. An empty
// document leaves v as it is.
func Decode(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	// yaml.v3 says "yaml: unmarshal errors:\n  line 3: field foo not found
	// in type agent.Config\n  line 4: ..."; say it once, on one line.
	msg := unknownField.ReplaceAllString(err.Error(), `line $1: unknown key "$2"`)
	msg = strings.TrimPrefix(strings.TrimPrefix(msg, "yaml: "), "unmarshal errors:\n")
	var lines []string
	for line := range strings.Lines(msg) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return errors.New(strings.Join(lines, "; "))
}
