package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

// actionsConfig is a minimal valid configuration whose one rule selects the
// given actions.
func actionsConfig(actions string) []byte {
	return []byte(`users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: dev-alice}
workspaces:
  - name: ws
    rules:
      - name: r
        when: {actions: ` + actions + `}
        approvers: {users: [alice]}
`)
}

// The plan parser reports forgets, imports, moves and action invocations;
// rules must be able to select them.
func TestParseNewActions(t *testing.T) {
	for _, tc := range []struct {
		actions string
		want    []approval.Action
	}{
		{"[forget, import, move, invoke]", []approval.Action{approval.ActionForget, approval.ActionImport, approval.ActionMove, approval.ActionInvoke}},
		{"[" + joinActions(approval.Actions) + "]", approval.Actions},
	} {
		t.Run(tc.actions, func(t *testing.T) {
			c, err := config.Parse(actionsConfig(tc.actions))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			ws, ok := c.Workspace("ws")
			if !ok || len(ws.Rules) != 1 {
				t.Fatalf("workspace ws with one rule not found in %+v", c.Workspaces)
			}
			if got := ws.Rules[0].When.Actions; !slices.Equal(got, tc.want) {
				t.Errorf("actions %q; want %q", got, tc.want)
			}
		})
	}
}

func TestParseRefusesUnknownAction(t *testing.T) {
	_, err := config.Parse(actionsConfig("[forget, forgot]"))
	if err == nil || !strings.Contains(err.Error(), `unknown action "forgot"`) {
		t.Errorf("Parse = %v; want an error naming the unknown action", err)
	}
}

func joinActions(actions []approval.Action) string {
	s := make([]string, len(actions))
	for i, a := range actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
