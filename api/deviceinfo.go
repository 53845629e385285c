package api

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
)

// Bounds of a device's report (apitype.DeviceInfo).
const (
	maxAgentVersion = 64
	maxCapabilities = 32
	maxAllowPorts   = 1024
)

// consentModes are the owner's consent modes an agent may report.
var consentModes = []string{"manual", "approve", "auto"}

// putDeviceInfo is PUT /api/v1/device/info: the calling device's agent
// reports its version and capabilities and its owner's consent mode and
// allow_ports. It is the device's word about itself, authenticated by its
// key and stored for engineers to read and for the session manager to
// refuse up front a command the agent could not take; nothing the server
// grants depends on it, and the device enforces its owner's config
// itself. A report that breaks a bound is refused whole. A change of the
// consent mode (or the first report of one) is in the audit log, for the
// owner's and operators' record.
func (s *Server) putDeviceInfo(c *call, req *apitype.DeviceInfo) (apitype.Device, error) {
	info, err := checkDeviceInfo(req)
	if err != nil {
		return apitype.Device{}, err
	}
	info.ReportedAt = s.now()
	d := c.dev
	ctx := c.ctx
	if old := d.Agent.Consent; old != info.Consent {
		ctx = c.withAudit(audit.Event{Kind: audit.ConsentReported, FleetID: d.FleetID, Fleet: d.FleetName, DeviceID: d.ID, Device: d.Name,
			Detail: map[string]string{"old": cmp.Or(old, "none reported"), "new": info.Consent, "agent": info.Version}}).ctx
	}
	if err := s.store.SetDeviceAgent(ctx, d.ID, info); err != nil {
		return apitype.Device{}, fmt.Errorf("recording what device %s reported: %w", d.ID, err)
	}
	if !slices.Equal(d.Agent.Capabilities, info.Capabilities) || d.Agent.Version != info.Version || d.Agent.Consent != info.Consent {
		s.logger.Info("device agent reported", "request_id", requestID(c.ctx), "fleet", d.FleetName, "device", d.Name,
			"version", info.Version, "capabilities", strings.Join(info.Capabilities, ","), "consent", info.Consent)
	}
	d.Agent = info
	return apiDevice(d), nil
}

// checkDeviceInfo checks a report against its bounds and returns it as
// the store keeps it: the ports sorted.
func checkDeviceInfo(req *apitype.DeviceInfo) (store.AgentInfo, error) {
	v := req.Version
	if v == "" || len(v) > maxAgentVersion || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) >= 0 {
		return store.AgentInfo{}, badRequest("version must be 1 to %d printable characters without spaces", maxAgentVersion)
	}
	if req.Capabilities == nil {
		return store.AgentInfo{}, badRequest("capabilities is missing; send [] for none")
	}
	if len(req.Capabilities) > maxCapabilities {
		return store.AgentInfo{}, badRequest("capabilities lists %d names; at most %d", len(req.Capabilities), maxCapabilities)
	}
	for i, name := range req.Capabilities {
		if !control.ValidName(name) {
			return store.AgentInfo{}, badRequest("capability %q is not a name of a-z, 0-9 and '-'", name)
		}
		if slices.Contains(req.Capabilities[:i], name) {
			return store.AgentInfo{}, badRequest("capability %q is listed twice", name)
		}
	}
	if !slices.Contains(consentModes, req.Consent) {
		return store.AgentInfo{}, badRequest("consent must be manual, approve or auto, not %q", req.Consent)
	}
	if req.AllowPorts == nil {
		return store.AgentInfo{}, badRequest("allow_ports is missing; send [] for none")
	}
	if len(req.AllowPorts) > maxAllowPorts {
		return store.AgentInfo{}, badRequest("allow_ports lists %d ports; at most %d", len(req.AllowPorts), maxAllowPorts)
	}
	ports := slices.Clone(req.AllowPorts)
	slices.Sort(ports)
	for i, p := range ports {
		if p < 1 || p > 65535 {
			return store.AgentInfo{}, badRequest("allow_ports: %d is not a port (1-65535)", p)
		}
		if i > 0 && ports[i-1] == p {
			return store.AgentInfo{}, badRequest("allow_ports: %d is listed twice", p)
		}
	}
	return store.AgentInfo{Version: v, Capabilities: slices.Clone(req.Capabilities), Consent: req.Consent, AllowPorts: ports}, nil
}
