package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/porthole/porthole/store"
)

// RememberDeviceNonce records a device's request nonce; see
// store.DeviceNonces. One transaction forgets the device's expired
// nonces, counts the rest and inserts this one; the primary key refuses
// a nonce seen before, whichever node saw it.
func (s *Store) RememberDeviceNonce(ctx context.Context, deviceID, nonce string, forgetAfter, now time.Time, max int) (bool, error) {
	fresh := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_nonces WHERE device_id = $1 AND expires_at < $2`, deviceID, millis(now)); err != nil {
			return err
		}
		var held int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM device_nonces WHERE device_id = $1`, deviceID).Scan(&held); err != nil {
			return err
		}
		if max > 0 && held >= max {
			return fmt.Errorf("%w (%d)", store.ErrNonceQuota, max)
		}
		var err error
		fresh, err = execChanged(ctx, tx, `INSERT INTO device_nonces (device_id, nonce, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (device_id, nonce) DO NOTHING`, deviceID, nonce, millis(forgetAfter))
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNonceQuota) {
			return false, err
		}
		return false, fmt.Errorf("store: remember a request nonce of device %q: %w", deviceID, s.classify(err))
	}
	return fresh, nil
}
