package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/verify"
)

var verifyCommand = &command{
	name: "verify", args: "MIGRATION", min: 1, max: 1,
	summary: "compare the old and the new store and record the result",
	about: "Verify compares the old and the new side of the migration with package verify, range by range\n" +
		"of checksums, drilling down to the differing keys, and records the result with the migration as\n" +
		"the Go API does: a clean one, newer than the backfill's end, lets it move to switchreads. With\n" +
		"--repair, every differing key is also recorded in the migration's repair log.\n\n" +
		"The sides are given by the flags below, or by a JSON file (--config) of the same settings; a\n" +
		"flag given on the command line wins over the file. The old side is in the service's database\n" +
		"(--dsn); the new side too, unless --new-dsn names another database. Value expressions and\n" +
		"conditions are SQL, spliced into the queries as they are: give only your own.\n\n" +
		"The JSON file, every field optional but old.table, old.key, old.value and new.value:\n\n" +
		"  {\"old\": {\"table\": \"customers\", \"key\": \"id\", \"value\": \"customer_phone\", \"where\": \"\"},\n" +
		"   \"new\": {\"table\": \"customers\", \"key\": \"id\", \"value\": \"phone_number\", \"where\": \"\",\n" +
		"           \"driver\": \"pgx\", \"dsn\": \"postgres://...\"},\n" +
		"   \"kind\": \"int\", \"chunk_size\": 10000, \"concurrency\": 2, \"recheck\": \"2s\",\n" +
		"   \"max_keys\": 100, \"repair\": false}",
	setup: func(fs *flag.FlagSet) func(c *call) error {
		var f verifySpec
		config := fs.String("config", "", "read the settings from this JSON `file`")
		fs.StringVar(&f.Old.Table, "old-table", "", "the old side's table")
		fs.StringVar(&f.Old.Key, "key", "", "the old side's key column, unique in its table")
		fs.StringVar(&f.Old.Value, "old-value", "", "the old side's value, a SQL expression compared as text")
		fs.StringVar(&f.Old.Where, "old-where", "", "a SQL condition that limits the old side's rows")
		fs.StringVar(&f.New.Table, "new-table", "", "the new side's table (default: the old side's)")
		fs.StringVar(&f.New.Key, "new-key", "", "the new side's key column (default: the old side's)")
		fs.StringVar(&f.New.Value, "new-value", "", "the new side's value, a SQL expression compared as text")
		fs.StringVar(&f.New.Where, "new-where", "", "a SQL condition that limits the new side's rows")
		fs.StringVar(&f.New.Driver, "new-driver", "", "the new side's database driver (default: --driver)")
		fs.StringVar(&f.New.DSN, "new-dsn", "", "the new side's database, if not the service's")
		fs.StringVar(&f.Kind, "kind", "", "the keys' kind: int or text (default int)")
		fs.IntVar(&f.ChunkSize, "chunk-size", verify.DefaultChunkSize, "rows of a key range checksummed as one")
		fs.IntVar(&f.Concurrency, "concurrency", 2, "key ranges checksummed at once")
		fs.StringVar(&f.Recheck, "recheck", "", "read a differing range again after this `duration` and count only keys that differ both times")
		fs.IntVar(&f.MaxKeys, "max-keys", 100, "differing keys the result lists")
		fs.BoolVar(&f.Repair, "repair", false, "record every differing key in the migration's repair log")
		return func(c *call) error {
			spec, err := loadVerifySpec(*config, f, fs)
			if err != nil {
				return err
			}
			opts, err := spec.options()
			if err != nil {
				return err
			}
			m, _, err := c.migration(c.args[0])
			if err != nil {
				return err
			}
			newDB := c.db
			if spec.New.DSN != "" {
				if newDB, err = openDB(c.ctx, cmp.Or(spec.New.Driver, c.conn.driver), spec.New.DSN, "new database"); err != nil {
					return err
				}
				defer newDB.Close()
			}
			return runVerify(c, m, spec, newDB, opts)
		}
	},
}

// verifySpec is what verify compares and how: the flags, or the JSON file
// of --config.
type verifySpec struct {
	Old         sideSpec `json:"old"`
	New         sideSpec `json:"new"`
	Kind        string   `json:"kind"`
	ChunkSize   int      `json:"chunk_size"`
	Concurrency int      `json:"concurrency"`
	Recheck     string   `json:"recheck"`
	MaxKeys     int      `json:"max_keys"`
	Repair      bool     `json:"repair"`
}

