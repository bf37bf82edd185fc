package expandcontract

import "context"

// OpenAs runs what Open runs on the tables of s as a library that knows
// only the schema version given would.
func OpenAs(ctx context.Context, s *Store, version int64) error { return s.m.Migrate(ctx, version) }
