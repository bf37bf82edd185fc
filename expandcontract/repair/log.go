package repair

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/backoff"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

// ErrInvalidInput is wrapped by the errors for bad input: a nil argument
// or option, a bad option value, or an entry that cannot be stored.
var ErrInvalidInput = errors.New("repair: invalid input")

// MaxErrorLen is the most bytes of an error's text that the repair log
// keeps, both for the failure behind an entry and for the last failure of
// its repair. Longer texts are cut at a character boundary and end in "...".
const MaxErrorLen = 4096

// repairStuckAt is the next_attempt_at of an entry that used up its
// attempts: later than any clock, so no repairer claims it until
// [Log.RetryStuck] makes it due again.
const repairStuckAt = meta.RepairStuckAt

// repairCountEvery is how often, at most, a repairer counts the pending
// entries for its gauges.
const repairCountEvery = 15 * time.Second

// Log is the repair log of one migration, kept in the store's
// repairs table (cutover_repairs unless [expandcontract.WithTablePrefix] says otherwise)
// so that every instance of a service, and the repairers draining it,
// share it. It implements [cutover.RepairLog]: give
// it to dualwrite.New and the shadow readers, and drain it with a
// [Repairer]. Create it with [NewLog]; it is safe for concurrent
// use.
//
// A key has one pending entry per operation and target, however often it
// is recorded: a record of a key that has one joins it (see [Log.Record]),
// so that a long outage of a store leaves one entry per key it missed, not
// one per write.
//
// Entries are never marked done except by a repair that succeeded, nor
// deleted before that: an entry whose repair keeps failing stays pending,
// and once it has used the attempts a [Repairer] allows, it is kept as
// stuck until [Log.RetryStuck] or until its key is recorded again. Entries
// repaired are deleted once they are older than the retention of the
// log's repairers ([WithRetention]), or by [Log.DeleteDone].
type Log struct {
	k      *meta.Store
	name   string
	record string
	counts atomic.Pointer[repairCounts]
}

// repairCounts is the last count of a log's pending entries.
type repairCounts struct {
	pending, stuck int64
	at             time.Time
}

var _ cutover.RepairLog = (*Log)(nil)

// NewLog returns the repair log of the migration m. The migration need not
// exist in the store yet: a log can be filled before
// [expandcontract.Migration.Ensure] runs. A nil m is an error wrapping
// [ErrInvalidInput].
func NewLog(m *expandcontract.Migration) (*Log, error) {
	h := meta.HandleOf(m)
	if h == nil {
		return nil, fmt.Errorf("%w: nil migration", ErrInvalidInput)
	}
	return &Log{k: h.Store, name: h.Name, record: recordSQL(h.Store)}, nil
}

// recordSQL is the statement of [Log.Record]: an insert of a new pending
// entry, due at once, that joins the key's pending entry instead if it
// has one. Joining takes the new record's stage, reason and error, counts
// it, and leaves the entry as due as it was (waiting for a retry, or held
// by a repairer, which will see it was recorded again), but makes a stuck
// entry due at once with its attempts counted from zero, and revives an
// entry that was marked done without giving up its place as the key's
// pending one (as a repairer of an older version does). Its arguments:
// the entry's migration, op, entity_key, target, stage, reason, error,
// created_at, recorded_at and next_attempt_at, then the stuck time twice.
func recordSQL(k *meta.Store) string {
	t := k.T.Repairs
	insert := `INSERT INTO ` + t + ` (migration, op, entity_key, target, stage, reason, error, created_at, recorded_at,
	attempts, next_attempt_at, last_error, records, open_entry) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '', 1, 1)`
	if k.Dialect.Name() == sqldialect.MySQL {
		// MySQL assigns from left to right, each assignment seeing the
		// ones before: the conditions come before what they read.
		return k.Q(insert + ` ON DUPLICATE KEY UPDATE
	attempts = IF(done_at IS NOT NULL OR next_attempt_at = ?, 0, attempts),
	next_attempt_at = IF(done_at IS NOT NULL OR next_attempt_at = ?, VALUES(next_attempt_at), next_attempt_at),
	done_at = NULL, stage = VALUES(stage), reason = VALUES(reason), error = VALUES(error),
	recorded_at = VALUES(recorded_at), records = records + 1`)
	}
	return k.Q(insert + ` ON CONFLICT (migration, op, entity_key, target, open_entry) DO UPDATE SET
	attempts = CASE WHEN ` + t + `.done_at IS NOT NULL OR ` + t + `.next_attempt_at = ? THEN 0 ELSE ` + t + `.attempts END,
	next_attempt_at = CASE WHEN ` + t + `.done_at IS NOT NULL OR ` + t + `.next_attempt_at = ?
		THEN excluded.next_attempt_at ELSE ` + t + `.next_attempt_at END,
	done_at = NULL, stage = excluded.stage, reason = excluded.reason, error = excluded.error,
	recorded_at = excluded.recorded_at, records = ` + t + `.records + 1`)
}