// sideSpec is one side of a verification.
type sideSpec struct {
	Table  string `json:"table"`
	Key    string `json:"key"`
	Value  string `json:"value"`
	Where  string `json:"where"`
	Driver string `json:"driver,omitempty"` // the new side only
	DSN    string `json:"dsn,omitempty"`    // the new side only
}

// verifyFlagFields maps each flag of verify to the field of a verifySpec it
// sets, so that the flags given on the command line can be laid over the
// file.
var verifyFlagFields = map[string]func(dst, src *verifySpec){
	"old-table":   func(d, s *verifySpec) { d.Old.Table = s.Old.Table },
	"key":         func(d, s *verifySpec) { d.Old.Key = s.Old.Key },
	"old-value":   func(d, s *verifySpec) { d.Old.Value = s.Old.Value },
	"old-where":   func(d, s *verifySpec) { d.Old.Where = s.Old.Where },
	"new-table":   func(d, s *verifySpec) { d.New.Table = s.New.Table },
	"new-key":     func(d, s *verifySpec) { d.New.Key = s.New.Key },
	"new-value":   func(d, s *verifySpec) { d.New.Value = s.New.Value },
	"new-where":   func(d, s *verifySpec) { d.New.Where = s.New.Where },
	"new-driver":  func(d, s *verifySpec) { d.New.Driver = s.New.Driver },
	"new-dsn":     func(d, s *verifySpec) { d.New.DSN = s.New.DSN },
	"kind":        func(d, s *verifySpec) { d.Kind = s.Kind },
	"chunk-size":  func(d, s *verifySpec) { d.ChunkSize = s.ChunkSize },
	"concurrency": func(d, s *verifySpec) { d.Concurrency = s.Concurrency },
	"recheck":     func(d, s *verifySpec) { d.Recheck = s.Recheck },
	"max-keys":    func(d, s *verifySpec) { d.MaxKeys = s.MaxKeys },
	"repair":      func(d, s *verifySpec) { d.Repair = s.Repair },
}

// loadVerifySpec returns the settings of the file path, if any, with the
// flags set on the command line laid over them, and the defaults where
// neither says.
func loadVerifySpec(path string, flags verifySpec, fs *flag.FlagSet) (verifySpec, error) {
	if path == "" {
		return flags.withDefaults(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return verifySpec{}, usageErrorf("--config: %v", err)
	}
	spec := verifySpec{ChunkSize: verify.DefaultChunkSize, Concurrency: 2, MaxKeys: 100}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return verifySpec{}, usageErrorf("--config %s: %v", path, err)
	}
	fs.Visit(func(f *flag.Flag) {
		if set := verifyFlagFields[f.Name]; set != nil {
			set(&spec, &flags)
		}
	})
	return spec.withDefaults(), nil
}

// withDefaults fills the new side's table and key from the old side's.
func (s verifySpec) withDefaults() verifySpec {
	s.New.Table = cmp.Or(s.New.Table, s.Old.Table)
	s.New.Key = cmp.Or(s.New.Key, s.Old.Key)
	return s
}

// kind returns the key kind the spec names.
func (s verifySpec) kind() (expandcontract.KeyKind, error) {
	switch strings.ToLower(s.Kind) {
	case "", "int":
		return expandcontract.IntKeys, nil
	case "text":
		return expandcontract.TextKeys, nil
	}
	return 0, usageErrorf("unknown key kind %q (want int or text)", s.Kind)
}

