package yamlconf

import "testing"

type conf struct {
	Name  string `yaml:"name"`
	Inner struct {
		Port int `yaml:"port"`
	} `yaml:"inner"`
}

func TestDecode(t *testing.T) {
	for _, tt := range []struct{ yaml, err string }{
		{"name: a\ninner:\n  port: 1\n", ""},
		{"", ""},
		{"# only a comment\n", ""},
		{"name: a\nbogus: 1\n", `line 2: unknown key "bogus"`},
		{"bogus: 1\ninner:\n  prot: 2\n", `line 1: unknown key "bogus"; line 3: unknown key "prot"`},
		{"inner:\n  port: many\n", "line 2: cannot unmarshal !!str `many` into int"},
		{"name: [a\n", "line 1: did not find expected ',' or ']'"},
	} {
		var c conf
		err := Decode([]byte(tt.yaml), &c)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("Decode(%q) = %v", tt.yaml, err)
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("Decode(%q) = %v; want %q", tt.yaml, err, tt.err)
		}
	}
}
