// Package ddlstall holds a test, and nothing else, that measures how long
// writers stall while a schema change runs on a table under load: each
// lock-safe recipe of docs/lock-safety.md against the naive statement it
// replaces, on real PostgreSQL and MariaDB servers, run through
// expandcontract moves as a service would run them.
//
// TestDDLStall prints one table (t.Log): for each database, change and
// variant, how long the statements ran, the longest write any writer saw
// while they ran, the p99 write latency over that window, the writers'
// operations and failures, and whether the move succeeded. It asserts only
// facts: the recipes' moves succeed, no writer operation fails while a
// recipe runs, lockcheck refuses each naive statement without its
// override, and no row is lost. Timings are read from the table, never
// checked: CI runs on a loaded two-core machine.
//
// CUTOVER_STALL_ROWS sets the rows of the table (default 100000) and
// CUTOVER_STALL_WRITERS the writers (default 4). docs/lock-safety.md
// ("Measured under load") has a table measured with a million rows.
package ddlstall
