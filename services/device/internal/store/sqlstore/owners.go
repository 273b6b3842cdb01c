package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/comfortech/platform/services/device/internal/app"
)

var _ app.OwnerStore = (*Store)(nil)

// SetOwner implements app.OwnerStore.
func (s *Store) SetOwner(ctx context.Context, deviceID, accountID string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO device_owners (device_id, owner_account_id, updated_us) VALUES ($1, $2, $3)
		ON CONFLICT (device_id) DO UPDATE SET owner_account_id = excluded.owner_account_id, updated_us = excluded.updated_us`,
		deviceID, accountID, at.UnixMicro())
	if err != nil {
		return fmt.Errorf("sqlstore: set owner: %w", err)
	}
	return nil
}

// ClearOwner implements app.OwnerStore.
func (s *Store) ClearOwner(ctx context.Context, deviceID, accountID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM device_owners WHERE device_id = $1 AND owner_account_id = $2`,
		deviceID, accountID); err != nil {
		return fmt.Errorf("sqlstore: clear owner: %w", err)
	}
	return nil
}

// Owner implements app.OwnerStore.
func (s *Store) Owner(ctx context.Context, deviceID string) (string, error) {
	var owner string
	err := s.db.QueryRowContext(ctx, `SELECT owner_account_id FROM device_owners WHERE device_id = $1`, deviceID).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sqlstore: owner: %w", err)
	}
	return owner, nil
}