// conflictAttempts is how many times a statement of the repair log runs
// when it loses a lock conflict, and conflictRetries the wait before each
// new try. On MySQL and MariaDB the upserts of a hot key's records and a
// repairer's updates of its entry deadlock against each other often: the
// unique index of pending entries takes gap locks that each waits for.
const conflictAttempts = 8

var conflictRetries = backoff.Policy{Base: 5 * time.Millisecond, Max: 200 * time.Millisecond}

// exec runs the statement q, again while it loses a deadlock or a
// serialization conflict (see conflictAttempts), up to conflictAttempts
// times, unless ctx is done. On SQLite it runs q once, since its busy
// timeout has already waited for the lock.
func (l *Log) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	d := l.k.Dialect
	for attempt := int64(1); ; attempt++ {
		res, err := l.k.DB.ExecContext(ctx, q, args...)
		if err == nil || attempt >= conflictAttempts || d.Name() == sqldialect.SQLite ||
			!d.IsSerializationFailure(err) || backoff.Sleep(ctx, conflictRetries.Wait(attempt)) != nil {
			return res, err
		}
	}
}

// Name returns the name of the log's migration.
func (l *Log) Name() string { return l.name }

// Record adds r to the log with one statement: a new entry due for repair
// at once, or, if the log holds a pending entry of r's operation, key and
// target, that entry with r's stage, reason and error, one more record
// counted, and its first recording kept. Such an entry stays as due as it
// was: one that waits for a retry after failed repairs is tried at its
// time, and one that a repairer is repairing at that moment is not marked
// done by it but due again at once, since the write behind r may have
// come after the repair read the source. A stuck entry is due again at
// once, with its attempts counted from zero. Records of one key from any
// number of processes at once leave one entry.
//
// The entry is stamped with the store's clock (see
// [expandcontract.WithClock]), not r.Time, so that its age and the time it
// is due are measured by one clock; r.Err is kept as its text, "" if nil,
// cut to [MaxErrorLen] bytes.
//
// r.Op, r.Key and r.Reason must be valid UTF-8 without NUL bytes and at
// most 255 characters long, the most every supported database stores
// alike; r.Target must be [cutover.Old] or [cutover.New] and r.Stage a
// valid stage. Anything else is refused with an error wrapping
// [ErrInvalidInput], as is a failure of the database, so that the caller
// knows the key was not recorded.
func (l *Log) Record(ctx context.Context, r cutover.Repair) error {
	if err := repairValidate(r); err != nil {
		return err
	}
	now := meta.Micros(l.k.Now())
	_, err := l.exec(ctx, l.record, l.name, r.Op, r.Key, int64(r.Target), r.Stage.String(),
		string(r.Reason), repairErrorText(r.Err), now, now, now, int64(repairStuckAt), int64(repairStuckAt))
	if err != nil {
		return fmt.Errorf("repair: record repair of %s %q in %q: %w", r.Op, r.Key, l.name, err)
	}
	return nil
}

// repairValidate checks that r can be stored, and read back, unchanged on
// every supported database.
func repairValidate(r cutover.Repair) error {
	for _, f := range [...]struct{ what, v string }{{"operation", r.Op}, {"key", r.Key}, {"reason", string(r.Reason)}} {
		switch {
		case !utf8.ValidString(f.v):
			return fmt.Errorf("%w: repair %s %q is not valid UTF-8", ErrInvalidInput, f.what, f.v)
		case strings.IndexByte(f.v, 0) >= 0:
			return fmt.Errorf("%w: repair %s %q holds a NUL byte", ErrInvalidInput, f.what, f.v)
		case utf8.RuneCountInString(f.v) > sqldialect.MaxKeyTextLen:
			return fmt.Errorf("%w: repair %s %.40q... is longer than %d characters",
				ErrInvalidInput, f.what, f.v, sqldialect.MaxKeyTextLen)
		}
	}
	if r.Target != cutover.Old && r.Target != cutover.New {
		return fmt.Errorf("%w: repair target %v is not a store", ErrInvalidInput, r.Target)
	}
	if !r.Stage.Valid() {
		return fmt.Errorf("%w: repair stage: %w: %v", ErrInvalidInput, cutover.ErrUnknownStage, r.Stage)
	}
	return nil
}

// repairErrorText returns the text of err as the log keeps it.
func repairErrorText(err error) string {
	if err == nil {
		return ""
	}
	return repairCleanText(err.Error())
}

