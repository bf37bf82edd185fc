package sqldialect_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/testdb"
)

// ErrNo, ErrNoExtended and Error have the shape of the error types of
// github.com/mattn/go-sqlite3, which the module does not depend on.
type (
	ErrNo         int
	ErrNoExtended int
	Error         struct {
		Code         ErrNo
		ExtendedCode ErrNoExtended
		err          string
	}
)

func (e Error) Error() string { return e.err }

// otherError has the fields of Error under another name.
type otherError struct {
	Code         ErrNo
	ExtendedCode ErrNoExtended
}

func (e otherError) Error() string { return "other" }

func TestMattnErrorClassification(t *testing.T) {
	d, err := sqldialect.ForDriver("sqlite3")
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ lock, unique, serial bool }
	for _, tc := range []struct {
		err  error
		want want
	}{
		{Error{Code: 5, ExtendedCode: 5, err: "database is locked"}, want{lock: true, serial: true}},
		{Error{Code: 5, ExtendedCode: 517}, want{lock: true, serial: true}}, // SQLITE_BUSY_SNAPSHOT
		{&Error{Code: 6, ExtendedCode: 6}, want{lock: true}},
		{Error{Code: 19, ExtendedCode: 2067}, want{unique: true}},
		{&Error{Code: 19, ExtendedCode: 1555}, want{unique: true}},
		{Error{Code: 19, ExtendedCode: 1299}, want{}}, // NOT NULL
		{(*Error)(nil), want{}},
		{errors.Join(errors.New("rollback failed"), Error{Code: 19, ExtendedCode: 2067}), want{unique: true}},
		{errors.New("plain"), want{}},
		{otherError{Code: 19, ExtendedCode: 2067}, want{}},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("wrapped: %w", tc.err)} {
			got := want{d.IsLockTimeout(err), d.IsUniqueViolation(err), d.IsSerializationFailure(err)}
			if got != tc.want {
				t.Errorf("%#v: (lock, unique, serialization) = %+v, want %+v", err, got, tc.want)
			}
		}
	}
}

var registerSQLite3 sync.Once

// TestModerncRegisteredAsSQLite3 opens modernc.org/sqlite under the driver
// name of github.com/mattn/go-sqlite3, as programs do that switched from
// one to the other, and checks that it is SQLite, with its errors
// classified.
func TestModerncRegisteredAsSQLite3(t *testing.T) {
	registerSQLite3.Do(func() { sql.Register("sqlite3", testdb.SQLite(t).Driver()) })
	db, err := sqlx.Open("sqlite3", filepath.Join(t.TempDir(), "app.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := sqldialect.For(db)
	if err != nil || d.Name() != sqldialect.SQLite {
		t.Fatalf("For(sqlite3) = %v, %v", d, err)
	}
	exec(t, db, "CREATE TABLE t (k "+d.TypeKeyText()+" PRIMARY KEY)", "INSERT INTO t VALUES ('a')")
	_, err = db.Exec(d.Rebind("INSERT INTO t VALUES (?)"), "a")
	if !d.IsUniqueViolation(err) || d.IsLockTimeout(err) {
		t.Errorf("duplicate key: %v not classified as a unique violation", err)
	}
}
