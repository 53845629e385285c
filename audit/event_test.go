package audit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// golden is an event whose encoding and hash are frozen below.
func golden() Event {
	return Event{Seq: 7, Time: time.Date(2026, 11, 22, 10, 30, 0, 123_456_789, time.UTC), Kind: SessionClosed,
		Actor: User("usr_1", "ann@example.com"), FleetID: "flt_1", Fleet: "acme", DeviceID: "dev_1", Device: "dev1", Session: "ses_1",
		Detail: map[string]string{"reason": "idle_timeout", "by": "ü"}, PrevHash: Genesis}
}

// TestCanonicalGolden freezes the encoding: every stored chain depends on
// it, so a change here must be a new tag, never an edit. (The hash was
// checked with sha256sum of the same bytes.)
func TestCanonicalGolden(t *testing.T) {
	e := golden()
	const want = "17:porthole-audit-v1,1:7,13:1795343400123,14:session_closed,4:user,5:usr_1,15:ann@example.com," +
		"5:flt_1,4:acme,5:dev_1,4:dev1,5:ses_1,1:2,2:by,2:ü,6:reason,12:idle_timeout," +
		"64:0000000000000000000000000000000000000000000000000000000000000000,"
	if got := string(e.Canonical()); got != want {
		t.Errorf("Canonical =\n%s\nwant\n%s", got, want)
	}
	if got := e.ComputeHash(); got != "b2bef05ed726b645e6b0f91127cd6bb36ea82a17eba83542bb5f01f675b2a763" {
		t.Errorf("ComputeHash = %s", got)
	}
	// The same time in another zone, and sub-millisecond noise, hash alike.
	e.Time = e.Time.In(time.FixedZone("CET", 3600)).Add(400 * time.Microsecond)
	if got := e.ComputeHash(); got != "b2bef05ed726b645e6b0f91127cd6bb36ea82a17eba83542bb5f01f675b2a763" {
		t.Errorf("ComputeHash in another zone = %s", got)
	}
}

// TestCanonicalCoversEveryField: changing any one field, or moving bytes
// between two, changes the hash.
func TestCanonicalCoversEveryField(t *testing.T) {
	base := golden()
	h := base.ComputeHash()
	for _, tt := range []struct {
		name string
		edit func(*Event)
	}{
		{"seq", func(e *Event) { e.Seq++ }},
		{"time", func(e *Event) { e.Time = e.Time.Add(time.Millisecond) }},
		{"kind", func(e *Event) { e.Kind = SessionActive }},
		{"actor kind", func(e *Event) { e.Actor.Kind = ActorDevice }},
		{"actor id", func(e *Event) { e.Actor.ID = "usr_2" }},
		{"actor name", func(e *Event) { e.Actor.Name = "bob@example.com" }},
		{"fleet id", func(e *Event) { e.FleetID = "flt_2" }},
		{"fleet", func(e *Event) { e.Fleet = "beta" }},
		{"device id", func(e *Event) { e.DeviceID = "dev_2" }},
		{"device", func(e *Event) { e.Device = "dev2" }},
		{"session", func(e *Event) { e.Session = "ses_2" }},
		{"detail value", func(e *Event) { e.Detail = map[string]string{"reason": "max_duration", "by": "ü"} }},
		{"detail key", func(e *Event) { e.Detail = map[string]string{"why": "idle_timeout", "by": "ü"} }},
		{"detail entry added", func(e *Event) { e.Detail = map[string]string{"reason": "idle_timeout", "by": "ü", "x": "y"} }},
		{"prev hash", func(e *Event) { e.PrevHash = strings.Repeat("1", 64) }},
		{"bytes moved between fields", func(e *Event) { e.Fleet, e.DeviceID = "acmed", "ev_1" }},
		{"bytes moved between key and value", func(e *Event) { e.Detail = map[string]string{"reasoni": "dle_timeout", "by": "ü"} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := golden()
			tt.edit(&e)
			if e.ComputeHash() == h {
				t.Errorf("hash unchanged after editing the %s", tt.name)
			}
		})
	}
}

