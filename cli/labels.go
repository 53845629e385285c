package cli

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// labelEdit is what `porthole devices label` asked for, kubectl style:
// "key=value" sets a label, "key-" removes one.
type labelEdit struct {
	set    map[string]string
	remove []string
}

// parseLabelArgs reads the key=value and key- arguments. A key may appear
// once: "a=1 a-" or "a=1 a=2" is a mistake, not a sequence.
func parseLabelArgs(args []string) (labelEdit, error) {
	e := labelEdit{set: map[string]string{}}
	seen := map[string]bool{}
	for _, arg := range args {
		key, value, isSet := strings.Cut(arg, "=")
		if !isSet {
			var isRemove bool
			key, isRemove = strings.CutSuffix(arg, "-")
			if !isRemove {
				return labelEdit{}, fmt.Errorf("%q is neither key=value (set a label) nor key- (remove one)", arg)
			}
		}
		if key == "" {
			return labelEdit{}, fmt.Errorf("%q has no label name before the %q", arg, arg[len(key):len(key)+1])
		}
		if seen[key] {
			return labelEdit{}, fmt.Errorf("label %q is named twice; name each label once", key)
		}
		seen[key] = true
		if isSet {
			e.set[key] = value
		} else {
			e.remove = append(e.remove, key)
		}
	}
	return e, nil
}

// apply returns old with the edit made; old is not changed.
func (e labelEdit) apply(old map[string]string) map[string]string {
	out := maps.Clone(old)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, e.set)
	for _, k := range e.remove {
		delete(out, k)
	}
	return out
}

// formatLabels shows labels as "k=v,k2=v2" sorted by key, or "-" for none.
func formatLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}
