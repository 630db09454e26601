package cli

import (
	"errors"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// Exit codes. A pipeline branches on them, so they never change meaning;
// new ones are added at the end of their block.
const (
	ExitOK      = 0 // approved (gate-only workspace) or applied; verified
	ExitGeneric = 1 // usage, network, API or file errors

	// How the run ended (wait, start --wait).
	ExitRejected       = 2
	ExitCancelled      = 3
	ExitTimedOut       = 4 // the run's approval deadline passed
	ExitFailed         = 5 // the apply failed, or the run was refused before it
	ExitPolicyFailed   = 6
	ExitPlanFailed     = 7
	ExitNoChanges      = 8
	ExitSuperseded     = 9
	ExitOutcomeUnknown = 10
	ExitTerminated     = 11
	ExitWaitTimeout    = 12 // --timeout elapsed; the run goes on

	// Why an approval did not verify (verify).
	ExitBadSignature   = 20
	ExitPlanMismatch   = 21
	ExitWrongWorkspace = 22
)

// RunExitCode is the exit code of wait for a done run in status.
func RunExitCode(status approval.Status) int {
	switch status {
	case approval.StatusApplied, approval.StatusApproved:
		return ExitOK
	case approval.StatusRejected:
		return ExitRejected
	case approval.StatusCancelled:
		return ExitCancelled
	case approval.StatusTimedOut:
		return ExitTimedOut
	case approval.StatusFailed:
		return ExitFailed
	case approval.StatusPolicyFailed:
		return ExitPolicyFailed
	case approval.StatusPlanFailed:
		return ExitPlanFailed
	case approval.StatusNoChanges:
		return ExitNoChanges
	case approval.StatusSuperseded:
		return ExitSuperseded
	case approval.StatusOutcomeUnknown:
		return ExitOutcomeUnknown
	case approval.StatusTerminated:
		return ExitTerminated
	}
	return ExitGeneric
}

// exitCodesHelp is the table of --help of wait and start.
const exitCodesHelp = `Exit codes:
   0  approved (gate-only workspace) or applied
   1  error: usage, network, API, files
   2  rejected
   3  cancelled
   4  timed_out (the run's approval deadline passed)
   5  failed
   6  policy_failed
   7  plan_failed
   8  no_changes
   9  superseded
  10  outcome_unknown
  11  terminated
  12  --timeout elapsed before the run was done (the run goes on)`

// ExitError ends the process with Code. Err says why; nil when the verb has
// already told the user (a rejected run is reported by wait's output).
type ExitError struct {
	Code int
	Err  error
	// printed: the verb wrote its JSON object, error included, already.
	printed bool
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Exit returns the process's exit code for a verb's error and the message
// to print on stderr ("" when there is none to print).
func Exit(err error) (int, string) {
	if err == nil {
		return ExitOK, ""
	}
	var e *ExitError
	if errors.As(err, &e) {
		if e.Err == nil {
			return e.Code, ""
		}
		return e.Code, e.Err.Error()
	}
	return ExitGeneric, err.Error()
}

// usageErrorf is a mistake in how a verb was called.
func usageErrorf(format string, args ...any) error {
	return &ExitError{Code: ExitGeneric, Err: fmt.Errorf(format, args...)}
}
