package approval

import (
	"fmt"
	"slices"
	"time"
)

// PolicyRequirement is an approval a policy asks for (a Rego
// require_approval entry).
type PolicyRequirement struct {
	Name         string    `json:"name"`
	Approvers    Approvers `json:"approvers"`
	MinApprovals int       `json:"min_approvals"`
	Stage        Stage     `json:"stage,omitempty"`
	// Policy is the policy file that asked for it.
	Policy string `json:"policy,omitempty"`
}

// PolicyResult is what the workspace's policies said about a plan. It is
// shown to approvers with the request. Error means the policies could not be
// evaluated: the run fails closed.
type PolicyResult struct {
	Policies     []string            `json:"policies"`
	Denials      []string            `json:"denials,omitempty"`
	Warnings     []string            `json:"warnings,omitempty"`
	Requirements []PolicyRequirement `json:"requirements,omitempty"`
	Error        string              `json:"error,omitempty"`
	EvaluatedAt  time.Time           `json:"evaluated_at"`
	PlanSHA256   string              `json:"plan_sha256"`
}

// Check reports the first requirement that cannot become a reason.
func (p PolicyResult) Check() error {
	seen := map[string]bool{}
	for i, req := range p.Requirements {
		switch {
		case req.Name == "":
			return fmt.Errorf("require_approval[%d]: missing name", i)
		case seen[req.Name]:
			return fmt.Errorf("require_approval[%d]: name %q used twice", i, req.Name)
		case req.Approvers.Empty():
			return fmt.Errorf("require_approval[%d] (%s): no approvers", i, req.Name)
		case slices.Contains(req.Approvers.Roles, RoleViewer):
			return fmt.Errorf("require_approval[%d] (%s): viewers may not approve", i, req.Name)
		case req.MinApprovals < 0:
			return fmt.Errorf("require_approval[%d] (%s): min_approvals must be at least 1", i, req.Name)
		case req.Stage != "" && !req.Stage.Valid():
			return fmt.Errorf("require_approval[%d] (%s): unknown stage %q", i, req.Name, req.Stage)
		}
		seen[req.Name] = true
	}
	return nil
}

// PolicyReasons turns a policy result's requirements into waiting policy
// reasons, timed like the workspace's.
func PolicyReasons(ws Workspace, plan PlanSummary, res PolicyResult, requester Identity, directory []Identity) []Reason {
	everything := plan.ChangesDigest
	var out []Reason
	for _, req := range res.Requirements {
		out = append(out, newReason(ws, KindPolicy, req.Name, req.Stage, req.Approvers, req.MinApprovals, false, Timing{}, everything, requester, directory))
	}
	return out
}

// ApplyPolicy records what the policies said and moves the run on: a denial
// or an evaluation error ends it policy_failed before anyone is asked;
// otherwise the policy reasons join the run (keeping the approvals of a
// previous round's identical policy reasons) and its first stage opens. A
// result that arrives after the run was decided (cancelled while its
// policies ran) changes nothing: it is a conflict.
func (r *Run) ApplyPolicy(res PolicyResult, fresh []Reason, now time.Time) error {
	if err := r.checkStatus("record a policy result", StatusEvaluatingPolicy); err != nil {
		return err
	}
	res.EvaluatedAt = now
	res.PlanSHA256 = r.Plan.SHA256
	r.Policy = &res
	r.UpdatedAt = now
	if res.Error == "" {
		if err := res.Check(); err != nil {
			r.Policy.Error = err.Error()
		}
	}
	if r.Policy.Error != "" || len(res.Denials) > 0 {
		r.closeOpenReasons()
		r.Status = StatusPolicyFailed
		return nil
	}
	round := &r.Rounds[len(r.Rounds)-1]
	var kept []Reason
	old := map[string]Reason{}
	for _, reason := range r.Reasons {
		if reason.Kind == KindPolicy {
			old[reason.ID] = reason
		} else {
			kept = append(kept, reason)
		}
	}
	for i := range fresh {
		f := &fresh[i]
		prev, ok := old[f.ID]
		switch {
		case !ok:
			round.Added = append(round.Added, f.ID)
		case sameInputs(prev, *f):
			f.Approvals = prev.Approvals
			if f.Count() >= f.Required {
				f.State = ReasonApproved
			}
			round.Kept = append(round.Kept, f.ID)
		default:
			round.Reset = append(round.Reset, f.ID)
		}
		delete(old, f.ID)
	}
	for _, reason := range r.Reasons {
		if _, gone := old[reason.ID]; gone {
			round.Dropped = append(round.Dropped, reason.ID)
		}
	}
	r.Reasons = append(kept, fresh...)
	SortReasons(r.Reasons)
	r.advance(now, true)
	return nil
}
