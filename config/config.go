// Package config loads Gatehouse's YAML configuration (its users and the
// approval policy of each workspace) into the approval domain's types. Every
// problem of a file is reported at once, each at its field path, so an
// operator fixes a configuration in one pass instead of one error at a time.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// DefaultApplyTimeout is how long an apply command may run when a workspace's
// apply section does not say.
const DefaultApplyTimeout = time.Hour

// Config is a loaded, validated configuration. Treat it as read-only: the
// values its methods return share memory with it.
type Config struct {
	Users      []User
	Workspaces []Workspace
	// GitHub is nil unless GitHub deliveries may start runs.
	GitHub *GitHub
	// PublicURL is the base of every link Gatehouse sends (run pages, the
	// API), without a trailing slash; TemporalUIURL where links into the
	// Temporal Web UI point. Either may be "".
	PublicURL     string
	TemporalUIURL string
	// Slack and Email are nil unless configured.
	Slack *Slack
	Email *Email
	// Database keeps the audit trail; nil when the config names none (the
	// processes then decide: gatehouse dev keeps a SQLite file).
	Database *Database
	// Temporal is the temporal block (TLS, API key); nil when absent.
	Temporal *Temporal
	// OIDC is the single sign-on provider of the web UI; nil when absent.
	OIDC *OIDC
	// TrustedProxies are the reverse proxies in front of the gateway
	// whose X-Forwarded-For names the client (for the rate limit on
	// failed sign-ins); empty believes no header.
	TrustedProxies []netip.Prefix
	// Version is the hex SHA-256 of the configuration's canonical form. It
	// changes with any change of meaning and with nothing else (not with key
	// order, comments or YAML style), so runs can record which policy they
	// were evaluated against. Apply dirs are part of it as stored, so a file
	// loaded from another directory (whose commands then run elsewhere) has
	// another version. Policies are part of it by name and by the digest of
	// their source, so editing a policy file changes it; templates only
	// through the steps and rules they give workspaces.
	Version string

	warnings []Problem
}

// User is a configured user: their identity and how they authenticate.
type User struct {
	approval.Identity
	// Token is the plain token, given in development configs only; "" when
	// the config gives token_sha256 instead.
	Token string
	// TokenSHA256 is the lower-case hex SHA-256 of the user's token, computed
	// from Token when that is given. "" means the user has no token and
	// cannot log in with one.
	TokenSHA256 string
	// TokenExpires is when the token stops being accepted (token_expires);
	// zero means never.
	TokenExpires time.Time
	// SlackID is the user's Slack member id; "" matches them by email.
	SlackID string
}

// Workspace is one workspace's approval policy and how to apply its plans.
// Its steps and rules are those in effect: the templates' it uses merged with
// its own, as described in template.go.
type Workspace struct {
	approval.Workspace
	// Policies are the Rego policies its runs are checked against, in the
	// configuration's order, read when the configuration loaded. They
	// shadow the embedded approval.Workspace.Policies, which holds their
	// names.
	Policies []Policy
	// Apply is nil when the workspace has no apply section: approved runs
	// then finish without executing anything.
	Apply *Apply
	// Notify is nil when the workspace notifies nothing but its approvers.
	Notify *Notify
	// Readers may read the workspace's runs, besides those CanRead names.
	Readers approval.Approvers
	// Terraform is set when Gatehouse plans and applies the workspace
	// itself (Mode terraform).
	Terraform *Terraform
	// Hooks, when set, lets a signed webhook start runs.
	Hooks *Hooks
	// GitHub, when set, maps GitHub deliveries to the workspace.
	GitHub *WorkspaceGitHub
	// External, when set, hands the approval of its runs to an external
	// system; its approval.ExternalApproval is in Workspace.External.
	External *External
	// TaskQueue is the Temporal task queue its runs are started on, so
	// that only the workers polling it (those holding its credentials)
	// plan and apply them; "" means the deployment's default queue.
	TaskQueue string
}

