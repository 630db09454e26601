package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

var (
	// userIDPattern admits email-like ids so SSO subjects can be used as is.
	userIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]*$`)
	// namePattern keeps workspace, step and rule names safe in URLs and reason IDs.
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	// sha256Pattern is a hex SHA-256 digest in either case.
	sha256Pattern = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	// envNamePattern is a portable environment variable name.
	envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// validator collects problems; it never stops at the first.
type validator struct {
	problems []Problem
	// getenv looks up the environment variables the configuration names,
	// such as a webhook's secret_env.
	getenv func(string) string
	// secretEnvs are the variables the configuration reads secrets from
	// (webhooks' secret_env), which no apply may be given.
	secretEnvs map[string]bool
	// gates lists every step and rule as validated, each once, where it is
	// written: a template's at the template, however many workspaces use it.
	// Warnings are about them.
	gates []gateSite
}

// gateSite is a step or rule where it is written, as Warnings looks at it.
type gateSite struct {
	path, kind   string
	approvers    approval.Approvers
	minApprovals int
	self         bool
}

// add records a problem at path.
func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// err returns the problems found so far as a *ValidationError.
func (v *validator) err() error {
	return &ValidationError{Problems: slices.Clone(v.problems)}
}

// directory is what step and rule validation needs to know about the users.
type directory struct {
	ids    map[approval.UserID]bool
	groups map[string]bool
}

// build turns the raw configuration into a Config, filling in defaults and
// recording every problem. baseDir, when not "", is what relative apply
// directories and policy paths are resolved against; "" resolves policy
// paths against the current directory and keeps both as written.
func (v *validator) build(raw rawConfig, baseDir string) *Config {
	c := &Config{}
	dir := directory{ids: map[approval.UserID]bool{}, groups: map[string]bool{}}
	c.Users = v.users(raw.Users, dir)
	ssoGroups(raw.OIDC, dir)
	templates := v.templates(raw.Templates, dir)
	v.secretEnvs = secretEnvNames(raw)
	if len(raw.Workspaces) == 0 {
		v.add("workspaces", "at least one workspace is required")
	}
	names := map[string]string{}
	for i, rw := range raw.Workspaces {
		c.Workspaces = append(c.Workspaces, v.workspace(indexPath("workspaces", i), rw, names, dir, baseDir, templates))
	}
	c.GitHub = v.gitHub(raw.GitHub, c.Users)
	v.channels(raw, c)
	v.externalChannels(c)
	c.Database = v.database(raw.Database, baseDir)
	c.Temporal = v.temporal(raw.Temporal, baseDir)
	c.OIDC = v.oidc(raw.OIDC, c.PublicURL)
	c.TrustedProxies = v.trustedProxies(raw.TrustedProxies)
	return c
}

// users validates the users and records their ids and groups in dir.
func (v *validator) users(raws []rawUser, dir directory) []User {
	type emailKey struct {
		email  string
		source approval.Source
	}
	ids := map[approval.UserID]int{}
	emails := map[emailKey]int{}
	tokens := map[string]int{}
	out := make([]User, 0, len(raws))
	for i, ru := range raws {
		p := indexPath("users", i)
		u := User{
			Identity: approval.Identity{
				ID:         approval.UserID(ru.ID),
				Email:      ru.Email,
				Source:     approval.SourceSSO,
				Groups:     ru.Groups,
				Automation: ru.Automation,
			},
			Token:   ru.Token,
			SlackID: ru.SlackID,
		}
		if ru.SlackID != "" && !slackIDPattern.MatchString(ru.SlackID) {
			v.add(p+".slack_id", "%q is not a Slack member id (like U024BE7LH)", ru.SlackID)
		}

		switch {
		case ru.ID == "":
			v.add(p+".id", "required")
		case !userIDPattern.MatchString(ru.ID):
			v.add(p+".id", "%q must match %s", ru.ID, userIDPattern)
		default:
			if j, dup := ids[u.ID]; dup {
				v.add(p+".id", "duplicate user id %q (also users[%d])", ru.ID, j)
			} else {
				ids[u.ID] = i
			}
		}
		if ru.ID != "" {
			// Record even malformed ids so that rules naming them are not
			// also reported as dangling: one mistake, one problem.
			dir.ids[u.ID] = true
		}

		emailOK := true
		switch {
		case ru.Email == "":
			v.add(p+".email", "required")
			emailOK = false
		case !strings.Contains(ru.Email, "@"):
			v.add(p+".email", "%q is not an email address", ru.Email)
			emailOK = false
		}

		sourceOK := true
		if ru.Source != "" {
			u.Source = approval.Source(ru.Source)
			if !u.Source.Valid() {
				v.add(p+".source", "unknown source %q (want sso or local)", ru.Source)
				sourceOK = false
			}
		}

		// An SSO account and a local account with the same address are
		// different people; two accounts from one source are a mistake.
		if emailOK && sourceOK {
			key := emailKey{strings.ToLower(ru.Email), u.Source}
			if j, dup := emails[key]; dup {
				v.add(p+".email", "%q is already used by users[%d] with source %s", ru.Email, j, u.Source)
			} else {
				emails[key] = i
			}
		}

		for j, g := range ru.Groups {
			if strings.TrimSpace(g) == "" {
				v.add(indexPath(p+".groups", j), "must not be empty")
				continue
			}
			dir.groups[g] = true
		}

		for j, r := range ru.Roles {
			role := approval.Role(r)
			if !role.Valid() {
				v.add(indexPath(p+".roles", j), "unknown role %q (want approver, admin or viewer)", r)
			}
			u.Roles = append(u.Roles, role)
		}
		// A viewer who is also an approver or admin would be refused by the
		// domain's viewer check anyway; say so here rather than at decision
		// time.
		if slices.Contains(u.Roles, approval.RoleViewer) &&
			slices.ContainsFunc(u.Roles, func(r approval.Role) bool { return r != approval.RoleViewer }) {
			v.add(p+".roles", "viewer cannot be combined with another role")
		}
		if ru.Automation {
			// An admin may bypass approval; a bypass must be a person's
			// decision, not a pipeline's. A viewer may do nothing a service
			// account exists for.
			for j, role := range u.Roles {
				switch role {
				case approval.RoleAdmin:
					v.add(indexPath(p+".roles", j), "automation users may not be admins: bypass needs a person")
				case approval.RoleViewer:
					v.add(indexPath(p+".roles", j), "automation users may not be viewers: they exist to submit runs, viewers may only look")
				}
			}
		}

		tokenPath := p + ".token"
		switch {
		case ru.Token != "" && ru.TokenSHA256 != "":
			v.add(p, "only one of token and token_sha256 may be given")
		case ru.Token != "":
			u.TokenSHA256 = hashToken(ru.Token)
		case ru.TokenSHA256 != "":
			tokenPath = p + ".token_sha256"
			if sha256Pattern.MatchString(ru.TokenSHA256) {
				u.TokenSHA256 = strings.ToLower(ru.TokenSHA256)
			} else {
				v.add(tokenPath, "must be a SHA-256 digest: 64 hexadecimal characters")
			}
		}
		if ru.TokenExpires != "" {
			exp, err := time.Parse(time.RFC3339, ru.TokenExpires)
			switch {
			case err != nil:
				v.add(p+".token_expires", "must be an RFC 3339 time, like 2027-03-01T00:00:00Z")
			case u.TokenSHA256 == "" && ru.TokenSHA256 == "":
				v.add(p+".token_expires", "given without a token or token_sha256")
			default:
				u.TokenExpires = exp
			}
		}
		// Comparing digests catches a plain token repeated as another
		// user's token_sha256 too. A shared token would log in as whichever
		// user comes first.
		if u.TokenSHA256 != "" {
			if j, dup := tokens[u.TokenSHA256]; dup {
				v.add(tokenPath, "same token as users[%d]: tokens must be unique", j)
			} else {
				tokens[u.TokenSHA256] = i
			}
		}

		out = append(out, u)
	}
	return out
}

// workspace validates one workspace; names maps the workspace names seen so
// far to their paths, templates the templates it may use.
func (v *validator) workspace(p string, rw rawWorkspace, names map[string]string, dir directory, baseDir string, templates map[string]*template) Workspace {
	w := Workspace{Workspace: approval.Workspace{
		Name:        rw.Name,
		Environment: rw.Environment,
		OnTimeout:   approval.OutcomeReject,
		AllowBypass: rw.AllowBypass,
	}}
	if v.name(p+".name", rw.Name) {
		if other, dup := names[rw.Name]; dup {
			v.add(p+".name", "duplicate workspace name %q (also %s)", rw.Name, other)
		} else {
			names[rw.Name] = p
		}
	}
	v.uniqueStrings(p+".tags", rw.Tags, "tag")
	if len(rw.Tags) > 0 {
		// "tags: []" is no tags, for callers and for Version alike.
		w.Tags = rw.Tags
	}
	timing := v.timing(p, rw.rawTiming, nil, dir)
	w.Timing = timing.Timing
	if w.Timeout == 0 {
		w.Timeout = approval.DefaultTimeout
	}
	if rw.OnTimeout != "" {
		w.OnTimeout = approval.Outcome(rw.OnTimeout)
		if !w.OnTimeout.Valid() {
			v.add(p+".on_timeout", "unknown outcome %q (want reject or cancel)", rw.OnTimeout)
		}
	}
	if rw.Apply != nil {
		w.Apply = v.apply(p+".apply", *rw.Apply, baseDir)
	}
	if rw.Readers != nil {
		w.Readers = v.readers(p+".readers", *rw.Readers, dir)
	}
	v.deployment(p, rw, &w, baseDir)
	if rw.Notify != nil {
		w.Notify = v.notify(p+".notify", *rw.Notify)
	}
	if rw.External != nil {
		w.External = v.external(p+".external_approval", *rw.External)
		w.Workspace.External = &w.External.ExternalApproval
	}
	w.Policies = v.policies(p+".policies", rw.Policies, baseDir)
	for _, pol := range w.Policies {
		w.Workspace.Policies = append(w.Workspace.Policies, pol.Name)
	}
	// Steps and rules share one namespace: their reason ids differ ("step:x",
	// "rule:x") but approvers see the name. The templates' come first, in
	// use order; a step or rule of the workspace's own that has the name of
	// a template's replaces it in place, provided it is at least as strict.
	gates := map[string]gateUse{}
	v.use(p, rw, templates, gates, &w, &timing)
	for j, rs := range rw.Steps {
		sp := indexPath(p+".steps", j)
		tmpl, replaces := v.gateName(rs.Name, gateUse{kind: "step", path: sp, index: len(w.Steps)}, gates)
		s, _ := v.step(sp, rs, dir, &timing)
		if !replaces {
			w.Steps = append(w.Steps, s)
			continue
		}
		v.weakens(sp, rs.Name, tmpl, stepGate(w.Steps[tmpl.index]), stepGate(s), w.Timing)
		w.Steps[tmpl.index] = s
	}
	for j, rr := range rw.Rules {
		rp := indexPath(p+".rules", j)
		tmpl, replaces := v.gateName(rr.Name, gateUse{kind: "rule", path: rp, index: len(w.Rules)}, gates)
		r, _ := v.rule(rp, rr, dir, &timing)
		if !replaces {
			w.Rules = append(w.Rules, r)
			continue
		}
		v.weakens(rp, rr.Name, tmpl, ruleGate(w.Rules[tmpl.index]), ruleGate(r), w.Timing)
		w.Rules[tmpl.index] = r
	}
	return w
}

// uniqueStrings checks a list of non-empty, unique strings at p, such as a
// workspace's tags; what names an entry in messages.
func (v *validator) uniqueStrings(p string, list []string, what string) {
	seen := map[string]int{}
	for j, s := range list {
		switch k, dup := seen[s]; {
		case strings.TrimSpace(s) == "":
			v.add(indexPath(p, j), "must not be empty")
		case dup:
			v.add(indexPath(p, j), "duplicate %s %q (also %s)", what, s, indexPath(p, k))
		default:
			seen[s] = j
		}
	}
}

// webhook validates a webhook and resolves its secret.
func (v *validator) webhook(p string, rw rawWebhook) *Webhook {
	h := &Webhook{URL: rw.URL}
	if rw.URL == "" {
		v.add(p+".url", "required: the absolute http or https URL to post to")
	} else if u, err := url.Parse(rw.URL); err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		v.add(p+".url", "%q is not a URL: %v", rw.URL, err)
	} else if u.Scheme != "http" && u.Scheme != "https" {
		v.add(p+".url", "%q is not an absolute http or https URL", rw.URL)
	} else if u.Hostname() == "" {
		v.add(p+".url", "%q names no host", rw.URL)
	}
	h.Secret, _ = v.secret(p, "secret", rw.Secret, rw.SecretEnv)
	return h
}

// apply validates an apply section and fills in its defaults.
func (v *validator) apply(p string, ra rawApply, baseDir string) *Apply {
	a := &Apply{Command: ra.Command, Dir: ra.Dir, Timeout: DefaultApplyTimeout}
	switch {
	case len(ra.Command) == 0:
		v.add(p+".command", "required: the program to run and its arguments")
	case ra.Command[0] == "":
		v.add(p+".command[0]", "must not be empty: it names the program to run")
	}
	if a.Dir == "" {
		a.Dir = "."
	}
	if baseDir != "" && !filepath.IsAbs(a.Dir) {
		a.Dir = filepath.Join(baseDir, a.Dir)
	}
	if ra.Timeout != "" {
		if d, ok := v.duration(p+".timeout", ra.Timeout); ok {
			a.Timeout = d
		}
	}
	a.EnvFrom = v.envFrom(p+".env_from", ra.EnvFrom)
	return a
}

// envFrom validates the names of the worker's variables an apply command is
// given. Gatehouse's own variables and the secrets the config reads are
// refused: whoever writes the apply command must not be able to read the
// keys that sign decisions or the secrets that authenticate webhooks.
func (v *validator) envFrom(p string, names []string) []string {
	v.uniqueStrings(p, names, "variable")
	for j, name := range names {
		switch {
		case name == "":
			// reported by uniqueStrings
		case !envNamePattern.MatchString(name):
			v.add(indexPath(p, j), "%q is not an environment variable name (want letters, digits and _)", name)
		case name == "GATEHOUSE_SIGNING_KEYS":
			v.add(indexPath(p, j), "%s holds Gatehouse's signing keys: an apply command may not see it", name)
		case strings.HasPrefix(strings.ToUpper(name), "GATEHOUSE_"):
			v.add(indexPath(p, j), "%s: variables starting with GATEHOUSE_ are Gatehouse's own, and the run's are set for the command already", name)
		case v.secretEnvs[name]:
			v.add(indexPath(p, j), "%s holds a secret this config reads (a webhook's secret_env): an apply command may not see it", name)
		}
	}
	if len(names) == 0 {
		// "env_from: []" is none, for callers and for Version alike.
		return nil
	}
	return names
}

// secretEnvNames returns the variables the raw config reads secrets from.
func secretEnvNames(raw rawConfig) map[string]bool {
	names := map[string]bool{}
	add := func(env string) {
		if env != "" {
			names[env] = true
		}
	}
	for _, rw := range raw.Workspaces {
		if rw.Notify != nil && rw.Notify.Webhook != nil {
			add(rw.Notify.Webhook.SecretEnv)
		}
		if rw.Hooks != nil {
			add(rw.Hooks.SecretEnv)
		}
	}
	if raw.GitHub != nil {
		add(raw.GitHub.WebhookSecretEnv)
	}
	if raw.Slack != nil {
		add(raw.Slack.BotTokenEnv)
		add(raw.Slack.SigningSecretEnv)
	}
	if raw.Email != nil {
		add(raw.Email.SMTP.UsernameEnv)
		add(raw.Email.SMTP.PasswordEnv)
	}
	if raw.Temporal != nil {
		add(raw.Temporal.APIKeyEnv)
	}
	if raw.OIDC != nil {
		add(raw.OIDC.ClientSecretEnv)
	}
	return names
}

// Steps and rules are both gates: a named approval with approvers and a
// number of approvals, and timing overrides. gateName, gateApproval and
// timing hold the checks they share.

// gateUse is where a step or rule name was first used in a workspace (or
// template).
type gateUse struct {
	kind string // "step" or "rule"
	path string
	// template names the template a workspace took the gate from; "" for
	// the workspace's own.
	template string
	// index is the gate's position in the workspace's steps or rules.
	index int
}

// gateName checks the name of the step or rule use (reported at
// use.path.name): well formed, and unique among the workspace's (or
// template's) steps and rules together. names maps the names seen so far.
// When the gate has the kind and name of one the workspace took from a
// template, that is no duplicate but a replacement, provided it is at least
// as strict (see weakens): gateName returns the template's gate and true, and
// the replacement takes its place in names, so that a second one is a
// duplicate.
func (v *validator) gateName(name string, use gateUse, names map[string]gateUse) (gateUse, bool) {
	p := use.path
	if !v.name(p+".name", name) {
		return gateUse{}, false
	}
	switch other, dup := names[name]; {
	case !dup:
		names[name] = use
	case other.kind == use.kind && other.template != "":
		use.index = other.index
		names[name] = use
		return other, true
	case other.kind == use.kind:
		v.add(p+".name", "duplicate %s name %q (also %s)", use.kind, name, other.path)
	default:
		// The domain could tell them apart (reason ids "step:x" and
		// "rule:x"), but one name meaning two things confuses approvers.
		v.add(p+".name", "name already used by %s %q (%s): steps and rules share one namespace", other.kind, name, other.path)
	}
	return gateUse{}, false
}

// gateApproval checks who may approve a step or rule (at p.approvers) and how
// many approvals it needs (at p.min_approvals, default 1).
func (v *validator) gateApproval(p string, ra rawApprovers, minApprovals *int, dir directory) (approval.Approvers, int) {
	a := v.approvers(p+".approvers", ra, dir)
	n := 1
	if minApprovals != nil {
		n = *minApprovals
		if n < 1 {
			v.add(p+".min_approvals", "must be >= 1, got %d", n)
		}
	}
	return a, n
}

// actionList names the actions a rule may select, for messages.
func actionList() string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = string(a)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// readers checks who may read a workspace's runs: like approvers, but any
// role (viewer included) may be named, and the list may be empty.
func (v *validator) readers(rp string, ra rawApprovers, dir directory) approval.Approvers {
	return v.people(rp, ra, dir, true)
}

// approvers checks a list of who may approve, at ap: a gate's approvers or
// the fallback owners a reason escalates to. Every user must exist, every
// group have members, and every role be one that may approve.
func (v *validator) approvers(ap string, ra rawApprovers, dir directory) approval.Approvers {
	a := v.people(ap, ra, dir, false)
	if a.Empty() {
		// A gate nobody can approve would hold every run it applies to
		// until the run times out; an escalation to nobody is no escalation.
		v.add(ap, "required: at least one of users, groups or roles")
	}
	return a
}

// people checks a list of users, groups and roles at p: every user must
// exist, every group have members and every role be known; viewers count
// only where viewers is true (a list of readers, not of approvers).
func (v *validator) people(p string, ra rawApprovers, dir directory, viewers bool) approval.Approvers {
	var a approval.Approvers
	for k, id := range ra.Users {
		a.Users = append(a.Users, approval.UserID(id))
		if !dir.ids[approval.UserID(id)] {
			v.add(indexPath(p+".users", k), "unknown user %q", id)
		}
	}
	for k, g := range ra.Groups {
		a.Groups = append(a.Groups, g)
		if !dir.groups[g] {
			v.add(indexPath(p+".groups", k), "no user is in group %q", g)
		}
	}
	for k, s := range ra.Roles {
		role := approval.Role(s)
		a.Roles = append(a.Roles, role)
		switch {
		case role == approval.RoleViewer && !viewers:
			v.add(indexPath(p+".roles", k), "viewers may not approve")
		case !role.Valid() && viewers:
			v.add(indexPath(p+".roles", k), "unknown role %q (want approver, admin or viewer)", s)
		case !role.Valid():
			v.add(indexPath(p+".roles", k), "unknown role %q (want approver or admin)", s)
		}
	}
	return a
}

// timingLevel is a timing as validated where it is written: on a workspace,
// or on one of its steps or rules.
type timingLevel struct {
	// Timing holds the valid values written here, zero where a value is
	// absent or invalid (valid durations are never zero). Escalating steps
	// and rules also hold the workspace's escalate_to they inherit.
	approval.Timing
	raw rawTiming // as written
}

// invalid reports whether a duration was written but did not parse: raw as
// written, d as validated.
func invalid(raw string, d time.Duration) bool { return raw != "" && d == 0 }

// timing validates the timing keys written at p: a workspace's when ws is nil,
// else those of one of its steps or rules, which override the workspace's ws.
// Each duration must be positive; escalate_after and escalate_to go together,
// though a step or rule may inherit either from the workspace. The durations
// that must come before the deadline are checked on the effective timing (the
// overrides over the workspace's, the timeout defaulting to 4h) and reported
// where a value of the pair is written at p: a conflict between two inherited
// values is the workspace's, reported there.
func (v *validator) timing(p string, rt rawTiming, ws *timingLevel, dir directory) timingLevel {
	l := v.timingValues(p, rt, dir)
	v.timingRelations(p, l, ws)
	return l
}

// timingValues validates each timing value written at p on its own: the
// durations and whom to escalate to.
func (v *validator) timingValues(p string, rt rawTiming, dir directory) timingLevel {
	l := timingLevel{raw: rt}
	for _, f := range []struct {
		key, raw string
		d        *time.Duration
	}{
		{"timeout", rt.Timeout, &l.Timeout},
		{"remind_every", rt.RemindEvery, &l.RemindEvery},
		{"remind_before", rt.RemindBefore, &l.RemindBefore},
		{"escalate_after", rt.EscalateAfter, &l.EscalateAfter},
	} {
		if f.raw != "" {
			if d, ok := v.duration(p+"."+f.key, f.raw); ok {
				*f.d = d
			}
		}
	}
	if rt.EscalateTo != nil {
		l.EscalateTo = v.approvers(p+".escalate_to", *rt.EscalateTo, dir)
	}
	return l
}

// timingRelations checks how the timing values l written at p go together
// and with those of the workspace's ws they override (nil when l is the
// workspace's own), as timing describes. A template's steps and rules are
// checked so once per workspace that uses them, with that workspace's ws.
func (v *validator) timingRelations(p string, l timingLevel, ws *timingLevel) {
	rt := l.raw
	afterGiven, toGiven := rt.EscalateAfter != "", rt.EscalateTo != nil
	switch {
	case ws == nil && afterGiven && !toGiven:
		v.add(p+".escalate_to", "required with escalate_after: whom to escalate to")
	case ws == nil && toGiven && !afterGiven:
		v.add(p+".escalate_after", "required with escalate_to: when to escalate")
	case ws == nil:
	case afterGiven && !toGiven && ws.raw.EscalateTo == nil:
		v.add(p+".escalate_to", "required with escalate_after: the workspace has no escalate_to to inherit")
	case toGiven && !afterGiven && ws.raw.EscalateAfter == "":
		v.add(p+".escalate_after", "required with escalate_to: the workspace has no escalate_after to inherit")
	}

	base, inherited := approval.Timing{Timeout: approval.DefaultTimeout}, ""
	timeoutUnknown := invalid(rt.Timeout, l.Timeout)
	if ws != nil {
		base, inherited = ws.Timing, " (inherited from the workspace)"
		if base.Timeout == 0 {
			base.Timeout = approval.DefaultTimeout
		}
		timeoutUnknown = timeoutUnknown || (rt.Timeout == "" && invalid(ws.raw.Timeout, ws.Timeout))
	}
	if timeoutUnknown {
		// Already reported; comparing with a timeout nobody meant would
		// only add confusion.
		return
	}
	eff := l.Timing.Over(base)
	for _, c := range []struct {
		key, raw string
		here     time.Duration // as written at p
		eff      time.Duration // in effect
		why      string
	}{
		{"remind_every", rt.RemindEvery, l.RemindEvery, eff.RemindEvery, "no reminder could ever be sent"},
		{"remind_before", rt.RemindBefore, l.RemindBefore, eff.RemindBefore, "the reminder could never be sent"},
		{"escalate_after", rt.EscalateAfter, l.EscalateAfter, eff.EscalateAfter, "the reason would time out before it escalates"},
	} {
		switch {
		case c.eff == 0 || c.eff < eff.Timeout || invalid(c.raw, c.here):
			// Not in effect, in time, or already reported.
		case c.here != 0:
			v.add(p+"."+c.key, "%s %s is not before the %s timeout: %s",
				c.key, formatDuration(c.here), formatDuration(eff.Timeout), c.why)
		case l.Timeout != 0:
			v.add(p+".timeout", "the %s timeout is not after %s %s%s: %s",
				formatDuration(l.Timeout), c.key, formatDuration(c.eff), inherited, c.why)
		}
	}
}

// formatDuration writes d as a person would: 4h rather than 4h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// stage checks a stage as written.
func (v *validator) stage(p, s string) approval.Stage {
	st := approval.Stage(s)
	if !st.Valid() {
		v.add(p, "unknown stage %q (want post_plan, pre_apply or post_apply)", s)
	}
	return st
}

// step validates one step, but for its name (see gateName), and returns it
// with its timing as written. ws is the workspace's timing; nil for a
// template's step, whose timing values are checked together with those of
// each workspace that uses it (see use).
func (v *validator) step(p string, rs rawStep, dir directory, ws *timingLevel) (approval.Step, timingLevel) {
	s := approval.Step{Name: rs.Name, Stage: approval.Stage(rs.Stage), AllowSelfApproval: rs.AllowSelfApproval}
	if rs.Stage == "" {
		// Unlike a rule's, a step's stage has no default: a step is
		// precisely "this stage always asks for this approval".
		v.add(p+".stage", "required: post_plan, pre_apply or post_apply")
	} else {
		s.Stage = v.stage(p+".stage", rs.Stage)
	}
	s.Approvers, s.MinApprovals = v.gateApproval(p, rs.Approvers, rs.MinApprovals, dir)
	l := v.gateTiming(p, rs.rawTiming, dir, ws)
	s.Timing = l.Timing
	v.gates = append(v.gates, gateSite{path: p, kind: "step", approvers: s.Approvers, minApprovals: s.MinApprovals, self: s.AllowSelfApproval})
	return s, l
}

// gateTiming validates a step's or rule's timing at p; see step for ws.
func (v *validator) gateTiming(p string, rt rawTiming, dir directory, ws *timingLevel) timingLevel {
	l := v.timingValues(p, rt, dir)
	if ws != nil {
		v.timingRelations(p, l, ws)
	}
	return l
}

// rule validates one rule, but for its name, as step does a step.
func (v *validator) rule(p string, rr rawRule, dir directory, ws *timingLevel) (approval.Rule, timingLevel) {
	r := approval.Rule{
		Name:              rr.Name,
		Stage:             approval.StagePostPlan,
		When:              v.conditions(p+".when", rr.When),
		AllowSelfApproval: rr.AllowSelfApproval,
	}
	if rr.Stage != "" {
		r.Stage = v.stage(p+".stage", rr.Stage)
	}
	r.Approvers, r.MinApprovals = v.gateApproval(p, rr.Approvers, rr.MinApprovals, dir)
	l := v.gateTiming(p, rr.rawTiming, dir, ws)
	r.Timing = l.Timing
	v.gates = append(v.gates, gateSite{path: p, kind: "rule", approvers: r.Approvers, minApprovals: r.MinApprovals, self: r.AllowSelfApproval})
	return r, l
}

// actions are the resource actions a rule's actions condition may name.
var actions = approval.Actions

// conditions validates a rule's when, written at p.
func (v *validator) conditions(p string, rc rawConditions) approval.Conditions {
	c := approval.Conditions{
		AddsGT:             rc.AddsGT,
		ChangesGT:          rc.ChangesGT,
		DestroysGT:         rc.DestroysGT,
		ReplacesGT:         rc.ReplacesGT,
		ResourcesGT:        rc.ResourcesGT,
		ResourceTypes:      rc.ResourceTypes,
		Providers:          rc.Providers,
		Environment:        rc.Environment,
		Tags:               rc.Tags,
		MonthlyCostDeltaGT: rc.MonthlyCostDeltaGT,
		MonthlyCostGT:      rc.MonthlyCostGT,
	}
	for _, n := range []struct {
		key string
		n   *int
	}{
		{"adds_gt", rc.AddsGT}, {"changes_gt", rc.ChangesGT}, {"destroys_gt", rc.DestroysGT},
		{"replaces_gt", rc.ReplacesGT}, {"resources_gt", rc.ResourcesGT},
	} {
		if n.n != nil && *n.n < 0 {
			v.add(p+"."+n.key, "must be >= 0, got %d", *n.n)
		}
	}

	if rc.Actions != nil {
		c.Actions = []approval.Action{}
	}
	v.conditionList(p, "actions", rc.Actions, "any action", func(ep, s string) {
		a := approval.Action(s)
		c.Actions = append(c.Actions, a)
		if !slices.Contains(actions, a) {
			v.add(ep, "unknown action %q (want %s)", s, actionList())
		}
	})
	for _, g := range []struct {
		key, what string
		globs     []string
	}{{"resource_types", "any resource type", rc.ResourceTypes}, {"providers", "any provider", rc.Providers}} {
		v.conditionList(p, g.key, g.globs, g.what, func(ep, s string) {
			if strings.ContainsAny(s, "[\\") {
				v.add(ep, "%q: character classes and escapes are not supported: only * (any run of characters) and ? (one character) are special", s)
			}
		})
	}
	v.conditionList(p, "tags", rc.Tags, "any workspace", func(string, string) {})

	for _, f := range []struct {
		key      string
		n        *float64
		negative bool // whether a negative number makes sense
	}{{"monthly_cost_delta_gt", rc.MonthlyCostDeltaGT, true}, {"monthly_cost_gt", rc.MonthlyCostGT, false}} {
		switch {
		case f.n == nil:
		case math.IsNaN(*f.n) || math.IsInf(*f.n, 0):
			v.add(p+"."+f.key, "must be a finite number, got %v", *f.n)
		case *f.n < 0 && !f.negative:
			v.add(p+"."+f.key, "must be >= 0, got %v", *f.n)
		}
	}
	return c
}

// conditionList checks the list condition key of the conditions at p: when
// given, it must not be empty (leaving the key out is how to match what), nor
// may any of its entries; check checks each entry further, at its path ep.
func (v *validator) conditionList(p, key string, list []string, what string, check func(ep, s string)) {
	p += "." + key
	if list != nil && len(list) == 0 {
		v.add(p, "must not be empty: leave %s out to match %s", key, what)
		return
	}
	for j, s := range list {
		ep := indexPath(p, j)
		if strings.TrimSpace(s) == "" {
			v.add(ep, "must not be empty")
			continue
		}
		check(ep, s)
	}
}

// name checks a workspace, step or rule name and reports whether it is well formed.
func (v *validator) name(p, name string) bool {
	switch {
	case name == "":
		v.add(p, "required")
		return false
	case !namePattern.MatchString(name):
		v.add(p, "%q must match %s", name, namePattern)
		return false
	}
	return true
}

// duration parses a positive Go duration.
func (v *validator) duration(p, s string) (time.Duration, bool) {
	d, err := time.ParseDuration(s)
	if err != nil {
		v.add(p, "%q is not a duration (want a Go duration such as 4h or 90m)", s)
		return 0, false
	}
	if d <= 0 {
		v.add(p, "must be positive, got %s", s)
		return 0, false
	}
	return d, true
}
