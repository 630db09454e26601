package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// PoliciesInput is what EvaluatePolicies needs: the policy input and the
// digest of the plan's changes, which policy reasons fingerprint.
type PoliciesInput struct {
	PolicyInput
	ChangesDigest string `json:"changes_digest,omitempty"`
}

// PolicyOutcome is what the policies said and the reasons their
// requirements become, with their approvers expanded against the worker's
// directory: the workflow carries no copy of it.
type PolicyOutcome struct {
	Result  approval.PolicyResult `json:"result"`
	Reasons []approval.Reason     `json:"reasons,omitempty"`
}

// EvaluatePolicies evaluates the workspace's policies (EvaluatePolicy) and
// turns their requirements into policy reasons.
func (a *Activities) EvaluatePolicies(ctx context.Context, in PoliciesInput) (PolicyOutcome, error) {
	res, err := a.EvaluatePolicy(ctx, in.PolicyInput)
	if err != nil {
		return PolicyOutcome{}, err
	}
	ws, ok := a.Config.Workspace(in.Workspace)
	if !ok {
		return PolicyOutcome{}, workspaceUnknown(in.Workspace)
	}
	requester := approval.Identity{ID: approval.UserID(in.RequestedBy)}
	if u, ok := a.Config.User(requester.ID); ok {
		requester = u.Identity
	}
	plan := approval.PlanSummary{SHA256: in.PlanSHA256, ChangesDigest: in.ChangesDigest}
	return PolicyOutcome{
		Result:  res,
		Reasons: approval.PolicyReasons(ws.Workspace, plan, res, requester, a.Config.Directory()),
	}, nil
}

func workspaceUnknown(name string) error {
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("workspace %q is not configured on this worker", name), ErrWorkspaceUnknown, nil)
}
