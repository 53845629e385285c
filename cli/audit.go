package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
)

func newAudit(a *app) *cobra.Command {
	var (
		fleet, device, session, since, anchor string
		limit                                 int
		verify                                bool
	)
	cmd := listing[apitype.AuditEvent]{
		fetch: func(ctx context.Context, c *apiclient.Client) ([]apitype.AuditEvent, error) {
			f, err := auditFilter(ctx, c, fleet, device, session, since, limit, a.now())
			if err != nil {
				return nil, err
			}
			evs, err := c.Audit(ctx, f)
			if err == nil && len(evs) == f.Limit {
				noteTruncated(a.io.Err, f)
			}
			return evs, err
		},
		compare: func(x, y apitype.AuditEvent) int { return int(x.Seq - y.Seq) },
		none:    "no audit events",
		headers: []string{"SEQ", "TIME", "KIND", "ACTOR", "DEVICE", "DETAIL"},
		row:     auditRow,
	}.attach(a, &cobra.Command{
		Use:   "audit [--fleet FLEET] [--device DEVICE] [--session ID] [--since TIME] [--json] | audit --verify [--anchor SEQ:HASH]",
		Short: "Read the server's audit log, or check that nobody has tampered with it",
		Long: `Read the server's audit log: logins (and failed ones), tokens, users and
roles, fleets, enrollments, sessions requested, active and closed with their
reason, requests the relay refused, commands devices rejected, and attempts to
reach into fleets not your own. You see the events of your fleets; an
administrator sees all of them, those of no fleet (logins) included. Without
--since, the latest events are shown, oldest first.

--since takes a time (2026-11-22, "2026-11-22 10:30", RFC 3339) or how long ago
(30m, 12h, 7d).

With --verify (administrators), the server walks the log's hash chain: each
event carries the hash of the one before, so an event edited, inserted or
deleted behind the server's back breaks it. The command prints the chain's
head (SEQ:HASH) when the log is intact, and exits with status 1 naming the
first broken event when it is not. Someone who can write to the database can
still rewrite a whole tail of the log consistently; record the head somewhere
they cannot reach, and give it back later with --anchor to check that the log
still holds it.`,
		Example: "  porthole audit --fleet acme --since 24h\n  porthole audit --device kitchen-amp.acme --json\n" +
			"  porthole audit --verify\n  porthole audit --verify --anchor 1234:9f2c…",
		Args: cobra.NoArgs,
	})
	list := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !verify {
			if anchor != "" {
				return &userError{msg: "--anchor goes with --verify"}
			}
			return list(cmd, args)
		}
		for _, name := range []string{"fleet", "device", "session", "since", "limit"} {
			if cmd.Flags().Changed(name) {
				return &userError{msg: fmt.Sprintf("--verify checks the whole log; it takes no --%s", name)}
			}
		}
		asJSON, _ := cmd.Flags().GetBool("json")
		return a.verifyAudit(cmd.Context(), anchor, asJSON)
	}
	addFleetFlag(a, cmd, &fleet, false)
	cmd.Flags().StringVar(&device, "device", "", "only this device's events (DEVICE or DEVICE.FLEET; a deleted device needs its fleet)")
	cmd.Flags().StringVar(&session, "session", "", "only this session's events (its ID)")
	cmd.Flags().StringVar(&since, "since", "", "events from this time on (2026-11-22, RFC 3339, or 30m, 12h, 7d ago)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many events (up to 1000)")
	cmd.Flags().BoolVar(&verify, "verify", false, "check the log's hash chain instead of listing it (administrators)")
	cmd.Flags().StringVar(&anchor, "anchor", "", "with --verify: a head (SEQ:HASH) printed by an earlier --verify, which the log must still hold")
	return cmd
}

// auditTimeLayout shows seconds: events of one minute are told apart.
const auditTimeLayout = "2006-01-02 15:04:05 MST"

// auditFilter turns the flags into the API's filter.
func auditFilter(ctx context.Context, c *apiclient.Client, fleet, device, session, since string, limit int, now time.Time) (apiclient.AuditFilter, error) {
	f := apiclient.AuditFilter{Fleet: fleet, Session: session, Limit: limit}
	if limit < 1 || limit > 1000 {
		return f, &userError{msg: fmt.Sprintf("--limit %d: want 1 to 1000", limit)}
	}
	if since != "" {
		t, err := parseSince(since, now)
		if err != nil {
			return f, &userError{msg: err.Error()}
		}
		f.Since = t
	}
	if device != "" {
		ref, err := parseDeviceRef(device, fleet)
		if err != nil {
			return f, &userError{msg: err.Error()}
		}
		if ref.fleet == "" {
			// The server needs the fleet; a device that still exists tells it.
			d, err := resolveDevice(ctx, c, ref)
			if err != nil {
				var ue *userError
				if errors.As(err, &ue) {
					return f, &userError{msg: ue.msg + "; a deleted device's events need its fleet: --device " + ref.name + ".FLEET"}
				}
				return f, err
			}
			ref.fleet = d.Fleet
		}
		f.Fleet, f.Device = ref.fleet, ref.name
	}
	return f, nil
}

