package cli

import (
	"maps"
	"testing"
)

func TestLabelEdit(t *testing.T) {
	old := map[string]string{"site": "berlin", "floor": "2", "rack": "a"}
	for _, tt := range []struct {
		name    string
		args    []string
		want    map[string]string
		wantErr bool
	}{
		{name: "set new", args: []string{"env=prod"}, want: map[string]string{"site": "berlin", "floor": "2", "rack": "a", "env": "prod"}},
		{name: "overwrite", args: []string{"site=paris"}, want: map[string]string{"site": "paris", "floor": "2", "rack": "a"}},
		{name: "remove", args: []string{"floor-", "rack-"}, want: map[string]string{"site": "berlin"}},
		{name: "remove absent", args: []string{"nope-"}, want: old},
		{name: "empty value", args: []string{"note="}, want: map[string]string{"site": "berlin", "floor": "2", "rack": "a", "note": ""}},
		{name: "value with = and -", args: []string{"cmd=a=b-"}, want: map[string]string{"site": "berlin", "floor": "2", "rack": "a", "cmd": "a=b-"}},
		{name: "bare word", args: []string{"site"}, wantErr: true},
		{name: "no key", args: []string{"=x"}, wantErr: true},
		{name: "lone dash", args: []string{"-"}, wantErr: true},
		{name: "set and remove", args: []string{"site=x", "site-"}, wantErr: true},
		{name: "set twice", args: []string{"a=1", "a=2"}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, err := parseLabelArgs(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseLabelArgs(%q): err = %v; want error %v", tt.args, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			before := maps.Clone(old)
			if got := e.apply(old); !maps.Equal(got, tt.want) {
				t.Errorf("apply = %v; want %v", got, tt.want)
			}
			if !maps.Equal(old, before) {
				t.Errorf("apply changed its input to %v", old)
			}
		})
	}
	if got := (labelEdit{}).apply(nil); got == nil {
		t.Error("apply(nil) = nil; want an empty map, so the server is told 'no labels'")
	}
}

func TestFormatLabels(t *testing.T) {
	if got := formatLabels(map[string]string{"b": "2", "a": "1"}); got != "a=1,b=2" {
		t.Errorf("formatLabels = %q; want a=1,b=2", got)
	}
	if got := formatLabels(nil); got != "-" {
		t.Errorf("formatLabels(nil) = %q; want -", got)
	}
}