// options checks the spec and returns the verifier's options.
func (s verifySpec) options() ([]verify.Option, error) {
	var missing []string
	for _, f := range []struct{ v, name string }{
		{s.Old.Table, "--old-table"}, {s.Old.Key, "--key"}, {s.Old.Value, "--old-value"}, {s.New.Value, "--new-value"},
	} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, usageErrorf("missing %s (or the same in --config)", strings.Join(missing, ", "))
	}
	if _, err := s.kind(); err != nil {
		return nil, err
	}
	if s.New.Driver != "" && s.New.DSN == "" {
		return nil, usageErrorf("--new-driver without --new-dsn")
	}
	opts := []verify.Option{verify.WithChunkSize(s.ChunkSize), verify.WithConcurrency(s.Concurrency),
		verify.WithMaxReportedKeys(s.MaxKeys)}
	if s.Recheck != "" {
		d, err := time.ParseDuration(s.Recheck)
		if err != nil {
			return nil, usageErrorf("recheck: %v", err)
		}
		opts = append(opts, verify.WithRecheck(d))
	}
	if !s.Repair {
		opts = append(opts, verify.WithRepairLog(discardRepairs{}))
	}
	return opts, nil
}

// discardRepairs is the repair log of a verification run without
// --repair: it keeps nothing.
type discardRepairs struct{}

func (discardRepairs) Record(context.Context, cutover.Repair) error { return nil }

// resultJSON is the result of verify in JSON.
type resultJSON struct {
	Migration       string    `json:"migration"`
	Clean           bool      `json:"clean"`
	Digest          string    `json:"digest"`
	Rows            int64     `json:"rows"`
	NewRows         int64     `json:"new_rows"`
	Chunks          int64     `json:"chunks"`
	Drilled         int64     `json:"drilled"`
	Differences     int64     `json:"differences"`
	Missing         int64     `json:"missing"`
	Extra           int64     `json:"extra"`
	Changed         int64     `json:"changed"`
	Keys            []string  `json:"keys"`
	Started         time.Time `json:"started"`
	DurationSeconds float64   `json:"duration_seconds"`
	Repaired        bool      `json:"sent_to_repair_log"`
}

// runVerify runs the verification and prints its result.
func runVerify(c *call, m *expandcontract.Migration, spec verifySpec, newDB *sqlx.DB, opts []verify.Option) error {
	kind, _ := spec.kind()
	old := &verify.SQLRows{DB: c.db, Table: spec.Old.Table, Key: spec.Old.Key, Kind: kind, Value: spec.Old.Value, Where: spec.Old.Where}
	nw := &verify.SQLRows{DB: newDB, Table: spec.New.Table, Key: spec.New.Key, Kind: kind, Value: spec.New.Value, Where: spec.New.Where}
	v, err := verify.New(m, old, nw, opts...)
	if err != nil {
		return err
	}
	res, err := v.Run(c.ctx)
	if err != nil {
		return err
	}
	if c.json {
		keys := res.Keys
		if keys == nil {
			keys = []string{}
		}
		return writeJSON(c.out(), resultJSON{Migration: m.Name(), Clean: res.Clean(), Digest: res.Digest.String(),
			Rows: res.Rows, NewRows: res.NewRows, Chunks: res.Chunks, Drilled: res.Drilled, Differences: res.Differences,
			Missing: res.Missing, Extra: res.Extra, Changed: res.Changed, Keys: keys, Started: res.Started.UTC(),
			DurationSeconds: seconds(res.Duration), Repaired: spec.Repair})
	}
	verdict := "clean"
	if !res.Clean() {
		verdict = "NOT CLEAN"
	}
	w := c.out()
	fmt.Fprintf(w, "%s: verified %s: %s (%d in the new store), %s, %s, %s\n", m.Name(), verdict,
		plural(res.Rows, "row", "rows"), res.NewRows, plural(res.Differences, "difference", "differences"), plural(res.Chunks, "chunk", "chunks"), short(res.Duration))
	if res.Differences == 0 {
		return nil
	}
	fmt.Fprintf(w, "missing in the new store %d, only in the new store %d, values differ %d\n", res.Missing, res.Extra, res.Changed)
	if len(res.Keys) > 0 {
		quoted := make([]string, len(res.Keys))
		for i, k := range res.Keys {
			quoted[i] = strconv.Quote(k)
		}
		more := ""
		if n := res.Differences - int64(len(res.Keys)); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		fmt.Fprintf(w, "keys: %s%s\n", strings.Join(quoted, " "), more)
	}
	if spec.Repair {
		fmt.Fprintf(w, "recorded %s in the repair log\n", plural(res.Differences, "key", "keys"))
	} else {
		fmt.Fprintln(w, "the keys were not recorded in the repair log; run again with --repair to record them")
	}
	return nil
}
