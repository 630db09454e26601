package workflows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/worker"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// ssoWorkerConfig is the worker's config in the SSO tests: alice requests,
// lena is a local account, and provider group idp-platform makes approvers
// of the platform group.
const ssoWorkerConfig = `users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver]}
  - {id: lena, email: lena@example.com, source: local, groups: [platform], roles: [approver], token: t-lena}
oidc:
  issuer: https://idp.example.com
  client_id: gatehouse
  client_secret: s
  redirect_url: https://gatehouse.example.com/ui/oidc/callback
  groups: {idp-platform: platform}
  roles: {idp-platform: approver}
workspaces:
  - name: prod-network
`

// TestSSOActorsAreVerifiedAgainstTheMappings: with a worker whose Verify is
// its config's, an SSO person who is no config user counts when their groups
// and roles are ones the oidc mappings give; one with a group no mapping
// gives, or claiming a local account's id, is refused by the validator
// (nothing reaches history), however well the gateway signed it.
func TestSSOActorsAreVerifiedAgainstTheMappings(t *testing.T) {
	cfg, err := config.Parse([]byte(ssoWorkerConfig))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, workflows.Runner{Keys: testKeys, Verify: cfg.Verify})

	sso := func(id string, groups []string, roles ...approval.Role) approval.Identity {
		return approval.Identity{ID: approval.UserID(id), Email: id, Source: approval.SourceSSO, Groups: groups, Roles: roles}
	}
	nick := sso("nick@example.com", []string{"platform"}, approval.RoleApprover)
	olga := sso("olga@example.com", []string{"platform"}, approval.RoleApprover)
	approve := workflows.UpdateApprove
	unmapped := h.update(time.Minute, approve, "u-unmapped", approval.Request{Actor: sso("mallory@example.com", []string{"platform", "finance"}, approval.RoleApprover)})
	local := h.update(2*time.Minute, approve, "u-lena", approval.Request{Actor: sso("lena", []string{"platform"}, approval.RoleApprover)})
	automation := h.update(3*time.Minute, approve, "u-bot", approval.Request{Actor: approval.Identity{ID: "bot", Source: approval.SourceSSO, Automation: true, Groups: []string{"platform"}}})
	first := h.update(4*time.Minute, approve, "u-nick", approval.Request{Actor: nick})
	second := h.update(5*time.Minute, approve, "u-olga", approval.Request{Actor: olga})
	d := input(destroysNeedTwo)
	d.Directory = []approval.Identity{alice}
	got := h.run(d)

	for name, o := range map[string]*outcome{"unmapped group": unmapped, "local id": local, "automation": automation} {
		if !o.rejected || errType(o.err) != string(approval.CodeForbidden) || !strings.Contains(o.err.Error(), "actor: ") {
			t.Errorf("%s: %v (rejected %v); want refused by the validator as a forbidden actor", name, o.err, o.rejected)
		}
	}
	if first.err != nil || second.err != nil {
		t.Fatalf("SSO approvals: %v, %v; want both counted", first.err, second.err)
	}
	if got.Status != approval.StatusApplied || len(h.applies) != 1 {
		t.Errorf("status %s with %d applies; want applied once", got.Status, len(h.applies))
	}
	if len(got.Decisions) != 2 || got.Decisions[0].Source != approval.SourceSSO || got.Decisions[1].UserID != olga.ID {
		t.Errorf("decisions %+v; want nick's and olga's, as SSO", got.Decisions)
	}
}

// newHarnessWith is newHarness with the worker's runner given.
func newHarnessWith(t *testing.T, runner workflows.Runner) *harness {
	t.Helper()
	h := &harness{t: t, env: newEnv()}
	acts := &activities.Activities{}
	worker.Register(h.env, runner, acts)
	onNotify(h.env, acts, notifyOK)
	h.env.OnActivity(acts.Apply, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ApplyInput) (approval.ApplyResult, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.applies = append(h.applies, in)
			return approval.ApplyResult{Executed: true}, nil
		})
	return h
}
