package config

import (
	"errors"
	"fmt"
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
// directories are resolved against.
func (v *validator) build(raw rawConfig, baseDir string) *Config {
	c := &Config{}
	dir := directory{ids: map[approval.UserID]bool{}, groups: map[string]bool{}}
	c.Users = v.users(raw.Users, dir)
	if len(raw.Workspaces) == 0 {
		v.add("workspaces", "at least one workspace is required")
	}
	names := map[string]string{}
	for i, rw := range raw.Workspaces {
		c.Workspaces = append(c.Workspaces, v.workspace(indexPath("workspaces", i), rw, names, dir, baseDir))
	}
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
			Token: ru.Token,
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
// far to their paths.
func (v *validator) workspace(p string, rw rawWorkspace, names map[string]string, dir directory, baseDir string) Workspace {
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
	if rw.Notify != nil && rw.Notify.Webhook != nil {
		// An empty notify section notifies nobody, like none: Notify stays
		// nil so that both mean the same to callers and to Version.
		w.Notify = &Notify{Webhook: v.webhook(p+".notify.webhook", *rw.Notify.Webhook)}
	}
	// Steps and rules share one namespace: their reason ids differ ("step:x",
	// "rule:x") but approvers see the name.
	gates := map[string]gateUse{}
	for j, rs := range rw.Steps {
		w.Steps = append(w.Steps, v.step(indexPath(p+".steps", j), rs, gates, dir, &timing))
	}
	for j, rr := range rw.Rules {
		w.Rules = append(w.Rules, v.rule(indexPath(p+".rules", j), rr, gates, dir, &timing))
	}
	return w
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
	// Messages never quote a secret, only the name of its variable.
	switch {
	case rw.Secret != "" && rw.SecretEnv != "":
		v.add(p, "only one of secret and secret_env may be given")
	case rw.Secret != "":
		h.Secret = rw.Secret
	case rw.SecretEnv == "":
		v.add(p, "required: secret_env, the environment variable holding the secret (or, in development only, secret)")
	case !envNamePattern.MatchString(rw.SecretEnv):
		v.add(p+".secret_env", "%q is not an environment variable name (want letters, digits and _)", rw.SecretEnv)
	default:
		h.Secret = v.getenv(rw.SecretEnv)
		if h.Secret == "" {
			v.add(p+".secret_env", "environment variable %s is not set (or is empty)", rw.SecretEnv)
		}
	}
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
	return a
}

// Steps and rules are both gates: a named approval with approvers and a
// number of approvals, and timing overrides. gateName, gateApproval and
// timing hold the checks they share.

// gateUse is where a step or rule name was first used in a workspace.
type gateUse struct {
	kind string // "step" or "rule"
	path string
}

// gateName checks the name of the step or rule at p (reported at p.name):
// well formed, and unique among the workspace's steps and rules together.
// names maps the names seen so far.
func (v *validator) gateName(p, kind, name string, names map[string]gateUse) {
	if !v.name(p+".name", name) {
		return
	}
	switch other, dup := names[name]; {
	case !dup:
		names[name] = gateUse{kind: kind, path: p}
	case other.kind == kind:
		v.add(p+".name", "duplicate %s name %q (also %s)", kind, name, other.path)
	default:
		// The domain could tell them apart (reason ids "step:x" and
		// "rule:x"), but one name meaning two things confuses approvers.
		v.add(p+".name", "name already used by %s %q (%s): steps and rules share one namespace", other.kind, name, other.path)
	}
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

// approvers checks a list of who may approve, at ap: a gate's approvers or
// the fallback owners a reason escalates to. Every user must exist, every
// group have members, and every role be one that may approve.
func (v *validator) approvers(ap string, ra rawApprovers, dir directory) approval.Approvers {
	var a approval.Approvers
	for k, id := range ra.Users {
		a.Users = append(a.Users, approval.UserID(id))
		if !dir.ids[approval.UserID(id)] {
			v.add(indexPath(ap+".users", k), "unknown user %q", id)
		}
	}
	for k, g := range ra.Groups {
		a.Groups = append(a.Groups, g)
		if !dir.groups[g] {
			v.add(indexPath(ap+".groups", k), "no user is in group %q", g)
		}
	}
	for k, s := range ra.Roles {
		role := approval.Role(s)
		a.Roles = append(a.Roles, role)
		switch {
		case role == approval.RoleViewer:
			v.add(indexPath(ap+".roles", k), "viewers may not approve")
		case !role.Valid():
			v.add(indexPath(ap+".roles", k), "unknown role %q (want approver or admin)", s)
		}
	}
	if a.Empty() {
		// A gate nobody can approve would hold every run it applies to
		// until the run times out; an escalation to nobody is no escalation.
		v.add(ap, "required: at least one of users, groups or roles")
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
		return l
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
	return l
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

// step validates one step; names is as for gateName, ws the workspace's timing.
func (v *validator) step(p string, rs rawStep, names map[string]gateUse, dir directory, ws *timingLevel) approval.Step {
	s := approval.Step{Name: rs.Name, Stage: approval.Stage(rs.Stage), AllowSelfApproval: rs.AllowSelfApproval}
	v.gateName(p, "step", rs.Name, names)
	if rs.Stage == "" {
		// Unlike a rule's, a step's stage has no default: a step is
		// precisely "this stage always asks for this approval".
		v.add(p+".stage", "required: post_plan, pre_apply or post_apply")
	} else {
		s.Stage = v.stage(p+".stage", rs.Stage)
	}
	s.Approvers, s.MinApprovals = v.gateApproval(p, rs.Approvers, rs.MinApprovals, dir)
	s.Timing = v.timing(p, rs.rawTiming, ws, dir).Timing
	return s
}

// rule validates one rule; names is as for gateName, ws the workspace's timing.
func (v *validator) rule(p string, rr rawRule, names map[string]gateUse, dir directory, ws *timingLevel) approval.Rule {
	r := approval.Rule{
		Name:  rr.Name,
		Stage: approval.StagePostPlan,
		When: approval.Conditions{
			AddsGT:      rr.When.AddsGT,
			ChangesGT:   rr.When.ChangesGT,
			DestroysGT:  rr.When.DestroysGT,
			Environment: rr.When.Environment,
		},
		AllowSelfApproval: rr.AllowSelfApproval,
	}
	v.gateName(p, "rule", rr.Name, names)
	if rr.Stage != "" {
		r.Stage = v.stage(p+".stage", rr.Stage)
	}
	for _, c := range []struct {
		key string
		n   *int
	}{{"adds_gt", rr.When.AddsGT}, {"changes_gt", rr.When.ChangesGT}, {"destroys_gt", rr.When.DestroysGT}} {
		if c.n != nil && *c.n < 0 {
			v.add(p+".when."+c.key, "must be >= 0, got %d", *c.n)
		}
	}
	r.Approvers, r.MinApprovals = v.gateApproval(p, rr.Approvers, rr.MinApprovals, dir)
	r.Timing = v.timing(p, rr.rawTiming, ws, dir).Timing
	return r
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
