package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
)

// hostSuffix ends the host names stock OpenSSH reaches devices by, through
// `porthole ssh-config`: dev1.porthole, dev1.acme.porthole.
const hostSuffix = ".porthole"

// deviceRef is a device as the user named it: always a name, and a fleet
// when the user said which.
type deviceRef struct {
	name  string
	fleet string // "" when any of the user's fleets will do
}

func (r deviceRef) String() string {
	if r.fleet == "" {
		return r.name
	}
	return r.name + "." + r.fleet
}

// parseDeviceRef reads DEVICE as the data-path commands take it: "dev1",
// "dev1.acme" or "acme/dev1", with fleet (the --fleet flag) as another way
// to name the fleet. Names cannot hold dots or slashes, so every form reads
// one way only.
func parseDeviceRef(arg, fleet string) (deviceRef, error) {
	var r deviceRef
	switch {
	case strings.Contains(arg, "/"):
		r.fleet, r.name, _ = strings.Cut(arg, "/")
	case strings.Contains(arg, "."):
		r.name, r.fleet, _ = strings.Cut(arg, ".")
	default:
		r.name = arg
	}
	if !control.ValidName(r.name) || (r.fleet != "" || strings.ContainsAny(arg, "./")) && !control.ValidName(r.fleet) {
		return deviceRef{}, fmt.Errorf("%q is not a device: name it DEVICE, DEVICE.FLEET or FLEET/DEVICE "+
			"(names are lower-case letters, digits and dashes)", arg)
	}
	switch {
	case fleet == "":
	case r.fleet == "":
		if !control.ValidName(fleet) {
			return deviceRef{}, fmt.Errorf("%q is not a fleet name (lower-case letters, digits and dashes)", fleet)
		}
		r.fleet = fleet
	case r.fleet != fleet:
		return deviceRef{}, fmt.Errorf("%s names fleet %s, but --fleet says %s", arg, r.fleet, fleet)
	}
	return r, nil
}

// parseHostRef reads the host name OpenSSH hands `porthole proxy` (%n, as
// the user typed it): "dev1.porthole" or "dev1.acme.porthole". Host names
// are not case-sensitive, so it is lower-cased; the forms without the
// suffix are taken too, so the command can be tried by hand.
func parseHostRef(host string) (deviceRef, error) {
	h := strings.TrimSuffix(strings.ToLower(host), hostSuffix)
	if strings.Contains(h, "/") {
		return deviceRef{}, fmt.Errorf("%q is not a Porthole host name: use DEVICE.porthole or DEVICE.FLEET.porthole", host)
	}
	r, err := parseDeviceRef(h, "")
	if err != nil {
		return deviceRef{}, fmt.Errorf("%q is not a Porthole host name: use DEVICE.porthole or DEVICE.FLEET.porthole", host)
	}
	return r, nil
}

// resolveDevice finds the one device r names among those the user may
// see. It checks names itself rather than trusting the server's filter:
// a session must never open on another device than the one named.
func resolveDevice(ctx context.Context, c *apiclient.Client, r deviceRef) (apitype.Device, error) {
	all, err := c.Devices(ctx, apiclient.DeviceFilter{Fleet: r.fleet, Name: r.name})
	if err != nil {
		return apitype.Device{}, err
	}
	var found []apitype.Device
	for _, d := range all {
		if d.Name == r.name && (r.fleet == "" || d.Fleet == r.fleet) {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		var fleets, forms []string
		for _, d := range found {
			fleets = append(fleets, d.Fleet)
			forms = append(forms, d.Name+"."+d.Fleet)
		}
		return apitype.Device{}, &userError{msg: fmt.Sprintf("there is a device %s in each of the fleets %s: say which, as %s",
			r.name, strings.Join(fleets, ", "), strings.Join(forms, " or "))}
	case r.fleet != "":
		return apitype.Device{}, &userError{msg: fmt.Sprintf("no device %s in fleet %s (see `porthole devices --fleet %s`)", r.name, r.fleet, r.fleet)}
	default:
		return apitype.Device{}, &userError{msg: fmt.Sprintf("no device %s in your fleets (see `porthole devices`)", r.name)}
	}
}

// deviceFilter turns a list command's --device and --fleet into the fleet
// and device names a list route takes: the server needs the fleet to know
// a device by name, so a device named alone is looked up first.
func deviceFilter(ctx context.Context, c *apiclient.Client, device, fleet string) (string, string, error) {
	if device == "" {
		return fleet, "", nil
	}
	ref, err := parseDeviceRef(device, fleet)
	if err != nil {
		return "", "", err
	}
	if ref.fleet == "" {
		d, err := resolveDevice(ctx, c, ref)
		if err != nil {
			return "", "", err
		}
		ref.fleet = d.Fleet
	}
	return ref.fleet, ref.name, nil
}