// TaskQueues lists the task queues the config's runs go to: def (the
// default queue) first, then each workspace's own, once each, in config
// order.
func (c *Config) TaskQueues(def string) []string {
	out := []string{def}
	for _, w := range c.Workspaces {
		if w.TaskQueue != "" && !slices.Contains(out, w.TaskQueue) {
			out = append(out, w.TaskQueue)
		}
	}
	return out
}

// Readable names the workspaces whose runs id may see (CanRead), in the
// config's order; never nil.
func (c *Config) Readable(id approval.Identity) []string {
	names := []string{}
	for _, w := range c.Workspaces {
		if w.CanRead(id) {
			names = append(names, w.Name)
		}
	}
	return names
}

// CanRead reports whether id may see the workspace's runs: admins and
// viewers may; so may anyone a step, rule or escalation of the workspace
// names, and its readers. Others are told its runs do not exist; they may
// still read the runs they requested themselves (see the gateway).
func (w Workspace) CanRead(id approval.Identity) bool {
	if id.HasRole(approval.RoleAdmin) || id.HasRole(approval.RoleViewer) {
		return true
	}
	if w.Readers.Includes(id) || w.EscalateTo.Includes(id) {
		return true
	}
	for _, s := range w.Steps {
		if s.Approvers.Includes(id) || s.EscalateTo.Includes(id) {
			return true
		}
	}
	for _, r := range w.Rules {
		if r.Approvers.Includes(id) || r.EscalateTo.Includes(id) {
			return true
		}
	}
	return false
}

// Notify says where to send a workspace's events besides to its people.
// An empty notify section is no section: Notify is nil then.
type Notify struct {
	// Webhook, Slack and Email are each nil unless given.
	Webhook *Webhook
	Slack   *SlackNotify
	Email   *EmailNotify
}

// Webhook is an HTTP endpoint events are posted to.
type Webhook struct {
	// URL is an absolute http or https URL, as written.
	URL string
	// Secret is the shared secret, never "": the value of the environment
	// variable the config's secret_env names, read at load time, or the
	// config's secret in development configs. Version depends on it only
	// through its digest.
	Secret string
}

// Apply says how to apply an approved plan.
type Apply struct {
	// Command is the program and its arguments; Command[0] is never empty.
	Command []string
	// Dir is the working directory of the command. Load resolves a relative
	// dir against the config file's directory and stores the absolute path;
	// Parse, having no file, keeps it as written. Default ".".
	Dir string
	// Timeout bounds one execution of the command. Default DefaultApplyTimeout.
	Timeout time.Duration
	// EnvFrom names the worker's environment variables the command gets
	// besides PATH, HOME, USER, LANG, LC_ALL, TZ, TMPDIR and the run's own:
	// nothing else of the worker's environment reaches it.
	EnvFrom []string
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path locates the field, like "workspaces[0].rules[1].approvers.users[0]";
	// "" is the document as a whole.
	Path    string
	Message string
}

// String renders the problem as "path: message", naming the document as a
// whole "config".
func (p Problem) String() string {
	path := p.Path
	if path == "" {
		path = "config"
	}
	return path + ": " + p.Message
}

// ValidationError lists every problem found in a configuration.
type ValidationError struct {
	Problems []Problem
}

// Error renders every problem on its own line as "path: message".
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads and validates the configuration file at path, and the policy
// files it names. Relative apply directories and policy paths are resolved
// against the file's directory, so a config means the same thing whatever
// directory Gatehouse is started from.
func Load(path string) (*Config, error) {
	return loadFile(path, parse)
}

// loadFile reads the config file at path and parses it with parse, against
// the file's directory and the process's environment; errors name the file.
func loadFile[T any](path string, parse func(data []byte, base string, getenv func(string) string) (T, error)) (T, error) {
	var zero T
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, fmt.Errorf("load config %s: %w", path, err)
	}
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return zero, fmt.Errorf("load config %s: %w", path, err)
	}
	v, err := parse(data, base, os.Getenv)
	if err != nil {
		return zero, fmt.Errorf("load config %s: %w", path, err)
	}
	return v, nil
}

