//go:build unix && !linux

package activities

import "syscall"

// applyProcAttr puts the apply in a process group of its own (see the Linux
// version). Outside Linux there is no parent-death signal: an apply
// outlives a worker that is killed.
func applyProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
