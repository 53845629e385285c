package cli

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/humanize"
)

// newPolicy is `porthole fleets policy show|set FLEET`.
func newPolicy(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Show or set a fleet's policy: ports, consent floor, session limits, four-eyes",
		Long: `A fleet's policy is what its owners decide for every session on its devices.
It only narrows what the server and each device's owner allow:

  ports          the only device ports a session may forward to; a device
                 still grants only those its owner's allow_ports lists too
  consent floor  approve or manual: a device asks for the stricter of its
                 owner's consent mode and the floor (auto < approve < manual)
  max session    sessions last at most this (the server's limit still holds)
  idle timeout   sessions end after this long without input
  four-eyes      a second engineer of the fleet, an operator or owner other
                 than the one who asks, must approve each session
                 (porthole requests approve ID) before its device is asked
  reauth         a session opens only with a login that entered its
                 authenticator code within this window (porthole asks for
                 a fresh code, or run porthole reauth)

Every member reads it; its owners (and administrators) set it. Each change
and each decision it makes is in the audit log with the rule that made it.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newPolicyShow(a), newPolicySet(a))
	return cmd
}

func newPolicyShow(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "show FLEET",
		Short:   "Show a fleet's policy and who may change it",
		Example: "  porthole fleets policy show acme\n  porthole fleets policy show acme --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			p, err := c.FleetPolicy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.io.Out, p)
			}
			return printPolicy(a.io.Out, p)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the policy as a JSON object")
	return cmd
}

// policyFlags are the rules `policy set` changes: only those given.
type policyFlags struct {
	ports, floor, maxSession, idle, fourEyes, reauth string
}

func newPolicySet(a *app) *cobra.Command {
	var (
		f      policyFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "set FLEET [--ports LIST|any|none] [--consent-floor none|approve|manual] [--max-session DURATION|none] [--idle-timeout DURATION|none] [--four-eyes on|off] [--reauth DURATION|none]",
		Short: "Change a fleet's policy (its owners): only the rules given change",
		Long: `Change the rules given and keep the others. The change is made over the
policy as it was read: if another owner changed it meanwhile, nothing is
written and porthole says so. The policy as set is printed (--json: as a JSON
object on standard output).`,
		Example: `  porthole fleets policy set acme --ports 22,8080
  porthole fleets policy set acme --consent-floor approve --four-eyes on
  porthole fleets policy set acme --max-session 1h --idle-timeout 10m
  porthole fleets policy set acme --reauth 15m
  porthole fleets policy set acme --ports any --consent-floor none --four-eyes off`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			changed := func(name string) bool { return cmd.Flags().Changed(name) }
			if !slices.ContainsFunc([]string{"ports", "consent-floor", "max-session", "idle-timeout", "four-eyes", "reauth"}, changed) {
				return fmt.Errorf("say what to change: --ports, --consent-floor, --max-session, --idle-timeout, --four-eyes or --reauth")
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			cur, err := c.FleetPolicy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			req, err := f.apply(cur, changed)
			if err != nil {
				return err
			}
			p, err := c.SetFleetPolicy(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.io.Out, p)
			}
			fmt.Fprintf(a.io.Err, "set the policy of fleet %s (version %d):\n", p.Fleet, p.Version)
			return printPolicy(a.io.Err, p)
		},
	}
	cmd.Flags().StringVar(&f.ports, "ports", "", "the only device ports sessions may forward to: a list such as 22,8080, none (a shell and file copies only) or any (the owners' allow_ports alone decide)")
	cmd.Flags().StringVar(&f.floor, "consent-floor", "", "none, approve or manual: the least consent a device asks for (its owner's stricter mode still wins)")
	cmd.Flags().StringVar(&f.maxSession, "max-session", "", "the longest a session lasts, such as 1h, or none for the server's limit")
	cmd.Flags().StringVar(&f.idle, "idle-timeout", "", "how long a session may go without input, such as 10m, or none for the server's limit")
	cmd.Flags().StringVar(&f.fourEyes, "four-eyes", "", "on: a second engineer of the fleet must approve each session; off: not")
	cmd.Flags().StringVar(&f.reauth, "reauth", "", "a session needs the engineer's authenticator code entered within this window, such as 15m (1m to 24h), or none")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the policy as set as a JSON object")
	return cmd
}

// apply makes the request that changes cur's rules named by the flags
// given, over cur's version.
func (f policyFlags) apply(cur *apitype.FleetPolicy, changed func(string) bool) (apitype.SetFleetPolicyRequest, error) {
	req := apitype.SetFleetPolicyRequest{Ports: cur.Ports, ConsentFloor: cur.ConsentFloor, MaxDurationS: cur.MaxDurationS,
		IdleTimeoutS: cur.IdleTimeoutS, FourEyes: cur.FourEyes, ReauthS: cur.ReauthS, Version: &cur.Version}
	if changed("ports") {
		ports, err := parsePolicyPorts(f.ports)
		if err != nil {
			return req, err
		}
		req.Ports = ports
	}
	if changed("consent-floor") {
		switch v := strings.ToLower(f.floor); v {
		case "none", "":
			req.ConsentFloor = ""
		case apitype.FloorApprove, apitype.FloorManual:
			req.ConsentFloor = v
		case "auto":
			return req, fmt.Errorf("--consent-floor auto asks nothing of a device (auto is the least consent): use none, approve or manual")
		default:
			return req, fmt.Errorf("--consent-floor %q: use none, approve or manual", f.floor)
		}
	}
	for _, d := range []struct {
		flag, value string
		to          *int
	}{{"max-session", f.maxSession, &req.MaxDurationS}, {"idle-timeout", f.idle, &req.IdleTimeoutS}, {"reauth", f.reauth, &req.ReauthS}} {
		if !changed(d.flag) {
			continue
		}
		if v := strings.ToLower(d.value); v == "none" || v == "0" {
			*d.to = 0
			continue
		}
		var v durationFlag
		if err := v.Set(d.value); err != nil {
			return req, fmt.Errorf("--%s: %w, or none", d.flag, err)
		}
		if time.Duration(v) < time.Second {
			return req, fmt.Errorf("--%s %s is under a second", d.flag, d.value)
		}
		if d.flag == "reauth" && (time.Duration(v) < time.Minute || time.Duration(v) > 24*time.Hour) {
			return req, fmt.Errorf("--reauth %s: give a window from 1m to 24h, or none", d.value)
		}
		*d.to = int(time.Duration(v) / time.Second)
	}
	if changed("four-eyes") {
		switch strings.ToLower(f.fourEyes) {
		case "on", "true", "yes":
			req.FourEyes = true
		case "off", "false", "no":
			req.FourEyes = false
		default:
			return req, fmt.Errorf("--four-eyes %q: use on or off", f.fourEyes)
		}
	}
	return req, nil
}

// parsePolicyPorts reads --ports: "any" (nil: the fleet names none),
// "none" (an empty list) or a comma-separated list of ports.
func parsePolicyPorts(s string) (*[]int, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "any", "":
		return nil, nil
	case "none":
		return &[]int{}, nil
	}
	var ports []int
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("--ports %q: %q is not a port (1-65535); give a list such as 22,8080, none or any", s, f)
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	slices.Sort(ports)
	return &ports, nil
}

// printPolicy writes p for people.
func printPolicy(w io.Writer, p *apitype.FleetPolicy) error {
	if p.Version == 0 {
		fmt.Fprintf(w, "fleet %s has no policy set: the server's limits and each device's owner decide\n", p.Fleet)
	} else {
		fmt.Fprintf(w, "fleet %s, policy version %d, set by %s at %s\n", p.Fleet, p.Version, safe(p.UpdatedBy), formatTime(p.UpdatedAt))
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	ports := "any the device's owner allows"
	if p.Ports != nil {
		ports = "none: a shell and file copies only"
		if len(*p.Ports) > 0 {
			s := make([]string, len(*p.Ports))
			for i, port := range *p.Ports {
				s[i] = strconv.Itoa(port)
			}
			ports = strings.Join(s, ", ") + " (only those the device's owner allows too)"
		}
	}
	floor := "none: each device's owner decides"
	switch p.ConsentFloor {
	case apitype.FloorApprove:
		floor = "approve: a device whose owner chose auto asks them to approve each session"
	case apitype.FloorManual:
		floor = "manual: every device needs its owner's support window and code"
	}
	limit := func(fleet, server int) string {
		s := "the server's: " + humanize.Duration(time.Duration(server)*time.Second)
		if fleet > 0 && fleet < server {
			s = humanize.Duration(time.Duration(fleet)*time.Second) + " (the server's: " + humanize.Duration(time.Duration(server)*time.Second) + ")"
		}
		return s
	}
	fourEyes := "off"
	if p.FourEyes {
		fourEyes = "on: a second operator or owner of the fleet approves each session (porthole requests approve ID)"
	}
	reauth := "off"
	if p.ReauthS > 0 {
		reauth = "a session needs the engineer's authenticator code within the last " + humanize.Duration(time.Duration(p.ReauthS)*time.Second) + " (porthole reauth)"
	}
	owners := "none (an administrator sets it)"
	if len(p.Owners) > 0 {
		owners = strings.Join(p.Owners, ", ") + " (they change it: porthole fleets policy set " + p.Fleet + " ...)"
	}
	for _, row := range [][2]string{
		{"ports", ports},
		{"consent floor", floor},
		{"max session", limit(p.MaxDurationS, p.ServerMaxDurationS)},
		{"idle timeout", limit(p.IdleTimeoutS, p.ServerIdleTimeoutS)},
		{"four-eyes", fourEyes},
		{"reauth", reauth},
		{"owners", owners},
	} {
		fmt.Fprintf(tw, "  %s\t%s\n", row[0], safe(row[1]))
	}
	return tw.Flush()
}