func TestSeal(t *testing.T) {
	e := golden()
	e.Seal(Head{Seq: 41, Hash: strings.Repeat("a", 64)})
	if e.Seq != 42 || e.PrevHash != strings.Repeat("a", 64) || e.Hash != e.ComputeHash() {
		t.Errorf("sealed: seq %d prev %s hash %s", e.Seq, e.PrevHash, e.Hash)
	}
}

func TestValidate(t *testing.T) {
	many := map[string]string{}
	for i := range MaxDetailEntries + 1 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	for _, tt := range []struct {
		name string
		e    Event
		ok   bool
	}{
		{"fine", Event{Kind: LoginFailed, Actor: Anonymous("x@example.com")}, true},
		{"new kind", Event{Kind: "recording_uploaded", Actor: System}, true},
		{"no kind", Event{Actor: System}, false},
		{"kind with a capital", Event{Kind: "Login", Actor: System}, false},
		{"kind with a space", Event{Kind: "log in", Actor: System}, false},
		{"kind starting with a digit", Event{Kind: "1login", Actor: System}, false},
		{"kind too long", Event{Kind: Kind(strings.Repeat("a", 65)), Actor: System}, false},
		{"no actor", Event{Kind: LoginFailed}, false},
		{"empty detail key", Event{Kind: LoginFailed, Actor: System, Detail: map[string]string{"": "x"}}, false},
		{"too many details", Event{Kind: LoginFailed, Actor: System, Detail: many}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate = %v; want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

// TestNormalize: long values are cut at a character boundary, empty ones
// dropped, and the caller's map is left alone.
func TestNormalize(t *testing.T) {
	long := strings.Repeat("ü", MaxDetailValue) // 2 bytes each
	detail := map[string]string{"why": long, "empty": "", "ok": "fine"}
	e := Event{Kind: RelayRefused, Actor: Anonymous(strings.Repeat("x", 1000)), Detail: detail}
	e.Normalize()
	if got := e.Detail["why"]; len(got) > MaxDetailValue || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("cut value: %d bytes, valid UTF-8 %v, %q…", len(got), utf8.ValidString(got), got[len(got)-8:])
	}
	if _, ok := e.Detail["empty"]; ok || e.Detail["ok"] != "fine" {
		t.Errorf("detail after Normalize: %v", e.Detail)
	}
	if len(e.Actor.Name) > 512 {
		t.Errorf("actor name is %d bytes after Normalize", len(e.Actor.Name))
	}
	if detail["why"] != long || len(detail) != 3 {
		t.Error("Normalize changed the caller's map")
	}
	e = Event{Kind: RelayRefused, Actor: System, Detail: map[string]string{"a": ""}}
	e.Normalize()
	if e.Detail != nil {
		t.Errorf("detail of empty values: %v; want nil", e.Detail)
	}
}

func TestParseHead(t *testing.T) {
	h := Head{Seq: 12, Hash: strings.Repeat("ab", 32)}
	got, err := ParseHead(" " + h.String() + "\n")
	if err != nil || got != h {
		t.Errorf("ParseHead(%q) = %v, %v", h.String(), got, err)
	}
	for _, bad := range []string{"", "12", "x:" + h.Hash, "0:" + h.Hash, "12:" + h.Hash[1:], "12:" + strings.ToUpper(h.Hash)} {
		if _, err := ParseHead(bad); err == nil {
			t.Errorf("ParseHead(%q) accepted", bad)
		}
	}
}

func TestActorFrom(t *testing.T) {
	ctx := context.Background()
	if got := ActorFrom(ctx); got != System {
		t.Errorf("ActorFrom(empty) = %v; want System", got)
	}
	ann := User("usr_1", "ann@example.com")
	if got := ActorFrom(WithActor(ctx, ann)); got != ann {
		t.Errorf("ActorFrom = %v; want %v", got, ann)
	}
	if got := Device("dev_1", "acme", "dev1").String(); got != "dev1.acme" {
		t.Errorf("device actor = %q", got)
	}
}