// repairCleanText makes s storable on every database: valid UTF-8, no NUL
// bytes, at most MaxErrorLen bytes.
func repairCleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", `\x00`)
	if len(s) <= MaxErrorLen {
		return s
	}
	cut := MaxErrorLen - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Pending returns the number of the log's entries not repaired yet: those
// due, those waiting for a retry or held by a repairer, and the stuck ones.
func (l *Log) Pending(ctx context.Context) (int64, error) {
	c, err := l.count(ctx)
	return c.pending, err
}

// Stuck returns the number of the log's entries that used up the attempts
// their repairer allows (see [WithMaxAttempts]) and wait for
// [Log.RetryStuck]. They are counted by [Log.Pending] too.
func (l *Log) Stuck(ctx context.Context) (int64, error) {
	c, err := l.count(ctx)
	return c.stuck, err
}

// count counts the pending and stuck entries, and keeps the count for the
// gauges of the log's repairers.
func (l *Log) count(ctx context.Context) (repairCounts, error) {
	counts, err := l.k.RepairCounts(ctx, l.name)
	if err != nil {
		return repairCounts{}, fmt.Errorf("repair: count repairs of %q: %w", l.name, err)
	}
	c := repairCounts{at: l.k.Now()}
	if len(counts) == 1 {
		c.pending, c.stuck = counts[0].Pending, counts[0].Stuck
	}
	l.counts.Store(&c)
	return c, nil
}