// Parse validates a configuration given as YAML. Problems with it come back as
// a *ValidationError. Apply directories are kept as written. Environment
// variables the configuration names (a webhook's secret_env) are read now, and
// so are the policy files it names, relative to the current directory (their
// paths are kept as written).
func Parse(data []byte) (*Config, error) {
	return parse(data, "", os.Getenv)
}

// parse is Parse with the directory relative apply dirs resolve against (""
// leaves them as written) and the lookup of environment variables.
func parse(data []byte, baseDir string, getenv func(string) string) (*Config, error) {
	v := &validator{getenv: getenv}
	root := decodeDocument(data, v)
	if root == nil {
		return nil, v.err()
	}
	checkShape(root, reflect.TypeFor[rawConfig](), "", v)
	if len(v.problems) > 0 {
		// Decoding a tree of the wrong shape would only repeat (or, for
		// unknown keys, hide) what the walk already reported.
		return nil, v.err()
	}
	var raw rawConfig
	if err := root.Decode(&raw); err != nil {
		v.add("", "%v", err)
		return nil, v.err()
	}
	c := v.build(raw, baseDir)
	if len(v.problems) > 0 {
		return nil, v.err()
	}
	c.warnings = warnings(c.Directory(), c.OIDC.unknowable(v.gates))
	version, err := canonicalVersion(c)
	if err != nil {
		return nil, fmt.Errorf("config version: %w", err)
	}
	c.Version = version
	return c, nil
}

// decodeDocument parses data as a single YAML document whose root is a
// mapping, returning that mapping, or nil after recording why not.
func decodeDocument(data []byte, v *validator) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			v.add("", "expected a mapping, got an empty document")
		} else {
			v.add("", "%v", err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		// A second document would be silently ignored; say so instead.
		v.add("", "expected a single YAML document")
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		v.add("", "expected a mapping, got %s", describe(root))
		return nil
	}
	return root
}

// Workspace returns the workspace named name.
func (c *Config) Workspace(name string) (Workspace, bool) {
	for _, w := range c.Workspaces {
		if w.Name == name {
			return w, true
		}
	}
	return Workspace{}, false
}

// User returns the user with the given id.
func (c *Config) User(id approval.UserID) (User, bool) {
	for _, u := range c.Users {
		if u.ID == id {
			return u, true
		}
	}
	return User{}, false
}

// Directory lists the users' identities, without secrets, in config order:
// what rules are expanded against to find eligible approvers.
func (c *Config) Directory() []approval.Identity {
	out := make([]approval.Identity, len(c.Users))
	for i, u := range c.Users {
		id := u.Identity
		id.Groups = slices.Clone(id.Groups)
		id.Roles = slices.Clone(id.Roles)
		out[i] = id
	}
	return out
}

// Warnings lists what is legal but almost certainly a mistake, such as a rule
// or step that asks for more approvals than there are people to give them.
func (c *Config) Warnings() []Problem {
	return slices.Clone(c.warnings)
}

// warnings finds the steps and rules (gates, each where it is written) that
// can never be satisfied because fewer users match their approvers than they
// require, or that can never be satisfied for a run one of their approvers
// requests: without self-approval the requester does not count, so
// min_approvals must be below the number of eligible users. Viewers are left
// out: they match a spec by group like anyone else but may never approve.
func warnings(directory []approval.Identity, gates []gateSite) []Problem {
	var approvers []approval.Identity
	for _, id := range directory {
		if !id.HasRole(approval.RoleViewer) {
			approvers = append(approvers, id)
		}
	}
	var out []Problem
	for _, g := range gates {
		eligible := len(g.approvers.Expand(approvers))
		var msg string
		switch {
		case g.minApprovals > eligible:
			users := "users are"
			if eligible == 1 {
				users = "user is"
			}
			msg = fmt.Sprintf("min_approvals %d but only %d %s eligible: the %s can never be satisfied",
				g.minApprovals, eligible, users, g.kind)
		case g.minApprovals == eligible && !g.self:
			them := "one of them"
			if eligible == 1 {
				them = "that user"
			}
			msg = fmt.Sprintf("min_approvals %d with %d eligible: a run requested by %s can never be approved (allow_self_approval is off)",
				g.minApprovals, eligible, them)
		default:
			continue
		}
		out = append(out, Problem{Path: g.path + ".min_approvals", Message: msg})
	}
	return out
}

