package api

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/porthole/porthole/store"
)

var (
	nameRE     = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
	labelKeyRE = regexp.MustCompile(`^[a-z0-9._/-]{1,63}$`)
)

// Label limits, so a device's labels stay a short list of tags.
const (
	maxLabels        = 64
	maxLabelValueLen = 255
	maxEmailLen      = 254
)

// checkName checks a fleet or device name; what says which ("fleet name").
func checkName(what, name string) error {
	if name == "" {
		return badRequest("%s is required", what)
	}
	if !nameRE.MatchString(name) {
		return badRequest("%s %q is not allowed: use 1 to 63 lower-case letters, digits and hyphens", what, name)
	}
	return nil
}

// normalizeEmail lower-cases and trims an email address and checks it is a
// bare address (no display name).
func normalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" {
		return "", badRequest("email is required")
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" || len(e) > maxEmailLen {
		return "", badRequest("%q is not an email address like someone@example.com", email)
	}
	return e, nil
}

// parseRole checks a fleet role given in a request.
func parseRole(role string) (store.Role, error) {
	r := store.Role(role)
	if role == "" {
		return "", badRequest("role is required: owner, operator or auditor")
	}
	if !r.Valid() {
		return "", badRequest("role %q is not one of owner, operator or auditor", role)
	}
	return r, nil
}

// checkLabels checks a device's labels: short keys of a small alphabet,
// printable values, not too many.
func checkLabels(labels map[string]string) error {
	if labels == nil {
		return badRequest("labels is required; send {} to remove every label")
	}
	if len(labels) > maxLabels {
		return badRequest("a device may have at most %d labels; this request has %d", maxLabels, len(labels))
	}
	for k, v := range labels {
		if !labelKeyRE.MatchString(k) {
			return badRequest("label key %q is not allowed: use 1 to 63 of a-z 0-9 . _ / -", k)
		}
		if len(v) > maxLabelValueLen {
			return badRequest("the value of label %q is %d bytes; at most %d are allowed", k, len(v), maxLabelValueLen)
		}
		if !printable(v) {
			return badRequest("the value of label %q has control or invalid characters; use printable text", k)
		}
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
