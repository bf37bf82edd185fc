package crashtest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/internal/testdb"
)

// TestKillMidBatchThenResume kills a backfilling process with SIGKILL while
// a batch's transaction is open and has written its rows, then resumes the
// backfill in a new runner. The process is killed inside the batch
// function, or after it returned, just before the runner writes the
// checkpoint in the same transaction.
func TestKillMidBatchThenResume(t *testing.T) {
	for _, at := range []string{"batch", "checkpoint"} {
		t.Run("at-"+at, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *testdb.DB) { killMidBatchThenResume(t, db, at) })
		})
	}
}

func killMidBatchThenResume(t *testing.T, db *testdb.DB, killAt string) {
	keys := createCustomers(t, db)
	s := openStore(t, db.DB)
	toBackfill(t, s)
	const holdAfter = 3
	done := holdAfter * batchSize
	cp := keys[done-1] // the checkpoint of the last batch that commits
	inFlight := keys[done : done+batchSize]
	upToCheckpoint := func(id int64) int64 {
		if id <= cp {
			return 1
		}
		return 0
	}

	// The child commits three batches, then the fourth writes its rows
	// and waits, uncommitted. Its lease lasts an hour, far longer than the
	// test, so its heartbeat never runs: only the resuming store's clock
	// lets the lease run out.
	c := startChild(t, db, "runner-killed", "backfill", envKillAt+"="+killAt,
		envBatch+"="+strconv.Itoa(batchSize), envHoldAfter+"="+strconv.Itoa(holdAfter), envLease+"=1h")
	mid := c.expect(t, evMidBatch, time.Minute)
	require.Equal(t, fmt.Sprint(cp), mid.From)
	require.Equal(t, fmt.Sprint(inFlight[batchSize-1]), mid.To)
	require.EqualValues(t, batchSize, mid.Rows, "the batch in flight wrote its rows")
	for _, id := range []int64{inFlight[0], inFlight[batchSize-1]} {
		require.True(t, rowLocked(t, db, id), "row %d is not locked: the batch's transaction is not open", id)
	}
	before := get(t, s).Backfill
	require.Equal(t, fmt.Sprint(cp), before.Checkpoint)
	require.EqualValues(t, done, before.Rows)
	require.Equal(t, "runner-killed", before.LeaseOwner)

	require.Empty(t, c.killNow(t), "messages after mid-batch")

	// The database ends the dead session and rolls its transaction
	// back; SQLite's lock goes with the process.
	deadline := time.Now().Add(15 * time.Second)
	for rowLocked(t, db, inFlight[0]) {
		if time.Now().After(deadline) {
			t.Fatal("the killed runner's transaction still locks its rows 15s after SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The batch in flight left no trace: the checkpoint and the row
	// counts are those of the batches before it, its rows are as they
	// were, and the verifier finds exactly the keys past the checkpoint
	// missing from the new column. The dead runner still holds the
	// lease: nothing gave it back.
	after := get(t, s).Backfill
	require.Equal(t, before.Checkpoint, after.Checkpoint)
	require.Equal(t, before.Rows, after.Rows)
	require.False(t, after.Done())
	require.Equal(t, "runner-killed", after.LeaseOwner)
	require.True(t, after.LeaseUntil.After(time.Now()), "lease until %v", after.LeaseUntil)
	checkCopies(t, db, upToCheckpoint)
	res := verifyColumns(t, s, db)
	require.EqualValues(t, numRows, res.Rows)
	require.EqualValues(t, numRows-done, res.Differences)
	require.EqualValues(t, numRows-done, res.Changed, "the new column is NULL past the checkpoint")
	var past []string
	for _, k := range keys[done:] {
		past = append(past, fmt.Sprint(k))
	}
	require.Equal(t, past, res.Keys)

	// A new runner, in another store whose clock the test moves, is
	// refused while the dead runner's lease lasts, then takes it over.
	clock := &offsetClock{}
	rs := openStore(t, db.DB, expandcontract.WithClock(clock.Now))
	bf, err := backfill.New(suite.Migration(rs, migration), keyset, backfill.SQLBatch(copySQL),
		backfill.WithBatchSize(batchSize), backfill.WithOwner("runner-resumed"))
	require.NoError(t, err)
	err = bf.Run(t.Context())
	var held *backfill.LeaseHeldError
	require.ErrorAs(t, err, &held)
	require.Equal(t, "runner-killed", held.Owner)
	require.True(t, held.Until.Equal(after.LeaseUntil), "held until %v, lease until %v", held.Until, after.LeaseUntil)
	checkCopies(t, db, upToCheckpoint)

	clock.jumpPast(held.Until)
	require.NoError(t, bf.Run(t.Context()))

	// Every row was copied once: no batch redone, none skipped.
	checkCopies(t, db, once)
	requireClean(t, verifyColumns(t, rs, db))
	final := get(t, rs)
	require.True(t, final.Backfill.Done())
	require.EqualValues(t, numRows, final.Backfill.Rows)
	require.Equal(t, fmt.Sprint(keys[numRows-1]), final.Backfill.Checkpoint)
	require.Empty(t, final.Backfill.LeaseOwner)

	starts, finished := history(t, rs)
	require.Len(t, starts, 2, "runs: %+v", starts)
	require.Equal(t, backfillRun{Owner: "runner-killed", At: starts[0].At}, starts[0])
	r := starts[1]
	require.Equal(t, "runner-resumed", r.Owner)
	require.Equal(t, fmt.Sprint(cp), r.Checkpoint)
	require.EqualValues(t, done, r.Rows)
	require.Equal(t, "runner-killed", r.TookOverFrom)
	require.True(t, r.RanOut.Equal(held.Until), "ran out at %v, held until %v", r.RanOut, held.Until)
	require.False(t, r.At.Before(r.RanOut), "took over at %v, before the lease ran out at %v", r.At, r.RanOut)
	require.Equal(t, []string{"runner-resumed"}, finished)

	// The phase guard accepts the result: reads may move.
	_, err = suite.Migration(rs, migration).Move(t.Context(), expandcontract.Move{To: expandcontract.SwitchReads, Actor: "test", Reason: "verified"})
	require.NoError(t, err)
}

// TestRacingMovesHaveOneWinner has two processes ask for the same phase
// move at the same moment, round after round.
func TestRacingMovesHaveOneWinner(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := openStore(t, db.DB)
		_, err := suite.Migration(s, migration).Ensure(t.Context(), "test")
		require.NoError(t, err)
		a, b := startChild(t, db, "mover-a", "mover"), startChild(t, db, "mover-b", "mover")
		a.expect(t, evReady, time.Minute)
		b.expect(t, evReady, time.Minute)

		// Forward and back between dualwrite and backfill. Rounds 8 to 11
		// ask for the current version (0), which each process reads for
		// itself. In the rounds with a hold, both moves stop in their
		// transactions, past the version check, until both got there, so
		// that the compare-and-swap alone decides. SQLite has none: its
		// write lock lets only one such transaction begin at a time.
		type round struct {
			to            expandcontract.Phase
			current, hold bool
		}
		var rounds []round
		for i := range 12 {
			to := expandcontract.DualWrite
			if i%2 == 1 {
				to = expandcontract.Backfill
			}
			rounds = append(rounds, round{to: to, current: i >= 8, hold: i%4 >= 2 && db.Name != "sqlite"})
		}
		winners := map[int64]string{} // by the version the move made
		var conflicted, refused []string
		wins := map[string]int{}
		held := 0 // rounds with a hold
		for i, r := range rounds {
			v := get(t, s).Version
			ask := v
			if r.current {
				ask = 0
			}
			cmd := fmt.Sprintf("move %s %d", r.to, ask)
			if r.hold {
				cmd += " hold"
			}
			first, second := a, b
			if i%2 == 1 {
				first, second = b, a
			}
			first.send(t, cmd)
			second.send(t, cmd)
			if r.hold {
				a.expect(t, evInTx, 30*time.Second)
				b.expect(t, evInTx, 30*time.Second)
				first.send(t, "proceed")
				second.send(t, "proceed")
			}
			ma, mb := a.next(t, 30*time.Second), b.next(t, 30*time.Second)
			win, wm, lose, lm := a, ma, b, mb
			if mb.Event == evMoved {
				win, wm, lose, lm = b, mb, a, ma
			}
			if wm.Event != evMoved || lm.Event == evMoved {
				t.Fatalf("round %d, %s: %s got %v and %s got %v; want exactly one move", i, cmd, a.name, ma, b.name, mb)
			}
			require.Equal(t, v+1, wm.Version, "round %d: version after the move", i)
			require.Equal(t, r.to.String(), wm.Phase, "round %d", i)
			switch lm.Event {
			case evConflict:
				require.Equal(t, v, lm.Expected, "round %d: %s", i, lm.Error)
				require.Equal(t, v+1, lm.Actual, "round %d: %s", i, lm.Error)
				require.Equal(t, r.to.String(), lm.Phase, "round %d: %s", i, lm.Error)
				conflicted = append(conflicted, lose.name)
			case evRefused:
				// Asking for the current version, the loser read the
				// migration after the winner moved it.
				require.True(t, r.current && !r.hold, "round %d: refused: %s", i, lm.Error)
				require.Equal(t, r.to.String(), lm.Phase, "round %d", i)
				require.Contains(t, lm.Error, "already there", "round %d", i)
				refused = append(refused, lose.name)
			default:
				t.Fatalf("round %d, %s: the loser %s got %v", i, cmd, lose.name, lm)
			}
			m := get(t, s)
			require.Equal(t, v+1, m.Version, "round %d", i)
			require.Equal(t, r.to, m.Phase, "round %d", i)
			winners[m.Version] = win.name
			wins[win.name]++
			if r.hold {
				held++
			}
		}
		require.NoError(t, a.stdin.Close())
		require.NoError(t, b.stdin.Close())
		a.waitExit(t, 30*time.Second)
		b.waitExit(t, 30*time.Second)
		t.Logf("wins %v; losers got %d conflicts (%d decided by the compare-and-swap with both moves in their transactions) and %d refusals",
			wins, len(conflicted), held, len(refused))

		// The history holds exactly one move per version, by the winner,
		// and each loser's conflict or refusal.
		evs, err := suite.Migration(s, migration).Events(t.Context())
		require.NoError(t, err)
		moves := map[int64]string{}
		var gotConflicts, gotRefusals []string
		for _, e := range evs {
			switch e.Kind {
			case "create":
			case "move":
				if prev, dup := moves[e.Version]; dup {
					t.Errorf("two moves made version %d: by %s and by %s", e.Version, prev, e.Actor)
				}
				moves[e.Version] = e.Actor
			case "conflict":
				gotConflicts = append(gotConflicts, e.Actor)
			case "refuse":
				gotRefusals = append(gotRefusals, e.Actor)
			default:
				t.Errorf("unexpected event %+v", e)
			}
		}
		require.Equal(t, winners, moves)
		require.Equal(t, conflicted, gotConflicts)
		require.Equal(t, refused, gotRefusals)
	})
}

// TestRacingBackfillLeases starts the same backfill in two processes at
// once, kills the one that got the lease, and lets the other finish.
func TestRacingBackfillLeases(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		keys := createCustomers(t, db)
		s := openStore(t, db.DB)
		toBackfill(t, s)
		const (
			holdAfter = 2
			ttl       = 2 * time.Second
		)
		done := holdAfter * batchSize
		cp := keys[done-1]
		env := []string{envBatch + "=" + strconv.Itoa(batchSize), envHoldAfter + "=" + strconv.Itoa(holdAfter), envLease + "=" + ttl.String()}
		a, b := startChild(t, db, "leaser-a", "leaser", env...), startChild(t, db, "leaser-b", "leaser", env...)
		a.expect(t, evReady, time.Minute)
		b.expect(t, evReady, time.Minute)
		a.send(t, "go")
		b.send(t, "go")

		// One gets the lease, commits two batches and holds it between
		// batches; the other is refused, again and again, naming it. Wait
		// for a refusal to a try made more than the lease's TTL after the
		// holder's last commit, which set the lease to run out at most a
		// TTL later: its heartbeat alone keeps the lease.
		var holder, other *child
		var holdingAt time.Time
		named := ""
		for deadline := time.Now().Add(time.Minute); ; {
			c, m := nextOf(t, a, b, time.Until(deadline))
			switch m.Event {
			case evHolding:
				if holder != nil {
					t.Fatalf("%s and %s both hold the lease", holder.name, c.name)
				}
				holder, holdingAt = c, m.At
				other = a
				if c == a {
					other = b
				}
				if named != "" {
					require.Equal(t, named, holder.name, "the refusals named another holder")
				}
				continue
			case evHeld:
				require.NotEqual(t, c.name, m.Owner, "%s was refused by its own lease", c.name)
				if named == "" {
					named = m.Owner
				}
				require.Equal(t, named, m.Owner, "the refusals name two holders")
				if holder == nil {
					continue
				}
				require.Same(t, other, c, "the holder was refused")
				if !m.At.After(holdingAt.Add(ttl + ttl/4)) {
					continue
				}
				require.True(t, m.Until.After(m.At), "refused at %v by a lease that ran out at %v", m.At, m.Until)
			default:
				t.Fatalf("child %s: unexpected %v", c.name, m)
			}
			break
		}
		st := get(t, s).Backfill
		require.Equal(t, holder.name, st.LeaseOwner)
		require.Equal(t, fmt.Sprint(cp), st.Checkpoint)
		require.EqualValues(t, done, st.Rows)
		checkCopies(t, db, func(id int64) int64 {
			if id <= cp {
				return 1
			}
			return 0
		})

		// Kill the holder. The other takes the lease over once it runs
		// out, and finishes the backfill.
		killedAt := time.Now()
		require.Empty(t, holder.killNow(t), "messages after holding")
		for {
			m := other.next(t, 30*time.Second)
			if m.Event == evDone {
				break
			}
			require.Equal(t, evHeld, m.Event, "%v", m)
			require.Equal(t, holder.name, m.Owner)
		}
		other.waitExit(t, 30*time.Second)

		checkCopies(t, db, once)
		requireClean(t, verifyColumns(t, s, db))
		final := get(t, s)
		require.True(t, final.Backfill.Done())
		require.EqualValues(t, numRows, final.Backfill.Rows)
		require.Empty(t, final.Backfill.LeaseOwner)

		// The history: the holder started from scratch, the other started
		// once only, after the holder's lease ran out, which was after the
		// kill (the holder renewed it until it died), from the holder's
		// checkpoint, and finished.
		starts, finished := history(t, s)
		require.Len(t, starts, 2, "runs: %+v", starts)
		require.Equal(t, backfillRun{Owner: holder.name, At: starts[0].At}, starts[0])
		r := starts[1]
		require.Equal(t, other.name, r.Owner)
		require.Equal(t, fmt.Sprint(cp), r.Checkpoint)
		require.EqualValues(t, done, r.Rows)
		require.Equal(t, holder.name, r.TookOverFrom)
		require.True(t, r.RanOut.After(killedAt), "the lease ran out at %v, before the kill at %v", r.RanOut, killedAt)
		require.False(t, r.At.Before(r.RanOut), "took over at %v, before the lease ran out at %v", r.At, r.RanOut)
		require.Equal(t, []string{other.name}, finished)

		_, err := suite.Migration(s, migration).Move(t.Context(), expandcontract.Move{To: expandcontract.SwitchReads, Actor: "test", Reason: "verified"})
		require.NoError(t, err)
	})
}
