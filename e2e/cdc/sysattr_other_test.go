//go:build !linux

package cdc

import "syscall"

// childAttr returns nil: a child notices that its parent died when its
// stdin reaches end of file.
func childAttr() *syscall.SysProcAttr { return nil }
