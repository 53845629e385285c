package version

import (
	"regexp"
	"testing"
)

func TestString(t *testing.T) {
	defer func(v, c string) { Version, Commit = v, c }(Version, Commit)
	Version, Commit = "1.2.0", "6b6784f0c2a1"
	want := regexp.MustCompile(`^porthole 1\.2\.0 \(commit 6b6784f0c2a1, go[^,]+, [a-z0-9]+/[a-z0-9]+\)$`)
	if got := String("porthole"); !want.MatchString(got) {
		t.Errorf("String = %q; want it to match %v", got, want)
	}
	// Without -X, the commit is Go's VCS stamp or, without one (tests are
	// built without it), "unknown": never empty.
	Commit = ""
	if got := String("porthole"); !regexp.MustCompile(`\(commit [0-9a-f]{7,}(-dirty)?,|\(commit unknown,`).MatchString(got) {
		t.Errorf("String = %q without Commit; want a commit or \"unknown\"", got)
	}
}
