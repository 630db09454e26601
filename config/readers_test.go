package config

import (
	"reflect"
	"testing"

	"github.com/gatehouse-dev/gatehouse/approval"
)

func TestReadersAreValidatedLikePeople(t *testing.T) {
	got := problemsOf(t, baseUsers+`workspaces:
  - name: ws
    readers: {users: [alice, nobody], groups: [ghosts], roles: [viewer, boss]}
`)
	want := []Problem{
		{"workspaces[0].readers.users[1]", `unknown user "nobody"`},
		{"workspaces[0].readers.groups[0]", `no user is in group "ghosts"`},
		{"workspaces[0].readers.roles[1]", `unknown role "boss" (want approver, admin or viewer)`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}

func TestCanRead(t *testing.T) {
	c := mustParse(t, `users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: a}
  - {id: bob, email: bob@example.com, groups: [security], roles: [approver], token: b}
  - {id: carol, email: carol@example.com, roles: [approver], token: c}
  - {id: dave, email: dave@example.com, roles: [approver], token: d}
  - {id: erin, email: erin@example.com, roles: [admin], token: e}
  - {id: vic, email: vic@example.com, roles: [viewer], token: v}
  - {id: olga, email: olga@example.com, groups: [oncall], roles: [approver], token: o}
  - {id: nora, email: nora@example.com, roles: [approver], token: n}
workspaces:
  - name: ws
    readers: {users: [dave]}
    steps:
      - {name: window, stage: pre_apply, approvers: {groups: [security]}}
    rules:
      - {name: r, approvers: {groups: [platform]}, escalate_after: 1h, escalate_to: {groups: [oncall]}}
      - {name: s, approvers: {users: [carol]}}
`)
	ws, _ := c.Workspace("ws")
	for _, tc := range []struct {
		id   approval.UserID
		want bool
	}{
		{"alice", true}, // a rule's group
		{"bob", true},   // a step's group
		{"carol", true}, // a rule's user
		{"dave", true},  // readers
		{"erin", true},  // admin
		{"vic", true},   // viewer
		{"olga", true},  // an escalation's group
		{"nora", false}, // named nowhere
	} {
		u, _ := c.User(tc.id)
		if got := ws.CanRead(u.Identity); got != tc.want {
			t.Errorf("CanRead(%s) = %v; want %v", tc.id, got, tc.want)
		}
		if got := c.Readable(u.Identity); (len(got) == 1 && got[0] == "ws") != tc.want || got == nil {
			t.Errorf("Readable(%s) = %#v; want [ws] exactly when CanRead, never nil", tc.id, got)
		}
	}
}
