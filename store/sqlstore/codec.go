package sqlstore

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The schema's portable encodings: times are BIGINT unix milliseconds UTC
// with 0 for the zero time, booleans INTEGER 0/1, labels a JSON object in
// TEXT. Writes convert with millis, boolInt and labelsJSON; reads scan
// through the Scanner types below.

// millis is t in unix milliseconds; the zero time is 0.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// normalTime is t as it reads back from the database: UTC, to the
// millisecond.
func normalTime(t time.Time) time.Time {
	return fromMillis(millis(t))
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// unixMillis scans a BIGINT of unix milliseconds into a time.Time.
type unixMillis time.Time

func (t *unixMillis) Scan(src any) error {
	ms, ok := src.(int64)
	if !ok {
		return fmt.Errorf("time column holds %T; want int64", src)
	}
	*t = unixMillis(fromMillis(ms))
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// intBool scans an INTEGER 0/1 into a bool.
type intBool bool

func (b *intBool) Scan(src any) error {
	n, ok := src.(int64)
	if !ok || (n != 0 && n != 1) {
		return fmt.Errorf("boolean column holds %T %v; want 0 or 1", src, src)
	}
	*b = n == 1
	return nil
}

// labelsJSON encodes labels as a JSON object; nil is "{}".
func labelsJSON(labels map[string]string) string {
	if labels == nil {
		return "{}"
	}
	b, err := json.Marshal(labels)
	if err != nil {
		panic(err) // a map of strings always encodes
	}
	return string(b)
}

// jsonLabels scans a JSON object into labels; no labels is a nil map.
type jsonLabels map[string]string

func (l *jsonLabels) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("labels column holds %T; want text", src)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	if len(m) == 0 {
		m = nil
	}
	*l = m
	return nil
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns prefix + "_" + 16 random base32 characters (80 bits), such
// as "dev_k3m9q2x7p4t8w6za": the prefix says what an ID names when it turns
// up in a log.
func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return prefix + "_" + strings.ToLower(idEncoding.EncodeToString(b))
}

// orNewID returns id, or a new one with prefix when id is empty.
func orNewID(id, prefix string) string {
	if id != "" {
		return id
	}
	return newID(prefix)
}

// orNow returns t, or now when t is zero.
func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

// nullIfEmpty stores an empty optional reference as NULL, which a foreign
// key accepts.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// emptyNull scans a nullable TEXT, NULL as "".
type emptyNull string

func (s *emptyNull) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s = ""
	case string:
		*s = emptyNull(v)
	case []byte:
		*s = emptyNull(v)
	default:
		return fmt.Errorf("text column holds %T", src)
	}
	return nil
}