// RetryStuck makes every stuck entry of the log due at once, with its
// attempts counted from zero again, and returns how many there were. Call
// it once the cause of their failures is fixed.
func (l *Log) RetryStuck(ctx context.Context) (int64, error) {
	res, err := l.exec(ctx, l.k.Q(`UPDATE `+l.k.T.Repairs+
		` SET next_attempt_at = ?, attempts = 0 WHERE migration = ? AND done_at IS NULL AND next_attempt_at = ?`),
		meta.Micros(l.k.Now()), l.name, int64(repairStuckAt))
	if err != nil {
		return 0, fmt.Errorf("repair: retry stuck repairs of %q: %w", l.name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("repair: retry stuck repairs of %q: %w", l.name, err)
	}
	return n, nil
}

// DeleteDone deletes the log's entries that were repaired before before,
// and returns how many it deleted. Entries not repaired are never deleted.
func (l *Log) DeleteDone(ctx context.Context, before time.Time) (int64, error) {
	res, err := l.k.DB.ExecContext(ctx, l.k.Q(`DELETE FROM `+l.k.T.Repairs+
		` WHERE migration = ? AND done_at IS NOT NULL AND done_at < ?`), l.name, meta.Micros(before))
	if err != nil {
		return 0, fmt.Errorf("repair: delete done repairs of %q: %w", l.name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("repair: delete done repairs of %q: %w", l.name, err)
	}
	return n, nil
}

// deleteDone deletes the log's entries repaired before before, at most
// limit rows a statement and max in all, and returns how many it deleted.
func (l *Log) deleteDone(ctx context.Context, before time.Time, limit, most int) (int64, error) {
	k := l.k
	var deleted int64
	for deleted < int64(most) {
		var ids []int64
		if err := k.DB.SelectContext(ctx, &ids, k.Q(`SELECT id FROM `+k.T.Repairs+
			` WHERE migration = ? AND done_at IS NOT NULL AND done_at < ? ORDER BY id LIMIT `+strconv.Itoa(limit)),
			l.name, meta.Micros(before)); err != nil {
			return deleted, fmt.Errorf("repair: find done repairs of %q: %w", l.name, err)
		}
		if len(ids) == 0 {
			return deleted, nil
		}
		args := []any{meta.Micros(before)}
		for _, id := range ids {
			args = append(args, id)
		}
		// Only while still done: a record may have revived one meanwhile.
		res, err := k.DB.ExecContext(ctx, k.Q(`DELETE FROM `+k.T.Repairs+` WHERE done_at IS NOT NULL AND done_at < ? AND id IN (`+
			strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+`)`), args...)
		if err != nil {
			return deleted, fmt.Errorf("repair: delete done repairs of %q: %w", l.name, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return deleted, fmt.Errorf("repair: delete done repairs of %q: %w", l.name, err)
		}
		deleted += n
		if len(ids) < limit {
			return deleted, nil
		}
	}
	return deleted, nil
}

// Entry is one entry of a [Log] as stored.
type Entry struct {
	ID int64 // increases with the order in which entries were first recorded
	// Repair is the entry as last recorded. Its Time is when the log last
	// recorded it, and its Err, if the entry had one, an error with the
	// text kept.
	Repair        cutover.Repair
	FirstRecorded time.Time // when the log first recorded the entry
	Records       int64     // how many records of its key the entry holds: 1, and one more for each that joined it
	Attempts      int       // repairs tried and failed since recorded, or since RetryStuck
	NextAttemptAt time.Time // when it is due, or held until; zero if stuck or done
	LastError     string    // the failure of the last attempt; "" if none failed
	Stuck         bool      // it used up its attempts and waits for RetryStuck
	DoneAt        time.Time // when it was repaired; zero if pending
}

// Done reports whether the entry was repaired.
func (e Entry) Done() bool { return !e.DoneAt.IsZero() }

// Query selects entries for [Log.Entries]. The zero value
// selects the first 100 pending entries.
type Query struct {
	AfterID     int64 // only entries whose ID is greater; 0 starts at the first
	Limit       int   // the most entries returned; 0 means 100
	IncludeDone bool  // include repaired entries; false returns pending ones only
}

// Entries returns entries of the log in the order they were first recorded, as q
// selects them. Page through a long log by passing the last ID returned as
// the next q.AfterID.
func (l *Log) Entries(ctx context.Context, q Query) ([]Entry, error) {
	switch {
	case q.Limit < 0:
		return nil, fmt.Errorf("%w: negative repair query limit %d", ErrInvalidInput, q.Limit)
	case q.Limit == 0:
		q.Limit = 100
	}
	where := `migration = ? AND id > ?`
	if !q.IncludeDone {
		where += ` AND done_at IS NULL`
	}
	var rows []repairRow
	err := l.k.DB.SelectContext(ctx, &rows, l.k.Q(`SELECT `+repairColumns+` FROM `+l.k.T.Repairs+
		` WHERE `+where+` ORDER BY id LIMIT `+strconv.Itoa(q.Limit)), l.name, q.AfterID)
	if err != nil {
		return nil, fmt.Errorf("repair: read repairs of %q: %w", l.name, err)
	}
	out := make([]Entry, len(rows))
	for i, r := range rows {
		if out[i], err = r.entry(); err != nil {
			return nil, fmt.Errorf("%w: repair %d of %q: %w", expandcontract.ErrCorrupt, r.ID, l.name, err)
		}
	}
	return out, nil
}

// repairRow is the scanned form of a row of the repairs table.
type repairRow struct {
	ID            int64         `db:"id"`
	Op            string        `db:"op"`
	Key           string        `db:"entity_key"`
	Target        int64         `db:"target"`
	Stage         string        `db:"stage"`
	Reason        string        `db:"reason"`
	Error         string        `db:"error"`
	CreatedAt     int64         `db:"created_at"`
	Attempts      int64         `db:"attempts"`
	NextAttemptAt int64         `db:"next_attempt_at"`
	LastError     string        `db:"last_error"`
	DoneAt        sql.NullInt64 `db:"done_at"`
	RecordedAt    int64         `db:"recorded_at"`
	Records       int64         `db:"records"`
	Open          sql.NullInt64 `db:"open_entry"`
}

const repairColumns = `id, op, entity_key, target, stage, reason, error, created_at, attempts, next_attempt_at, last_error, done_at,
	COALESCE(recorded_at, created_at) AS recorded_at, records, open_entry`

// repair returns the entry as it was recorded.
func (r repairRow) repair() (cutover.Repair, error) {
	st, err := cutover.ParseStage(r.Stage)
	if err != nil {
		return cutover.Repair{}, err
	}
	if r.Target != int64(cutover.Old) && r.Target != int64(cutover.New) {
		return cutover.Repair{}, fmt.Errorf("target %d is not a store", r.Target)
	}
	rep := cutover.Repair{Op: r.Op, Key: r.Key, Target: cutover.Side(r.Target), Stage: st,
		Reason: cutover.Reason(r.Reason), Time: time.UnixMicro(r.RecordedAt).UTC()}
	if r.Error != "" {
		rep.Err = errors.New(r.Error)
	}
	return rep, nil
}

func (r repairRow) entry() (Entry, error) {
	rep, err := r.repair()
	if err != nil {
		return Entry{}, err
	}
	e := Entry{ID: r.ID, Repair: rep, FirstRecorded: time.UnixMicro(r.CreatedAt).UTC(), Records: r.Records,
		Attempts: int(r.Attempts), LastError: r.LastError, DoneAt: meta.FromMicros(r.DoneAt)}
	switch {
	case e.Done():
	case r.NextAttemptAt == repairStuckAt:
		e.Stuck = true
	default:
		e.NextAttemptAt = time.UnixMicro(r.NextAttemptAt).UTC()
	}
	return e, nil
}
