//go:build !linux

package testdb

import "syscall"

// childAttr returns the process attributes of every child: it runs in its
// own process group, so that the group can be killed as a whole, and as
// cred if that is not nil. Outside Linux there is no parent-death signal:
// a server outlives a test binary that dies without stopping it.
func childAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}

// groupAlive reports whether any process, zombies included, is in process
// group pgid.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}
