package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// This file holds single sign-on: the oidc block (which identity provider
// the web UI signs people in with, and how its groups become Gatehouse's),
// the one function that turns an ID token's claims into an SSO identity, and
// the check the worker runs on the actors of decisions.

// The defaults of the oidc block.
const (
	DefaultUsernameClaim = "email"
	DefaultGroupsClaim   = "groups"
	// OIDCCallbackPath is where the identity provider sends the browser
	// back; the redirect_url defaults to public_url + this.
	OIDCCallbackPath = "/ui/oidc/callback"
)

// DefaultOIDCScopes are asked for when the block names none.
var DefaultOIDCScopes = []string{"openid", "email", "profile"}

// OIDC is the identity provider the web UI signs people in with.
type OIDC struct {
	// Issuer is the provider's issuer URL exactly as its discovery
	// document and its ID tokens' iss claim give it (a trailing slash
	// matters).
	Issuer   string
	ClientID string
	// ClientSecret is the value of client_secret_env (or, in development,
	// client_secret); never "".
	ClientSecret string
	// RedirectURL is the callback registered with the provider.
	RedirectURL string
	// Scopes always include openid.
	Scopes []string
	// UsernameClaim names the claim that becomes the user's id;
	// GroupsClaim the claim listing the user's groups at the provider.
	UsernameClaim string
	GroupsClaim   string
	// Groups maps a provider group to the Gatehouse group its members are
	// in; Roles a provider group to the role its members hold. Provider
	// groups that neither names give nothing.
	Groups map[string]string
	Roles  map[string]approval.Role
}

// rawOIDC is the oidc block as written.
type rawOIDC struct {
	Issuer          string            `yaml:"issuer"`
	ClientID        string            `yaml:"client_id"`
	ClientSecret    string            `yaml:"client_secret"`
	ClientSecretEnv string            `yaml:"client_secret_env"`
	RedirectURL     string            `yaml:"redirect_url"`
	Scopes          []string          `yaml:"scopes"`
	UsernameClaim   string            `yaml:"username_claim"`
	GroupsClaim     string            `yaml:"groups_claim"`
	Groups          map[string]string `yaml:"groups"`
	Roles           map[string]string `yaml:"roles"`
}

// oidc validates the oidc block; nil when there is none. publicURL is the
// validated public_url, the default redirect's base.
func (v *validator) oidc(ro *rawOIDC, publicURL string) *OIDC {
	if ro == nil {
		return nil
	}
	o := &OIDC{
		Issuer: ro.Issuer, ClientID: ro.ClientID, RedirectURL: ro.RedirectURL,
		UsernameClaim: ro.UsernameClaim, GroupsClaim: ro.GroupsClaim,
		Groups: map[string]string{}, Roles: map[string]approval.Role{},
	}
	switch {
	case ro.Issuer == "":
		v.add("oidc.issuer", "required: the identity provider's issuer URL, like https://login.example.com")
	case v.baseURL("oidc.issuer", ro.Issuer) == "":
		// reported by baseURL
	}
	if ro.ClientID == "" {
		v.add("oidc.client_id", "required: the client id the identity provider gave Gatehouse")
	}
	o.ClientSecret, _ = v.secret("oidc", "client_secret", ro.ClientSecret, ro.ClientSecretEnv)
	switch {
	case o.RedirectURL == "" && publicURL == "":
		v.add("oidc.redirect_url", "required without public_url: the URL of %s on this gateway, as registered with the provider", OIDCCallbackPath)
	case o.RedirectURL == "":
		o.RedirectURL = publicURL + OIDCCallbackPath
	default:
		v.baseURL("oidc.redirect_url", o.RedirectURL)
	}
	o.Scopes = []string{"openid"}
	scopes := ro.Scopes
	if len(scopes) == 0 {
		scopes = DefaultOIDCScopes
	}
	for i, s := range scopes {
		switch {
		case strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\r\n"):
			v.add(indexPath("oidc.scopes", i), "%q is not a scope", s)
		case !slices.Contains(o.Scopes, s):
			o.Scopes = append(o.Scopes, s)
		}
	}
	if o.UsernameClaim == "" {
		o.UsernameClaim = DefaultUsernameClaim
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = DefaultGroupsClaim
	}
	for _, k := range slices.Sorted(maps.Keys(ro.Groups)) {
		if k == "" || strings.TrimSpace(ro.Groups[k]) == "" {
			v.add("oidc.groups."+k, "must name a provider group and the Gatehouse group it maps to")
			continue
		}
		o.Groups[k] = ro.Groups[k]
	}
	for _, k := range slices.Sorted(maps.Keys(ro.Roles)) {
		r := approval.Role(ro.Roles[k])
		if k == "" || !r.Valid() {
			v.add("oidc.roles."+k, "unknown role %q (want approver, admin or viewer)", ro.Roles[k])
			continue
		}
		o.Roles[k] = r
	}
	return o
}

// Claims are the parts of an ID token's claims resolution reads. Values are
// as encoding/json decodes them (strings, bools, []any).
type Claims map[string]any

// ErrSSORefused wraps every reason ResolveSSO refuses a sign-in; its
// message is meant for the person signing in.
var ErrSSORefused = errors.New("single sign-on refused")

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSSORefused, fmt.Sprintf(format, args...))
}

