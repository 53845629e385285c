package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/spf13/cobra"
)

func newDevices(a *app) *cobra.Command {
	var fleet string
	cmd := listing[apitype.Device]{
		fetch: func(ctx context.Context, c *apiclient.Client) ([]apitype.Device, error) {
			return c.Devices(ctx, apiclient.DeviceFilter{Fleet: fleet})
		},
		compare: func(x, y apitype.Device) int {
			if c := strings.Compare(x.Fleet, y.Fleet); c != 0 {
				return c
			}
			return strings.Compare(x.Name, y.Name)
		},
		none:    "no devices (enroll one: porthole enroll-token create --fleet FLEET)",
		headers: []string{"NAME", "FLEET", "STATUS", "LAST SEEN", "AGENT", "CONSENT", "LABELS", "ENROLLED"},
		row: func(d apitype.Device) []string {
			agent, consent := "-", "-"
			if d.Agent != nil {
				agent, consent = d.Agent.Version, d.Agent.Consent
			}
			return []string{d.Name, d.Fleet, deviceStatus(d.Online, d.LastSeen, a.now()),
				formatTime(d.LastSeen), agent, consent, formatLabels(d.Labels), formatTime(d.EnrolledAt)}
		},
	}.attach(a, &cobra.Command{
		Use:     "devices [--fleet FLEET]",
		Aliases: []string{"device"},
		Short:   "List the devices you may reach, whether they are online, and their labels",
		Long: `List the devices of your fleets: STATUS is "online", "offline 3 h" (since
last seen) or "never" (enrolled but never connected). AGENT and CONSENT are
what the device's agent reported as it last started: its version and its
owner's consent mode (manual, approve or auto; its allow_ports are in
--json); "-" for an agent that predates the report. They are the device's
word, for information: the device enforces its owner's config itself.`,
		Args: cobra.NoArgs,
	})
	addFleetFlag(a, cmd, &fleet, false)
	cmd.AddCommand(newDeviceRm(a), newDeviceLabel(a))
	return cmd
}

func newDeviceRm(a *app) *cobra.Command {
	var fleet string
	cmd := &cobra.Command{
		Use:   "rm DEVICE [--fleet FLEET]",
		Short: "Remove a device; it must enroll again to come back",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, d, err := a.findDevice(cmd.Context(), args[0], fleet)
			if err != nil {
				return err
			}
			if err := c.DeleteDevice(cmd.Context(), d.ID); err != nil {
				return err
			}
			fmt.Fprintf(a.io.Err, "removed device %s from fleet %s\n", d.Name, d.Fleet)
			return nil
		},
	}
	addFleetFlag(a, cmd, &fleet, false)
	return cmd
}

func newDeviceLabel(a *app) *cobra.Command {
	var fleet string
	cmd := &cobra.Command{
		Use:   "label DEVICE KEY=VALUE... | KEY-... [--fleet FLEET]",
		Short: "Set (key=value) or remove (key-) a device's labels",
		Long: `Set (key=value) or remove (key-) labels of a device; labels not named stay as
they are. The labels are read, changed and written back whole.`,
		Example: "  porthole devices label kitchen-amp site=berlin floor=2\n  porthole devices label kitchen-amp floor-",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			edit, err := parseLabelArgs(args[1:])
			if err != nil {
				return err
			}
			c, d, err := a.findDevice(cmd.Context(), args[0], fleet)
			if err != nil {
				return err
			}
			labels := edit.apply(d.Labels)
			if err := c.SetLabels(cmd.Context(), d.ID, labels); err != nil {
				return err
			}
			fmt.Fprintf(a.io.Err, "labels of %s in fleet %s: %s\n", d.Name, d.Fleet, formatLabels(labels))
			return nil
		},
	}
	addFleetFlag(a, cmd, &fleet, false)
	return cmd
}

// findDevice connects and finds a device by name, in one fleet or in any
// the user sees. It checks the names itself rather than trusting the
// server's filter: a command that removes "dev1" must never act on another
// device.
func (a *app) findDevice(ctx context.Context, name, fleet string) (*apiclient.Client, apitype.Device, error) {
	c, err := a.connect()
	if err != nil {
		return nil, apitype.Device{}, err
	}
	d, err := pickDevice(ctx, c, name, fleet)
	return c, d, err
}

func pickDevice(ctx context.Context, c *apiclient.Client, name, fleet string) (apitype.Device, error) {
	all, err := c.Devices(ctx, apiclient.DeviceFilter{Fleet: fleet, Name: name})
	if err != nil {
		return apitype.Device{}, err
	}
	var found []apitype.Device
	var fleets []string
	for _, d := range all {
		if d.Name == name && (fleet == "" || d.Fleet == fleet) {
			found = append(found, d)
			fleets = append(fleets, d.Fleet)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return apitype.Device{}, fmt.Errorf("there is a device %s in each of the fleets %s: say which with --fleet", name, strings.Join(fleets, ", "))
	case fleet != "":
		return apitype.Device{}, fmt.Errorf("no device %s in fleet %s (see `porthole devices --fleet %s`)", name, fleet, fleet)
	default:
		return apitype.Device{}, fmt.Errorf("no device %s in your fleets (see `porthole devices`)", name)
	}
}
