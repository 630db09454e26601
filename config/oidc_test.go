package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// oidcConfig is a config with SSO set up: users alice (sso, by default) and
// ci-bot (local automation) and lena (local), and two mapped groups.
const oidcConfig = `users:
  - {id: alice@example.com, email: alice@example.com, groups: [security], roles: [approver], slack_id: U0ALICE1}
  - {id: lena@example.com, email: lena@example.com, source: local, groups: [platform], roles: [approver], token: t-lena}
  - {id: ci-bot, email: ci@example.com, source: local, automation: true, token: t-ci}
public_url: https://gatehouse.example.com/
oidc:
  issuer: https://idp.example.com/
  client_id: gatehouse
  client_secret: dev-secret
  groups: {idp-platform: platform, idp-sec: security}
  roles: {idp-platform: approver, idp-admins: admin}
workspaces:
  - name: ws
`

func TestOIDCBlockDefaults(t *testing.T) {
	c := mustParse(t, oidcConfig)
	o := c.OIDC
	if o == nil {
		t.Fatal("OIDC = nil")
	}
	if o.Issuer != "https://idp.example.com/" || o.RedirectURL != "https://gatehouse.example.com/ui/oidc/callback" {
		t.Errorf("issuer, redirect = %q, %q", o.Issuer, o.RedirectURL)
	}
	if !slices.Equal(o.Scopes, []string{"openid", "email", "profile"}) || o.UsernameClaim != "email" || o.GroupsClaim != "groups" {
		t.Errorf("scopes, claims = %q, %q, %q", o.Scopes, o.UsernameClaim, o.GroupsClaim)
	}
	if o.ClientSecret != "dev-secret" || o.Roles["idp-admins"] != approval.RoleAdmin {
		t.Errorf("secret %q, roles %v", o.ClientSecret, o.Roles)
	}
	without := mustParse(t, baseUsers+baseWorkspaces)
	if without.OIDC != nil {
		t.Errorf("OIDC without a block = %+v", without.OIDC)
	}
	// The block is part of what the config means.
	other := mustParse(t, strings.Replace(oidcConfig, "idp-sec: security", "idp-sec: platform", 1))
	if other.Version == c.Version {
		t.Error("changing a group mapping kept the version")
	}
}