// ResolveSSO turns the claims of a verified ID token into the SSO user they
// name: the id from the username claim (lower-cased, so an address's case
// does not make another person), the email, and the groups and roles the
// mappings give the provider groups listed (others are dropped: only what
// the config maps grants anything). A config user of that id contributes its
// own groups, roles, email and Slack id if it is an SSO user; a local or
// automation user of that id is another person and is never taken over.
// The result is never automation and has no token.
func (c *Config) ResolveSSO(claims Claims) (User, error) {
	o := c.OIDC
	if o == nil {
		return User{}, refused("single sign-on is not configured")
	}
	name, _ := claims[o.UsernameClaim].(string)
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return User{}, refused("the identity provider sent no %s claim", o.UsernameClaim)
	}
	if !userIDPattern.MatchString(name) {
		return User{}, refused("%q (the %s claim) is not a valid Gatehouse user id", name, o.UsernameClaim)
	}
	email, _ := claims["email"].(string)
	if verified, present := claims["email_verified"].(bool); present && !verified && email != "" {
		if o.UsernameClaim == "email" {
			return User{}, refused("the identity provider has not verified the email address %s", email)
		}
		// Not who the person is, only where to reach them: an
		// unverified address is dropped, not trusted.
		email = ""
	}
	u := User{Identity: approval.Identity{ID: approval.UserID(name), Email: email, Source: approval.SourceSSO}}
	idp := providerGroups(claims[o.GroupsClaim])
	for _, g := range idp {
		if mapped, ok := o.Groups[g]; ok {
			u.Groups = append(u.Groups, mapped)
		}
		if r, ok := o.Roles[g]; ok {
			u.Roles = append(u.Roles, r)
		}
	}
	if known, ok := c.User(u.ID); ok {
		switch {
		case known.Automation:
			return User{}, refused("%s is an automation account: it signs in with its token, not through single sign-on", u.ID)
		case known.Source != approval.SourceSSO:
			return User{}, refused("%s is a local account in Gatehouse's config, a different person from the SSO account of that name: sign in with its token", u.ID)
		}
		u.Email = known.Email
		u.SlackID = known.SlackID
		u.Groups = append(u.Groups, known.Groups...)
		u.Roles = append(u.Roles, known.Roles...)
	}
	slices.Sort(u.Groups)
	u.Groups = slices.Compact(u.Groups)
	slices.Sort(u.Roles)
	u.Roles = slices.Compact(u.Roles)
	return u, nil
}

// MappedGroups keeps, of the provider groups claimed, those the oidc block
// maps to a group or a role, sorted and once each: what a session needs to
// resolve its user again against the current config.
func (c *Config) MappedGroups(claimed any) []string {
	if c.OIDC == nil {
		return nil
	}
	var out []string
	for _, g := range providerGroups(claimed) {
		_, group := c.OIDC.Groups[g]
		_, role := c.OIDC.Roles[g]
		if group || role {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// providerGroups reads a groups claim: a list of strings, or one string.
// Anything else is no groups.
func providerGroups(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Verify checks, for the worker's Update validators, that a decision's
// actor is someone this config could have signed in: a config user exactly
// as configured, or, where single sign-on is set up, an SSO identity whose
// groups and roles are ones the mappings (and its own config entry, if it
// has one) could give. A local or automation user's id is never accepted as
// an SSO identity. The gateway's signature says the gateway authenticated
// the actor; this says the gateway and the worker agree on what that may
// mean.
func (c *Config) Verify(id approval.Identity) error {
	known, ok := c.User(id.ID)
	if ok && known.Identity.Same(id) {
		return nil
	}
	if c.OIDC == nil || id.Source != approval.SourceSSO || id.Automation {
		if ok {
			return fmt.Errorf("%s holds other groups or roles in this worker's configuration: are gateway and worker on the same config version?", id.ID)
		}
		return fmt.Errorf("%s is not a user of this worker's configuration", id.ID)
	}
	groups := slices.Collect(maps.Values(c.OIDC.Groups))
	roles := slices.Collect(maps.Values(c.OIDC.Roles))
	if ok {
		if known.Source != approval.SourceSSO || known.Automation {
			return fmt.Errorf("%s is a local or automation user of this worker's configuration, not an SSO identity", id.ID)
		}
		if id.Email != known.Email {
			return fmt.Errorf("%s has another email address in this worker's configuration", id.ID)
		}
		groups = append(groups, known.Groups...)
		roles = append(roles, known.Roles...)
	} else if !userIDPattern.MatchString(string(id.ID)) {
		return fmt.Errorf("%q is not a valid user id", id.ID)
	}
	for _, g := range id.Groups {
		if !slices.Contains(groups, g) {
			return fmt.Errorf("%s: group %s is not one this worker's oidc mappings give: are gateway and worker on the same config version?", id.ID, g)
		}
	}
	for _, r := range id.Roles {
		if !slices.Contains(roles, r) {
			return fmt.Errorf("%s: role %s is not one this worker's oidc mappings give: are gateway and worker on the same config version?", id.ID, r)
		}
	}
	return nil
}

// ssoGroups records the groups the oidc mappings give as groups with
// members: people signing in through the provider are in them, though the
// config lists none.
func ssoGroups(ro *rawOIDC, dir directory) {
	if ro == nil {
		return
	}
	for _, g := range ro.Groups {
		if strings.TrimSpace(g) != "" {
			dir.groups[g] = true
		}
	}
}

// unknowable drops the gates whose approvers name a group or role the
// mappings give: how many people are eligible there is the provider's
// business, so the config cannot warn that too few are.
func (o *OIDC) unknowable(gates []gateSite) []gateSite {
	if o == nil {
		return gates
	}
	var out []gateSite
	for _, g := range gates {
		sso := slices.ContainsFunc(g.approvers.Groups, func(name string) bool {
			return slices.Contains(slices.Collect(maps.Values(o.Groups)), name)
		}) || slices.ContainsFunc(g.approvers.Roles, func(r approval.Role) bool {
			return slices.Contains(slices.Collect(maps.Values(o.Roles)), r)
		})
		if !sso {
			out = append(out, g)
		}
	}
	return out
}