// parseSince reads --since: a date, a date and time (local), RFC 3339, or
// a duration back from now ("30m", "12h", "7d").
func parseSince(s string, now time.Time) (time.Time, error) {
	var d durationFlag
	if d.Set(s) == nil {
		return now.Add(-time.Duration(d)), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q is neither a time (2026-11-22, \"2026-11-22 10:30\", RFC 3339) nor how long ago (30m, 12h, 7d)", s)
}

// noteTruncated says on errw that more events may match than were shown.
func noteTruncated(errw io.Writer, f apiclient.AuditFilter) {
	if f.Since.IsZero() {
		fmt.Fprintf(errw, "the latest %d events; --since or --limit (up to 1000) shows others\n", f.Limit)
		return
	}
	fmt.Fprintf(errw, "the first %d events from %s; a later --since or a higher --limit (up to 1000) shows more\n",
		f.Limit, f.Since.Local().Format(auditTimeLayout))
}

// safe shows s as it is when every character of it prints, and quoted
// (with escapes) otherwise: names and reasons in the log can come from
// strangers (an SSH user name at the relay), and must not drive the
// terminal.
func safe(s string) string {
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

// auditRow is an event's row in the listing. What the server sends is
// shown safe: it must not drive the terminal.
func auditRow(e apitype.AuditEvent) []string {
	return []string{strconv.FormatInt(e.Seq, 10), e.Time.Local().Format(auditTimeLayout), safe(e.Kind),
		auditActor(e.Actor), auditWhere(e), auditDetail(e)}
}

// auditActor names who acted; an unauthenticated party's own claim is
// marked as such.
func auditActor(a apitype.AuditActor) string {
	name := safe(orDash(a.Name))
	if a.Kind == "anonymous" {
		return name + " (unverified)"
	}
	return name
}

// auditWhere is the device (DEVICE.FLEET) or the fleet the event concerns.
func auditWhere(e apitype.AuditEvent) string {
	switch {
	case e.Device != "" && e.Fleet != "":
		return safe(e.Device + "." + e.Fleet)
	case e.Fleet != "":
		return safe(e.Fleet)
	}
	return safe(orDash(e.Device))
}

// auditDetail is the session and the detail as key=value, sorted, values
// with spaces quoted.
func auditDetail(e apitype.AuditEvent) string {
	var parts []string
	if e.Session != "" {
		parts = append(parts, "session="+safe(e.Session))
	}
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := e.Detail[k]
		if v == "" || strings.ContainsAny(v, " \"=") {
			v = strconv.QuoteToGraphic(v)
		}
		parts = append(parts, safe(k)+"="+safe(v))
	}
	return orDash(strings.Join(parts, " "))
}

// errTampered is wrapped by the error of a verification that found the
// log broken, so that the command exits with status 1.
var errTampered = errors.New("the audit log was tampered with")

// verifyAudit runs --verify: the report on stdout, and an error (exit
// status 1) when the chain is broken.
func (a *app) verifyAudit(ctx context.Context, anchor string, asJSON bool) error {
	c, err := a.connect()
	if err != nil {
		return err
	}
	v, err := c.VerifyAudit(ctx, anchor)
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(a.io.Out, v); err != nil {
			return err
		}
	}
	if v.OK {
		if !asJSON {
			fmt.Fprintf(a.io.Out, "ok: the audit log's hash chain is intact (%d events)\nhead: %s\n", v.Count, v.Head)
			if anchor != "" {
				fmt.Fprintf(a.io.Out, "it still holds the head recorded earlier, %s\n", anchor)
			}
			fmt.Fprintf(a.io.Err, "Record the head where the server's database cannot reach it; later,\n"+
				"`porthole audit --verify --anchor %s` checks that the log still holds it.\n", v.Head)
		}
		return nil
	}
	p := v.Problem
	if p == nil {
		p = &apitype.AuditProblem{Kind: "unknown", Message: "the server says the log is broken but not where"}
	}
	if !asJSON {
		fmt.Fprintf(a.io.Out, "TAMPERED: %s\n", p.Message)
		fmt.Fprintf(a.io.Out, "the chain is sound for the first %d events; it breaks at event %d (%s)\n", v.Count, p.Seq, p.Kind)
	}
	return &userError{msg: fmt.Sprintf("the audit log failed verification at event %d (%s): "+
		"it was changed behind the server's back; keep the database as it is for investigation", p.Seq, p.Kind), err: errTampered}
}