func TestOIDCBlockProblems(t *testing.T) {
	src := `users: []
oidc:
  client_secret: s
  client_secret_env: X
  scopes: ["a b"]
  groups: {g: ""}
  roles: {r: boss}
workspaces:
  - name: ws
`
	checkProblems(t, problemsOf(t, src), []Problem{
		{Path: "oidc.issuer", Message: "required"},
		{Path: "oidc.client_id", Message: "required"},
		{Path: "oidc", Message: "only one of client_secret and client_secret_env"},
		{Path: "oidc.redirect_url", Message: "required without public_url"},
		{Path: "oidc.scopes[0]", Message: "not a scope"},
		{Path: "oidc.groups.g", Message: "must name"},
		{Path: "oidc.roles.r", Message: `unknown role "boss"`},
	})
	// The secret from the environment, and that variable kept from apply
	// commands like every secret's.
	t.Setenv("GH_OIDC_SECRET", "from-env")
	c, err := Parse([]byte(strings.Replace(oidcConfig, "client_secret: dev-secret", "client_secret_env: GH_OIDC_SECRET", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.OIDC.ClientSecret != "from-env" {
		t.Errorf("secret = %q", c.OIDC.ClientSecret)
	}
	_, err = Parse([]byte(strings.Replace(oidcConfig, "client_secret: dev-secret", "client_secret_env: GH_OIDC_SECRET", 1) +
		"    apply: {command: [x], env_from: [GH_OIDC_SECRET]}\n"))
	if err == nil || !strings.Contains(err.Error(), "env_from[0]") {
		t.Errorf("apply given the client secret's variable: %v", err)
	}
}

func TestResolveSSO(t *testing.T) {
	c := mustParse(t, oidcConfig)
	cases := []struct {
		name   string
		claims Claims
		want   approval.Identity
		slack  string
		refuse string
	}{
		{name: "mapped groups and roles, unmapped dropped, sorted once each",
			claims: Claims{"email": "Nick@Example.com", "email_verified": true, "groups": []any{"idp-sec", "idp-platform", "idp-sec", "unmapped", 7}},
			want:   approval.Identity{ID: "nick@example.com", Email: "Nick@Example.com", Source: approval.SourceSSO, Groups: []string{"platform", "security"}, Roles: []approval.Role{approval.RoleApprover}}},
		{name: "no groups claim: nobody in particular",
			claims: Claims{"email": "nick@example.com"},
			want:   approval.Identity{ID: "nick@example.com", Email: "nick@example.com", Source: approval.SourceSSO}},
		{name: "a single group as a string",
			claims: Claims{"email": "nick@example.com", "groups": "idp-admins"},
			want:   approval.Identity{ID: "nick@example.com", Email: "nick@example.com", Source: approval.SourceSSO, Roles: []approval.Role{approval.RoleAdmin}}},
		{name: "an SSO config user adds their own",
			claims: Claims{"email": "alice@example.com", "groups": []any{"idp-platform"}},
			want:   approval.Identity{ID: "alice@example.com", Email: "alice@example.com", Source: approval.SourceSSO, Groups: []string{"platform", "security"}, Roles: []approval.Role{approval.RoleApprover}},
			slack:  "U0ALICE1"},
		{name: "a local user is someone else", claims: Claims{"email": "lena@example.com", "groups": []any{"idp-platform"}}, refuse: "local account"},
		{name: "an automation user is never SSO", claims: Claims{"email": "ci-bot"}, refuse: "automation"},
		{name: "unverified email as the username", claims: Claims{"email": "nick@example.com", "email_verified": false}, refuse: "not verified"},
		{name: "no username", claims: Claims{"groups": []any{"idp-admins"}}, refuse: "no email claim"},
		{name: "a username that is no id", claims: Claims{"email": "nick smith"}, refuse: "not a valid Gatehouse user id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := c.ResolveSSO(tc.claims)
			if tc.refuse != "" {
				if !errors.Is(err, ErrSSORefused) || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("ResolveSSO = %+v, %v; want refused with %q", u, err, tc.refuse)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !u.Identity.Same(tc.want) || u.SlackID != tc.slack || u.Automation || u.TokenSHA256 != "" {
				t.Errorf("ResolveSSO = %+v; want %+v (slack %q)", u, tc.want, tc.slack)
			}
			// Whatever the gateway resolves, the worker accepts.
			if err := c.Verify(u.Identity); err != nil {
				t.Errorf("Verify(resolved) = %v", err)
			}
		})
	}
}

func TestResolveSSOOtherUsernameClaim(t *testing.T) {
	c := mustParse(t, strings.Replace(oidcConfig, "client_id: gatehouse", "client_id: gatehouse\n  username_claim: preferred_username", 1))
	u, err := c.ResolveSSO(Claims{"preferred_username": "nick", "email": "nick@example.com", "email_verified": false})
	if err != nil {
		t.Fatal(err)
	}
	// An unverified address is not the username here: dropped, not trusted.
	if u.ID != "nick" || u.Email != "" {
		t.Errorf("ResolveSSO = %+v; want id nick without the unverified email", u)
	}
}

func TestVerifySSOActors(t *testing.T) {
	c := mustParse(t, oidcConfig)
	sso := func(id string, groups []string, roles ...approval.Role) approval.Identity {
		return approval.Identity{ID: approval.UserID(id), Email: id, Source: approval.SourceSSO, Groups: groups, Roles: roles}
	}
	lena, _ := c.User("lena@example.com")
	cases := []struct {
		name string
		id   approval.Identity
		ok   bool
	}{
		{"a config user as configured", lena.Identity, true},
		{"an SSO user with mapped groups", sso("nick@example.com", []string{"platform"}, approval.RoleApprover), true},
		{"an SSO user with a group no mapping gives", sso("nick@example.com", []string{"finance"}), false},
		{"an SSO user with a role no mapping gives", sso("nick@example.com", nil, approval.RoleViewer), false},
		{"a local user's id as SSO", sso("lena@example.com", []string{"platform"}, approval.RoleApprover), false},
		{"a local source not in the config", approval.Identity{ID: "nick@example.com", Source: approval.SourceLocal}, false},
		{"automation via SSO", approval.Identity{ID: "nick@example.com", Source: approval.SourceSSO, Automation: true}, false},
		{"a config SSO user with their own and mapped groups", approval.Identity{ID: "alice@example.com", Email: "alice@example.com", Source: approval.SourceSSO,
			Groups: []string{"platform", "security"}, Roles: []approval.Role{approval.RoleAdmin, approval.RoleApprover}}, true},
		{"a config SSO user with another email", approval.Identity{ID: "alice@example.com", Email: "mallory@example.com", Source: approval.SourceSSO}, false},
	}
	for _, tc := range cases {
		if err := c.Verify(tc.id); (err == nil) != tc.ok {
			t.Errorf("%s: Verify = %v; want ok %v", tc.name, err, tc.ok)
		}
	}
	// Without an oidc block only config users are anyone.
	plain := mustParse(t, baseUsers+baseWorkspaces)
	if err := plain.Verify(sso("nick@example.com", []string{"platform"})); err == nil {
		t.Error("Verify accepted an SSO identity without an oidc block")
	}
}

// TestOIDCGroupsNeedNoConfigUsers: a rule may name a group only the
// provider fills, and the config does not warn about how few are in it.
func TestOIDCGroupsNeedNoConfigUsers(t *testing.T) {
	src := strings.Replace(oidcConfig, "  - name: ws\n", `  - name: ws
    rules:
      - {name: two-platform, approvers: {groups: [platform]}, min_approvals: 2}
      - {name: two-security, approvers: {users: [alice@example.com]}, min_approvals: 2}
`, 1)
	src = strings.Replace(src, "groups: [platform], roles: [approver], token: t-lena", "roles: [approver], token: t-lena", 1)
	c := mustParse(t, src)
	w := c.Warnings()
	if len(w) != 1 || !strings.Contains(w[0].Path, "rules[1]") {
		t.Errorf("warnings %v; want only the rule of config users", w)
	}
}

func TestTrustedProxies(t *testing.T) {
	c := mustParse(t, baseUsers+"trusted_proxies: [10.0.0.0/8, 192.0.2.7, \"2001:db8::/32\", 10.1.2.3/8]\n"+baseWorkspaces)
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "10.0.0.0/8"}; !slices.Equal(got, want) {
		t.Errorf("trusted proxies %q; want %q", got, want)
	}
	checkProblems(t, problemsOf(t, baseUsers+"trusted_proxies: [proxy.internal]\n"+baseWorkspaces), []Problem{
		{Path: "trusted_proxies[0]", Message: "neither an IP address nor a CIDR prefix"},
	})
}
