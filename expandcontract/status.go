package expandcontract

import (
	"time"

	"github.com/cutover-go/cutover"
)

// Status is what an operator needs to know about one migration, read from
// the metadata at one moment: the stored state, the stages its phase
// allows, the backfill's rate and ETA, the age of the last verification,
// the repair backlog, the instances and the stage each resolves, and the
// recent history. Read it with [Migration.Status]; the command cutover, the
// status page of package statuspage and the gauges of [Open] show the same
// figures. It is a plain value.
type Status struct {
	State           State                 // the stored state, settings included
	At              time.Time             // when it was read, by the store's clock
	Stages          []cutover.Stage       // the stages the phase allows, lowest first
	Backfill        BackfillProgress      // the backfill's rate, ETA and recent progress
	VerificationAge time.Duration         // since the last verification; 0 if there was none
	Repairs         RepairBacklog         // the repair log's backlog
	Instances       []Instance            // the instances seen within InstanceWindow, by id
	ByStage         map[cutover.Stage]int // how many of Instances resolve each stage
	Events          []Event               // the most recent history, newest first
}

// BackfillProgress is how fast a backfill goes, as its runners measured
// it and recorded it in the metadata.
type BackfillProgress struct {
	Rate    float64       // rows per second over the recent batches; 0 if no runner copied lately
	ETA     time.Duration // the time left at Rate; 0 if done or unknown
	Samples []Sample      // rows copied over the recent past, oldest first
}

// Sample is the progress of a backfill at one time.
type Sample struct {
	At   time.Time
	Rows int64
}

// RepairBacklog is the repair log's backlog of a migration.
type RepairBacklog struct {
	Pending int64           // entries not yet repaired, stuck ones included
	Stuck   int64           // entries that used up their attempts
	Oldest  time.Time       // when the oldest pending entry was first recorded; zero if none
	History []BacklogSample // pending entries over the recent past, oldest first
}

// BacklogSample is the repair backlog at one time.
type BacklogSample struct {
	At      time.Time
	Pending int64
}
