package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/flags"
)

// README: expand-contract

// renamePhone renames customers.customer_phone to phone_number, every
// expand-contract step but the contract, on db, the service's database.
func renamePhone(ctx context.Context, db *sqlx.DB, client flags.Client, instanceID string) error {
	store, err := expandcontract.Open(ctx, db) // creates the metadata tables once
	if err != nil {
		return err
	}
	mig, err := store.Migration("customers-phone")
	if err != nil {
		return err
	}
	if _, err := mig.Ensure(ctx, instanceID); err != nil { // every instance, at start
		return err
	}

	// The flag owner's flag, kept inside what the phase allows.
	bound, err := mig.Bound(5*time.Second, instanceID)
	if err != nil {
		return err
	}
	stage, err := flags.New(client, "customers-phone", flags.WithBound(bound.Clamp))
	if err != nil {
		return err
	}

	// Failed secondary writes and shadow mismatches go to the durable log,
	// which a repairer drains in the background.
	repairs, err := repair.NewLog(mig)
	if err != nil {
		return err
	}
	saves, err := dualwrite.New("customers.save_phone", stage, repairs)
	if err != nil {
		return err
	}
	repairer, err := repair.New(repairs, func(ctx context.Context, r cutover.Repair) error {
		return copyPhone(ctx, db, r.Key) // idempotent: copy the old store's value
	})
	if err != nil {
		return err
	}
	defer repairer.Close()

	// Expand: add the column, then start dual writes.
	if _, err := mig.Move(ctx, expandcontract.Move{
		To: expandcontract.DualWrite, Actor: "alice", Reason: "rename customer_phone",
		SQL: []string{`ALTER TABLE customers ADD COLUMN phone_number VARCHAR(40)`},
	}); err != nil {
		return err
	}
	// Once every instance's bound has read the phase, writes reach both
	// columns, in the order the stage says.
	err = saves.Write(ctx, "42", func(ctx context.Context, side cutover.Side) error {
		column := [2]string{cutover.Old: "customer_phone", cutover.New: "phone_number"}[side]
		_, err := db.ExecContext(ctx, `UPDATE customers SET `+column+` = ? WHERE id = 42`, "+1-555-4242")
		return err
	})
	if err != nil {
		return err
	}
	// Backfill the rows written before dual writes began: resumable, leased,
	// and pausable from any instance with backfill.Pause.
	if _, err := mig.Move(ctx, expandcontract.Move{To: expandcontract.Backfill, Actor: "alice"}); err != nil {
		return err
	}
	runner, err := backfill.New(mig,
		backfill.Keyset{Table: "customers", Column: "id", Kind: expandcontract.IntKeys},
		backfill.SQLBatch(`UPDATE customers SET phone_number = customer_phone WHERE id > :from AND id <= :to`),
		backfill.WithRate(5000))
	if err != nil {
		return err
	}
	if err := runner.Run(ctx); err != nil {
		return err
	}

	// Verify; a clean result newer than the backfill lets reads move.
	verifier, err := verify.New(mig,
		&verify.SQLRows{DB: db, Table: "customers", Key: "id", Value: "customer_phone"},
		&verify.SQLRows{DB: db, Table: "customers", Key: "id", Value: "phone_number"},
		verify.WithRepairLog(repairs))
	if err != nil {
		return err
	}
	res, err := verifier.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("verified %d rows, %d differences\n", res.Rows, res.Differences)
	st, err := mig.Move(ctx, expandcontract.Move{To: expandcontract.SwitchReads, Actor: "alice", Reason: "verified clean"})
	if err != nil {
		return err // a *MoveError wrapping ErrGuard if the verification was not clean
	}
	fmt.Println("phase:", st.Phase)
	return nil
}

// README: end

// copyPhone copies one customer's phone to the new column.
func copyPhone(ctx context.Context, db *sqlx.DB, key string) error {
	_, err := db.ExecContext(ctx, `UPDATE customers SET phone_number = customer_phone WHERE id = ?`, key)
	return err
}
