package sqldialect

import (
	"errors"
	"reflect"

	"github.com/go-sql-driver/mysql"
)

// PostgreSQL SQLSTATE codes.
const (
	pgUniqueViolation      = "23505" // unique_violation
	pgSerializationFailure = "40001" // serialization_failure
	pgDeadlockDetected     = "40P01" // deadlock_detected
	pgLockNotAvailable     = "55P03" // lock_not_available: lock_timeout, NOWAIT
	pgDuplicateTable       = "42P07" // duplicate_table: a relation of that name exists
)

// MySQL and MariaDB error numbers.
const (
	myCheckRead            = 1020 // ER_CHECKREAD: MariaDB snapshot isolation write conflict
	myDupEntry             = 1062 // ER_DUP_ENTRY
	myLockWaitTimeout      = 1205 // ER_LOCK_WAIT_TIMEOUT: innodb_lock_wait_timeout, lock_wait_timeout, MariaDB NOWAIT
	myLockDeadlock         = 1213 // ER_LOCK_DEADLOCK
	myDupEntryWithKeyName  = 1586 // ER_DUP_ENTRY_WITH_KEY_NAME
	myLockNowait           = 3572 // ER_LOCK_NOWAIT: MySQL 8 NOWAIT
	myDupKeyName           = 1061 // ER_DUP_KEYNAME: an index of that name exists
	sqliteBusy             = 5    // SQLITE_BUSY and its extended codes
	sqliteLocked           = 6    // SQLITE_LOCKED and its extended codes
	sqliteConstraintPK     = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
	sqliteConstraintUnique = 2067 // SQLITE_CONSTRAINT_UNIQUE
)

// pgState returns the SQLSTATE of the PostgreSQL error in err's chain, or
// "". pgx's *pgconn.PgError and lib/pq's *pq.Error both have the method.
func pgState(err error) string {
	var e interface{ SQLState() string }
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}

// myNumber returns the number of the MySQL error in err's chain, or 0.
func myNumber(err error) uint16 {
	var e *mysql.MySQLError
	if errors.As(err, &e) {
		return e.Number
	}
	return 0
}

// sqliteCode returns the extended result code of the SQLite error in err's
// chain, or 0. The primary code is its low byte. modernc.org/sqlite's
// *sqlite.Error has it as its Code method; github.com/mattn/go-sqlite3's
// sqlite3.Error as its field ExtendedCode (see [mattnCode]).
func sqliteCode(err error) int {
	var e interface{ Code() int }
	if errors.As(err, &e) {
		return e.Code()
	}
	return mattnCode(err)
}

// mattnCode returns the field ExtendedCode of the first error in err's
// chain that has the shape of github.com/mattn/go-sqlite3's sqlite3.Error,
// a struct (or a pointer to one) named Error with the integer fields Code
// and ExtendedCode, or 0 if there is none. The fields are read by
// reflection, so that this package links no SQLite driver: the error has
// no method that gives them, and errors.As needs the type.
func mattnCode(err error) int {
	for err != nil {
		rv := reflect.ValueOf(err)
		if rv.Kind() == reflect.Pointer && !rv.IsNil() {
			rv = rv.Elem()
		}
		if t := rv.Type(); rv.Kind() == reflect.Struct && t.Name() == "Error" {
			code, okCode := t.FieldByName("Code")
			ext, okExt := t.FieldByName("ExtendedCode")
			if okCode && okExt && isInt(code.Type) && isInt(ext.Type) {
				return int(rv.FieldByIndex(ext.Index).Int())
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if c := mattnCode(e); c != 0 {
					return c
				}
			}
			return 0
		default:
			return 0
		}
	}
	return 0
}

// isInt reports whether t is a signed integer type.
func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return true
	}
	return false
}

// IsLockTimeout reports whether err, or an error it wraps, says a statement
// gave up waiting for a lock: on PostgreSQL SQLSTATE 55P03
// (lock_not_available, from lock_timeout or NOWAIT); on MySQL and MariaDB
// error 1205 (lock wait timeout, from innodb_lock_wait_timeout,
// lock_wait_timeout or MariaDB's NOWAIT) or 3572 (MySQL's NOWAIT); on SQLite
// SQLITE_BUSY ("database is locked", after busy_timeout) or SQLITE_LOCKED,
// with any extended code. A statement_timeout cancellation on PostgreSQL is
// not a lock timeout. It reports false for a nil error and for the zero
// Dialect.
func (d Dialect) IsLockTimeout(err error) bool {
	if err == nil {
		return false
	}
	switch d.k {
	case kindPostgres:
		return pgState(err) == pgLockNotAvailable
	case kindMySQL:
		n := myNumber(err)
		return n == myLockWaitTimeout || n == myLockNowait
	case kindSQLite:
		c := sqliteCode(err) & 0xff
		return c == sqliteBusy || c == sqliteLocked
	}
	return false
}

// IsUniqueViolation reports whether err, or an error it wraps, says a write
// would have duplicated a primary key or a unique index entry: on
// PostgreSQL SQLSTATE 23505; on MySQL and MariaDB error 1062 or 1586; on
// SQLite the extended codes SQLITE_CONSTRAINT_UNIQUE (2067) and
// SQLITE_CONSTRAINT_PRIMARYKEY (1555). Other constraint failures (NOT
// NULL, foreign keys, checks) are not unique violations. It reports false
// for a nil error and for the zero Dialect.
func (d Dialect) IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	switch d.k {
	case kindPostgres:
		return pgState(err) == pgUniqueViolation
	case kindMySQL:
		n := myNumber(err)
		return n == myDupEntry || n == myDupEntryWithKeyName
	case kindSQLite:
		c := sqliteCode(err)
		return c == sqliteConstraintUnique || c == sqliteConstraintPK
	}
	return false
}

// IsSerializationFailure reports whether err, or an error it wraps, says
// the transaction lost a conflict with a concurrent one and was rolled back
// (or must be), so that running it again from the start may succeed: on
// PostgreSQL SQLSTATE 40001 (serialization_failure) or 40P01
// (deadlock_detected); on MySQL and MariaDB error 1213 (deadlock) or 1020
// (MariaDB's snapshot isolation conflict); on SQLite SQLITE_BUSY with any
// extended code, which SQLite returns both when the write lock stays taken
// past busy_timeout and, at once, when a transaction that read an older
// snapshot tries to write (SQLITE_BUSY_SNAPSHOT). On SQLite an error can
// therefore be both a lock timeout and a serialization failure. It reports
// false for a nil error and for the zero Dialect.
func (d Dialect) IsSerializationFailure(err error) bool {
	if err == nil {
		return false
	}
	switch d.k {
	case kindPostgres:
		s := pgState(err)
		return s == pgSerializationFailure || s == pgDeadlockDetected
	case kindMySQL:
		n := myNumber(err)
		return n == myLockDeadlock || n == myCheckRead
	case kindSQLite:
		return sqliteCode(err)&0xff == sqliteBusy
	}
	return false
}
