package activities

import "syscall"

// applyProcAttr puts the apply in a process group of its own, so a
// terminal's Ctrl-C reaches the worker, which decides, and not the apply
// directly, and cancellation signals the whole group. Pdeathsig makes the
// apply stop when the worker dies (SIGKILL, OOM): nobody would be left to
// record its outcome or to stop it. The signal is SIGINT, Terraform's
// graceful stop, so a dying worker does not also cost the state file or
// leave the state lock held. It reaches the direct child only: an apply
// script should exec terraform, or pass the signal on.
func applyProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT}
}