// hashToken returns the lower-case hex SHA-256 of a token, or of another
// secret such as a webhook's, or of a policy's source.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// The canonical form is what Version hashes: the normalized configuration
// with defaults filled in and tokens and webhook secrets only as digests, so
// that a plain dev token and its digest give the same version, and a secret
// changes the version without being revealed by it. The types are separate
// from Config's so that adding a field there cannot change versions
// unnoticed. The domain's own fields (Identity.Automation,
// Workspace.AllowBypass and Steps, each rule's Stage, the timings) come in
// through the embedded approval types; those left at their zero value are
// omitted, so configurations that do not use them keep the version they had
// before the fields existed.
//
// That takes some shadowing, since encoding/json lets the least nested of
// two fields of one name win and writes fields in declaration order:
// canonicalWorkspace declares name, environment and timeout ahead of the
// embedded approval.Workspace, where they were before its timeout moved into
// the embedded approval.Timing, and its steps and rules after it, and every
// escalate_to is shadowed by one that is omitted when empty.
// TestVersionOfOldConfigIsStable pins the result. Policies are written as
// their names and the digests of their sources, so that editing a policy file
// changes the version. Templates are not written at all: only the steps and
// rules they give the workspaces that use them are, so moving rules into a
// template keeps the version, and an unused template does not change it.
type (
	canonicalConfig struct {
		Users         []canonicalUser      `json:"users"`
		Workspaces    []canonicalWorkspace `json:"workspaces"`
		GitHub        *canonicalGitHub     `json:"github,omitempty"`
		PublicURL     string               `json:"public_url,omitempty"`
		TemporalUIURL string               `json:"temporal_ui_url,omitempty"`
		Slack         *canonicalSlack      `json:"slack,omitempty"`
		Email         *canonicalEmail      `json:"email,omitempty"`
		// Omitted when absent, so configs without it keep their versions.
		OIDC           *canonicalOIDC `json:"oidc,omitempty"`
		TrustedProxies []string       `json:"trusted_proxies,omitempty"`
	}

	canonicalOIDC struct {
		Issuer             string                   `json:"issuer"`
		ClientID           string                   `json:"client_id"`
		ClientSecretSHA256 string                   `json:"client_secret_sha256"`
		RedirectURL        string                   `json:"redirect_url"`
		Scopes             []string                 `json:"scopes"`
		UsernameClaim      string                   `json:"username_claim"`
		GroupsClaim        string                   `json:"groups_claim"`
		Groups             map[string]string        `json:"groups,omitempty"`
		Roles              map[string]approval.Role `json:"roles,omitempty"`
	}

	canonicalUser struct {
		approval.Identity
		TokenSHA256 string `json:"token_sha256,omitempty"`
		// Omitted when unset, so configs without expiries keep their
		// versions.
		TokenExpires string `json:"token_expires,omitempty"`
		SlackID      string `json:"slack_id,omitempty"`
	}

	canonicalWorkspace struct {
		Name        string        `json:"name"`
		Environment string        `json:"environment,omitempty"`
		Timeout     time.Duration `json:"timeout"`
		approval.Workspace
		Steps      []canonicalStep     `json:"steps,omitempty"`
		Rules      []canonicalRule     `json:"rules,omitempty"`
		EscalateTo *approval.Approvers `json:"escalate_to,omitempty"`
		Apply      *canonicalApply     `json:"apply,omitempty"`
		Notify     *canonicalNotify    `json:"notify,omitempty"`
		Policies   []canonicalPolicy   `json:"policies,omitempty"`
		Readers    *approval.Approvers `json:"readers,omitempty"`
		// Mode follows from the blocks below; the shadow keeps it out.
		Mode approval.Mode `json:"mode,omitempty"`
		// Supersede is written only where it is off (the default is on).
		Supersede *bool               `json:"supersede,omitempty"`
		Terraform *canonicalTerraform `json:"terraform,omitempty"`
		Hooks     *canonicalSecret    `json:"hooks,omitempty"`
		GitHub    *WorkspaceGitHub    `json:"github,omitempty"`
		// ExternalApproval is the connection; the embedded
		// approval.Workspace writes its provider and poll interval.
		ExternalApproval *canonicalExternal `json:"external_approval,omitempty"`
		TaskQueue        string             `json:"task_queue,omitempty"`
	}

	canonicalTerraform struct {
		Binary            string            `json:"binary"`
		Dir               string            `json:"dir,omitempty"`
		Git               *Git              `json:"git,omitempty"`
		Vars              map[string]string `json:"vars,omitempty"`
		EnvFrom           []string          `json:"env_from,omitempty"`
		ReplanBeforeApply bool              `json:"replan_before_apply,omitempty"`
		Timeout           time.Duration     `json:"timeout"`
	}

	canonicalSecret struct {
		SecretSHA256 string `json:"secret_sha256"`
	}

	canonicalGitHub struct {
		WebhookSecretSHA256 string                     `json:"webhook_secret_sha256"`
		AutomationUser      approval.UserID            `json:"automation_user"`
		Users               map[string]approval.UserID `json:"users,omitempty"`
	}

	canonicalPolicy struct {
		Name         string `json:"name"`
		SourceSHA256 string `json:"source_sha256"`
	}

	canonicalStep struct {
		approval.Step
		EscalateTo *approval.Approvers `json:"escalate_to,omitempty"`
	}

	canonicalRule struct {
		approval.Rule
		EscalateTo *approval.Approvers `json:"escalate_to,omitempty"`
	}

	canonicalNotify struct {
		Webhook *canonicalWebhook `json:"webhook,omitempty"`
		Slack   *SlackNotify      `json:"slack,omitempty"`
		Email   *EmailNotify      `json:"email,omitempty"`
	}

	canonicalSlack struct {
		BotTokenSHA256      string `json:"bot_token_sha256"`
		SigningSecretSHA256 string `json:"signing_secret_sha256"`
		APIURL              string `json:"api_url,omitempty"`
	}

	canonicalEmail struct {
		Host           string `json:"host"`
		Port           int    `json:"port"`
		TLS            string `json:"tls"`
		UsernameSHA256 string `json:"username_sha256,omitempty"`
		PasswordSHA256 string `json:"password_sha256,omitempty"`
		From           string `json:"from"`
	}

	canonicalWebhook struct {
		URL          string `json:"url"`
		SecretSHA256 string `json:"secret_sha256"`
	}

	canonicalApply struct {
		Command []string      `json:"command"`
		Dir     string        `json:"dir"`
		Timeout time.Duration `json:"timeout"`
		EnvFrom []string      `json:"env_from,omitempty"`
	}
)

