package approval

import "testing"

func TestIdentitySameNeedsEveryRightEqual(t *testing.T) {
	base := Identity{ID: "bob", Email: "bob@example.com", Source: SourceSSO, Groups: []string{"platform"}, Roles: []Role{RoleApprover}}
	if !base.Same(base) {
		t.Fatal("an identity is not the same as itself")
	}
	for name, other := range map[string]func(Identity) Identity{
		"id":         func(i Identity) Identity { i.ID = "bobby"; return i },
		"email":      func(i Identity) Identity { i.Email = "b@example.com"; return i },
		"source":     func(i Identity) Identity { i.Source = SourceLocal; return i },
		"automation": func(i Identity) Identity { i.Automation = true; return i },
		"groups":     func(i Identity) Identity { i.Groups = []string{"platform", "security"}; return i },
		"roles":      func(i Identity) Identity { i.Roles = []Role{RoleAdmin}; return i },
	} {
		if base.Same(other(base)) {
			t.Errorf("another %s is still the same identity", name)
		}
	}
}
