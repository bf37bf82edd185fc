package testdb

// GroupAlive lets the external tests check that a server's processes are
// gone.
var GroupAlive = groupAlive