// canonicalVersion returns the hex SHA-256 of c's canonical form.
func canonicalVersion(c *Config) (string, error) {
	data, err := canonicalJSON(c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// escalateTo returns a as the canonical form writes it: nil, so omitted, when
// empty.
func escalateTo(a approval.Approvers) *approval.Approvers {
	if a.Empty() {
		return nil
	}
	return &a
}

// canonicalJSON returns c's canonical form.
func canonicalJSON(c *Config) ([]byte, error) {
	canon := canonicalConfig{
		Users:      make([]canonicalUser, len(c.Users)),
		Workspaces: make([]canonicalWorkspace, len(c.Workspaces)),
	}
	for i, u := range c.Users {
		canon.Users[i] = canonicalUser{Identity: u.Identity, TokenSHA256: u.TokenSHA256, SlackID: u.SlackID}
		if !u.TokenExpires.IsZero() {
			canon.Users[i].TokenExpires = u.TokenExpires.UTC().Format(time.RFC3339)
		}
	}
	for i, w := range c.Workspaces {
		cw := canonicalWorkspace{
			Name: w.Name, Environment: w.Environment, Timeout: w.Timeout,
			Workspace:  w.Workspace,
			EscalateTo: escalateTo(w.EscalateTo),
			Readers:    escalateTo(w.Readers),
		}
		for _, s := range w.Steps {
			cw.Steps = append(cw.Steps, canonicalStep{Step: s, EscalateTo: escalateTo(s.EscalateTo)})
		}
		for _, r := range w.Rules {
			cw.Rules = append(cw.Rules, canonicalRule{Rule: r, EscalateTo: escalateTo(r.EscalateTo)})
		}
		for _, p := range w.Policies {
			cw.Policies = append(cw.Policies, canonicalPolicy{Name: p.Name, SourceSHA256: hashToken(p.Source)})
		}
		if w.Apply != nil {
			cw.Apply = &canonicalApply{Command: w.Apply.Command, Dir: w.Apply.Dir, Timeout: w.Apply.Timeout, EnvFrom: w.Apply.EnvFrom}
		}
		if n := w.Notify; n != nil {
			cw.Notify = &canonicalNotify{Slack: n.Slack, Email: n.Email}
			if n.Webhook != nil {
				cw.Notify.Webhook = &canonicalWebhook{URL: n.Webhook.URL, SecretSHA256: hashToken(n.Webhook.Secret)}
			}
		}
		if !w.Supersede {
			cw.Supersede = &w.Supersede
		}
		if t := w.Terraform; t != nil {
			cw.Terraform = &canonicalTerraform{Binary: t.Binary, Dir: t.Dir, Git: t.Git, Vars: t.Vars,
				EnvFrom: t.EnvFrom, ReplanBeforeApply: t.ReplanBeforeApply, Timeout: t.Timeout}
		}
		if w.Hooks != nil {
			cw.Hooks = &canonicalSecret{SecretSHA256: hashToken(w.Hooks.Secret)}
		}
		cw.GitHub = w.GitHub
		cw.ExternalApproval = canonicalExternalOf(w.External)
		cw.TaskQueue = w.TaskQueue
		canon.Workspaces[i] = cw
	}
	canon.PublicURL, canon.TemporalUIURL = c.PublicURL, c.TemporalUIURL
	if sl := c.Slack; sl != nil {
		canon.Slack = &canonicalSlack{BotTokenSHA256: hashToken(sl.BotToken), SigningSecretSHA256: hashToken(sl.SigningSecret), APIURL: sl.APIURL}
	}
	if e := c.Email; e != nil {
		canon.Email = &canonicalEmail{Host: e.Host, Port: e.Port, TLS: e.TLS, From: e.From}
		if e.Username != "" {
			canon.Email.UsernameSHA256, canon.Email.PasswordSHA256 = hashToken(e.Username), hashToken(e.Password)
		}
	}
	for _, p := range c.TrustedProxies {
		canon.TrustedProxies = append(canon.TrustedProxies, p.String())
	}
	if o := c.OIDC; o != nil {
		canon.OIDC = &canonicalOIDC{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecretSHA256: hashToken(o.ClientSecret),
			RedirectURL: o.RedirectURL, Scopes: o.Scopes, UsernameClaim: o.UsernameClaim, GroupsClaim: o.GroupsClaim,
			Groups: o.Groups, Roles: o.Roles}
	}
	if g := c.GitHub; g != nil {
		canon.GitHub = &canonicalGitHub{WebhookSecretSHA256: hashToken(g.WebhookSecret), AutomationUser: g.AutomationUser, Users: g.Users}
		if len(g.Users) == 0 {
			canon.GitHub.Users = nil
		}
	}
	return json.Marshal(canon)
}
