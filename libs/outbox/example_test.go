package outbox_test

import (
	"context"
	"database/sql"

	"go.uber.org/zap"

	"github.com/comfortech/platform/libs/kafka"
	"github.com/comfortech/platform/libs/outbox"
)

// A use case changes state and enqueues its event in one transaction; the
// relay, started once at boot, delivers it.
func Example() {
	ctx := context.Background()
	var (
		db       *sql.DB         // the service's database, opened in main
		producer *kafka.Producer // from kafka.NewProducer
	)
	if db == nil {
		return // illustration only
	}
	if err := outbox.Migrate(ctx, db, outbox.Postgres); err != nil {
		panic(err)
	}
	relay, err := outbox.NewRelay(db, producer, outbox.RelayConfig{Dialect: outbox.Postgres}, zap.NewNop(), nil)
	if err != nil {
		panic(err)
	}
	go func() { _ = relay.Run(ctx) }()

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		panic(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET owner_id = $1 WHERE id = $2`, "acc-1", "dev-1"); err != nil {
		panic(err)
	}
	msg := kafka.Message{Topic: "device.lifecycle", Key: []byte("dev-1"), Value: []byte(`{"device_id":"dev-1"}`)}
	if err := outbox.Enqueue(ctx, tx, msg); err != nil {
		panic(err)
	}
	if err := tx.Commit(); err != nil {
		panic(err)
	}
	relay.Notify() // deliver now rather than at the next poll
}
