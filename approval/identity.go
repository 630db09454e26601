// Package approval holds Gatehouse's domain: who may decide what on a run,
// how rules turn a plan into approval reasons, and how decisions move a run
// through its lifecycle. It is pure Go: no Temporal, no I/O, no clock. Callers
// pass the current time and the actor in and get a decision or a typed error
// out, so the same checks run in the gateway (to answer early) and in the
// workflow's Update validators (to decide for real).
package approval

import "slices"

// UserID names a Gatehouse user as configured.
type UserID string

// Role is a coarse permission a user holds.
type Role string

// The roles. A role grants approval only where a rule lists it; admin adds the
// right to cancel any run; viewer may look but neither approve nor cancel.
const (
	RoleApprover Role = "approver"
	RoleAdmin    Role = "admin"
	RoleViewer   Role = "viewer"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleApprover, RoleAdmin, RoleViewer:
		return true
	}
	return false
}

// Source says which identity provider vouches for a user. An SSO account and a
// local account are different people to Gatehouse even when they share an
// email address.
type Source string

// The identity sources.
const (
	SourceSSO   Source = "sso"
	SourceLocal Source = "local"
)

// Valid reports whether s is one of the known sources.
func (s Source) Valid() bool { return s == SourceSSO || s == SourceLocal }

// Identity is a user as the gateway resolved them when they acted: the
// groups and roles they held at that moment decide their eligibility.
type Identity struct {
	ID     UserID   `json:"id"`
	Email  string   `json:"email,omitempty"`
	Source Source   `json:"source,omitempty"`
	Groups []string `json:"groups,omitempty"`
	Roles  []Role   `json:"roles,omitempty"`
	// Automation marks a service account (a CI pipeline, a bot). Only
	// automation may submit runs on behalf of a person.
	Automation bool `json:"automation,omitempty"`
}

// Same reports whether i and o are the same person with the same rights:
// id, email, source, automation, groups and roles all equal.
func (i Identity) Same(o Identity) bool {
	return i.ID == o.ID && i.Email == o.Email && i.Source == o.Source && i.Automation == o.Automation &&
		slices.Equal(i.Groups, o.Groups) && slices.Equal(i.Roles, o.Roles)
}

// HasRole reports whether the identity holds role r.
func (i Identity) HasRole(r Role) bool { return slices.Contains(i.Roles, r) }

// InGroup reports whether the identity is a member of group g.
func (i Identity) InGroup(g string) bool { return slices.Contains(i.Groups, g) }

// Approvers names who is eligible for a rule: any listed user, any member of a
// listed group, any holder of a listed role. A person matching several entries
// is still one approver.
type Approvers struct {
	Users  []UserID `json:"users,omitempty"`
	Groups []string `json:"groups,omitempty"`
	Roles  []Role   `json:"roles,omitempty"`
}

// Includes reports whether the identity matches any entry.
func (a Approvers) Includes(id Identity) bool {
	if slices.Contains(a.Users, id.ID) {
		return true
	}
	for _, g := range a.Groups {
		if id.InGroup(g) {
			return true
		}
	}
	for _, r := range a.Roles {
		if id.HasRole(r) {
			return true
		}
	}
	return false
}

// Empty reports whether no one at all is named.
func (a Approvers) Empty() bool {
	return len(a.Users) == 0 && len(a.Groups) == 0 && len(a.Roles) == 0
}

// Expand lists, in directory order, the users of the directory that a
// approver spec names, but viewers, who never decide. It is used to show who
// is being waited for and whom to notify; eligibility itself is decided by
// Includes and the role matrix at decision time.
func (a Approvers) Expand(directory []Identity) []UserID {
	var out []UserID
	for _, id := range directory {
		if a.Includes(id) && !id.HasRole(RoleViewer) && !slices.Contains(out, id.ID) {
			out = append(out, id.ID)
		}
	}
	return out
}
