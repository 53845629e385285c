package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/porthole/porthole/store"
)

const deviceQuery = `SELECT d.id, d.fleet_id, f.name, d.name, d.public_key, d.host_cert, d.labels,
		d.enrolled_at, d.last_seen, d.online,
		d.agent_version, d.agent_capabilities, d.agent_consent, d.agent_allow_ports, d.agent_reported_at
	FROM devices d JOIN fleets f ON f.id = d.fleet_id`

func scanDevice(sc scanner) (*store.Device, error) {
	var (
		d           store.Device
		caps, ports string
	)
	if err := sc.Scan(&d.ID, &d.FleetID, &d.FleetName, &d.Name, &d.PublicKey, &d.HostCert, (*jsonLabels)(&d.Labels),
		(*unixMillis)(&d.EnrolledAt), (*unixMillis)(&d.LastSeen), (*intBool)(&d.Online),
		&d.Agent.Version, &caps, &d.Agent.Consent, &ports, (*unixMillis)(&d.Agent.ReportedAt)); err != nil {
		return nil, err
	}
	if d.Agent.Reported() {
		if err := json.Unmarshal([]byte(caps), &d.Agent.Capabilities); err != nil {
			return nil, fmt.Errorf("agent_capabilities: %w", err)
		}
		if err := json.Unmarshal([]byte(ports), &d.Agent.AllowPorts); err != nil {
			return nil, fmt.Errorf("agent_allow_ports: %w", err)
		}
	}
	return &d, nil
}

func insertDevice(ctx context.Context, tx *sql.Tx, d *store.Device) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO devices
		(id, fleet_id, name, public_key, host_cert, labels, enrolled_at, last_seen, online)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		d.ID, d.FleetID, d.Name, d.PublicKey, d.HostCert, labelsJSON(d.Labels),
		millis(d.EnrolledAt), millis(d.LastSeen), boolInt(d.Online))
	return err
}

// GetDevice returns the device with the given ID.
func (s *Store) GetDevice(ctx context.Context, id string) (*store.Device, error) {
	return one(ctx, s, fmt.Sprintf("get device %q", id), scanDevice, deviceQuery+` WHERE d.id = $1`, id)
}

// GetDeviceByName returns the device with the given name in a fleet.
func (s *Store) GetDeviceByName(ctx context.Context, fleetID, name string) (*store.Device, error) {
	return one(ctx, s, fmt.Sprintf("get device %q in fleet %q", name, fleetID), scanDevice,
		deviceQuery+` WHERE d.fleet_id = $1 AND d.name = $2`, fleetID, name)
}

// ListDevices lists the devices f matches, by fleet name and device name.
func (s *Store) ListDevices(ctx context.Context, f store.DeviceFilter) ([]*store.Device, error) {
	if f.FleetIDs != nil && len(f.FleetIDs) == 0 {
		return []*store.Device{}, nil // in no fleet
	}
	var w where
	if f.FleetIDs != nil {
		w.in("d.fleet_id", f.FleetIDs)
	}
	if f.FleetName != "" {
		w.add("f.name = ?", f.FleetName)
	}
	if f.Name != "" {
		w.add("d.name = ?", f.Name)
	}
	query := deviceQuery + w.String()
	return all(ctx, s, "list devices", scanDevice, query+" ORDER BY f.name, d.name", w.args...)
}

// SetDeviceLabels replaces all of a device's labels.
func (s *Store) SetDeviceLabels(ctx context.Context, id string, labels map[string]string) error {
	return s.change(ctx, fmt.Sprintf("set labels of device %q", id),
		`UPDATE devices SET labels = $2 WHERE id = $1`, id, labelsJSON(labels))
}

// SetDeviceAgent replaces what the device's agent reported.
func (s *Store) SetDeviceAgent(ctx context.Context, id string, info store.AgentInfo) error {
	caps, ports := jsonList(info.Capabilities), jsonList(info.AllowPorts)
	return s.change(ctx, fmt.Sprintf("set the agent of device %q", id),
		`UPDATE devices SET agent_version = $2, agent_capabilities = $3, agent_consent = $4, agent_allow_ports = $5,
			agent_reported_at = $6 WHERE id = $1`,
		id, info.Version, caps, info.Consent, ports, millis(info.ReportedAt))
}

// jsonList encodes a list as JSON; nil is "[]".
func jsonList[T any](l []T) string {
	if l == nil {
		return "[]"
	}
	b, err := json.Marshal(l)
	if err != nil {
		panic(err) // strings and ints always encode
	}
	return string(b)
}

// DeleteDevice deletes a device, and announces it (store.Changes).
func (s *Store) DeleteDevice(ctx context.Context, id string) error {
	err := s.audited(ctx, func(tx *sql.Tx) (about, error) {
		var ab about
		err := tx.QueryRowContext(ctx, `SELECT d.name, f.id, f.name FROM devices d JOIN fleets f ON f.id = d.fleet_id WHERE d.id = $1`,
			id).Scan(&ab.device, &ab.fleetID, &ab.fleet)
		if err != nil {
			return about{}, err
		}
		ab.deviceID = id
		if err := execOne(ctx, tx, `DELETE FROM devices WHERE id = $1`, id); err != nil {
			return about{}, err
		}
		return ab, s.announce(ctx, tx, store.Change{Kind: store.DeviceDeleted, Fleet: ab.fleet, Device: ab.device})
	})
	if err != nil {
		return fmt.Errorf("store: delete device %q: %w", id, s.classify(err))
	}
	return nil
}
