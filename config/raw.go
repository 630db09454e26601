package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The raw types mirror the YAML layout exactly, field for field. They exist so
// that the shape check below can walk them by reflection: adding a key to the
// format means adding a field here, and the unknown-key and kind checks follow
// without further code. Values stay as written (durations as strings, optional
// numbers as pointers) so that validation can tell "absent" from "zero" and
// report the problem at the right path.
type (
	rawConfig struct {
		Users      []rawUser      `yaml:"users"`
		Templates  []rawTemplate  `yaml:"templates"`
		Workspaces []rawWorkspace `yaml:"workspaces"`
		GitHub     *rawGitHub     `yaml:"github"`
		// PublicURL is the base of every link Gatehouse sends; TemporalUIURL
		// where links into the Temporal Web UI point.
		PublicURL     string    `yaml:"public_url"`
		TemporalUIURL string    `yaml:"temporal_ui_url"`
		Slack         *rawSlack `yaml:"slack"`
		Email         *rawEmail `yaml:"email"`
		// Database keeps the audit trail.
		Database *rawDatabase `yaml:"database"`
		// Temporal is how processes reach the cluster: TLS, an API key.
		Temporal *rawTemporal `yaml:"temporal"`
		// OIDC signs people in to the web UI through an identity provider.
		OIDC *rawOIDC `yaml:"oidc"`
		// TrustedProxies are the reverse proxies whose X-Forwarded-For
		// the gateway believes (addresses or CIDR prefixes).
		TrustedProxies []string `yaml:"trusted_proxies"`
	}

	rawSlack struct {
		BotToken         string `yaml:"bot_token"`
		BotTokenEnv      string `yaml:"bot_token_env"`
		SigningSecret    string `yaml:"signing_secret"`
		SigningSecretEnv string `yaml:"signing_secret_env"`
		APIURL           string `yaml:"api_url"`
	}

	rawEmail struct {
		SMTP rawSMTP `yaml:"smtp"`
		From string  `yaml:"from"`
	}

	rawSMTP struct {
		Host        string `yaml:"host"`
		Port        *int   `yaml:"port"`
		TLS         string `yaml:"tls"`
		Username    string `yaml:"username"`
		UsernameEnv string `yaml:"username_env"`
		Password    string `yaml:"password"`
		PasswordEnv string `yaml:"password_env"`
	}

	rawSlackNotify struct {
		Channel     string `yaml:"channel"`
		DMApprovers bool   `yaml:"dm_approvers"`
	}

	rawEmailNotify struct {
		Mode string `yaml:"mode"`
	}

	// rawGitHub is how GitHub's webhook deliveries start runs: the secret
	// that verifies them, the automation user that submits them, and who
	// each GitHub login is here.
	rawGitHub struct {
		WebhookSecret    string            `yaml:"webhook_secret"`
		WebhookSecretEnv string            `yaml:"webhook_secret_env"`
		AutomationUser   string            `yaml:"automation_user"`
		Users            map[string]string `yaml:"users"`
	}

	// rawTerraform makes Gatehouse plan and apply the workspace itself.
	rawTerraform struct {
		Binary            string            `yaml:"binary"`
		Dir               string            `yaml:"dir"`
		Git               *rawGit           `yaml:"git"`
		Vars              map[string]string `yaml:"vars"`
		EnvFrom           []string          `yaml:"env_from"`
		ReplanBeforeApply bool              `yaml:"replan_before_apply"`
		Timeout           string            `yaml:"timeout"`
	}

	rawGit struct {
		URL  string `yaml:"url"`
		Ref  string `yaml:"ref"`
		Path string `yaml:"path"`
	}

	rawFreeze struct {
		Cron     string `yaml:"cron"`
		Duration string `yaml:"duration"`
		Reason   string `yaml:"reason"`
	}

	rawHooks struct {
		Secret    string `yaml:"secret"`
		SecretEnv string `yaml:"secret_env"`
	}

	rawWorkspaceGitHub struct {
		Repository string   `yaml:"repository"`
		Branch     string   `yaml:"branch"`
		Paths      []string `yaml:"paths"`
	}

	// rawTemplate is a named set of rules and steps that workspaces take in
	// with use. It has no timing of its own: its rules and steps run on the
	// timing of each workspace that uses it, under their own overrides.
	rawTemplate struct {
		Name  string    `yaml:"name"`
		Steps []rawStep `yaml:"steps"`
		Rules []rawRule `yaml:"rules"`
	}

	rawUser struct {
		ID          string   `yaml:"id"`
		Email       string   `yaml:"email"`
		Source      string   `yaml:"source"`
		Groups      []string `yaml:"groups"`
		Roles       []string `yaml:"roles"`
		Token       string   `yaml:"token"`
		TokenSHA256 string   `yaml:"token_sha256"`
		// TokenExpires (RFC 3339) ends the token's validity.
		TokenExpires string `yaml:"token_expires"`
		Automation   bool   `yaml:"automation"`
		// SlackID is the user's Slack member id (U…); without it the
		// user is matched by the email Slack reports.
		SlackID string `yaml:"slack_id"`
	}

	rawWorkspace struct {
		Name        string     `yaml:"name"`
		Environment string     `yaml:"environment"`
		Tags        []string   `yaml:"tags"`
		Use         []string   `yaml:"use"`
		Policies    []string   `yaml:"policies"`
		OnTimeout   string     `yaml:"on_timeout"`
		Apply       *rawApply  `yaml:"apply"`
		Notify      *rawNotify `yaml:"notify"`
		AllowBypass bool       `yaml:"allow_bypass"`
		// Readers may see the workspace's runs besides the people its
		// rules, steps and escalations name.
		Readers     *rawApprovers       `yaml:"readers"`
		Terraform   *rawTerraform       `yaml:"terraform"`
		Supersede   *bool               `yaml:"supersede"`
		ApprovalTTL string              `yaml:"approval_ttl"`
		Freeze      []rawFreeze         `yaml:"freeze"`
		Hooks       *rawHooks           `yaml:"hooks"`
		GitHub      *rawWorkspaceGitHub `yaml:"github"`
		// TaskQueue is the Temporal task queue its runs go to; "" is the
		// default one every worker polls.
		TaskQueue string       `yaml:"task_queue"`
		External  *rawExternal `yaml:"external_approval"`
		Steps     []rawStep    `yaml:"steps"`
		Rules     []rawRule    `yaml:"rules"`
		rawTiming `yaml:",inline"`
	}

	// rawTiming holds the timing keys that a workspace, a step and a rule
	// all take: the workspace's defaults, and each step's or rule's overrides.
	rawTiming struct {
		Timeout       string        `yaml:"timeout"`
		RemindEvery   string        `yaml:"remind_every"`
		RemindBefore  string        `yaml:"remind_before"`
		EscalateAfter string        `yaml:"escalate_after"`
		EscalateTo    *rawApprovers `yaml:"escalate_to"`
	}

	rawNotify struct {
		Webhook *rawWebhook     `yaml:"webhook"`
		Slack   *rawSlackNotify `yaml:"slack"`
		Email   *rawEmailNotify `yaml:"email"`
	}

	rawWebhook struct {
		URL       string `yaml:"url"`
		Secret    string `yaml:"secret"`
		SecretEnv string `yaml:"secret_env"`
	}

	rawApply struct {
		Command []string `yaml:"command"`
		Dir     string   `yaml:"dir"`
		Timeout string   `yaml:"timeout"`
		EnvFrom []string `yaml:"env_from"`
	}

	rawRule struct {
		Name              string        `yaml:"name"`
		Stage             string        `yaml:"stage"`
		When              rawConditions `yaml:"when"`
		Approvers         rawApprovers  `yaml:"approvers"`
		MinApprovals      *int          `yaml:"min_approvals"`
		AllowSelfApproval bool          `yaml:"allow_self_approval"`
		rawTiming         `yaml:",inline"`
	}

	rawStep struct {
		Name              string       `yaml:"name"`
		Stage             string       `yaml:"stage"`
		Approvers         rawApprovers `yaml:"approvers"`
		MinApprovals      *int         `yaml:"min_approvals"`
		AllowSelfApproval bool         `yaml:"allow_self_approval"`
		rawTiming         `yaml:",inline"`
	}

	rawConditions struct {
		AddsGT             *int     `yaml:"adds_gt"`
		ChangesGT          *int     `yaml:"changes_gt"`
		DestroysGT         *int     `yaml:"destroys_gt"`
		ReplacesGT         *int     `yaml:"replaces_gt"`
		ResourcesGT        *int     `yaml:"resources_gt"`
		Actions            []string `yaml:"actions"`
		ResourceTypes      []string `yaml:"resource_types"`
		Providers          []string `yaml:"providers"`
		Environment        string   `yaml:"environment"`
		Tags               []string `yaml:"tags"`
		MonthlyCostDeltaGT *float64 `yaml:"monthly_cost_delta_gt"`
		MonthlyCostGT      *float64 `yaml:"monthly_cost_gt"`
	}

	rawApprovers struct {
		Users  []string `yaml:"users"`
		Groups []string `yaml:"groups"`
		Roles  []string `yaml:"roles"`
	}
)

// YAML core-schema tags as yaml.Node.ShortTag reports them.
const (
	tagNull  = "!!null"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagBool  = "!!bool"
	tagMerge = "!!merge"
)

// checkShape walks the YAML node tree alongside the Go type t, reporting every
// unknown or duplicate key and every value of the wrong kind. yaml.v3's own
// decoder stops at the first type error and ignores unknown keys unless told
// otherwise (and then also stops at the first), so this walk is what lets Parse
// report all problems of a file at once, each at its path.
func checkShape(n *yaml.Node, t reflect.Type, path string, v *validator) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	// An explicit null ("key:" or "key: ~") decodes to the zero value, which
	// is "absent" for every field; validation then says what is missing.
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			v.add(path, "expected a mapping, got %s", describe(n))
			return
		}
		fields := yamlFields(t)
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				v.add(path, "expected a string key, got %s", describe(k))
				continue
			}
			p := joinPath(path, k.Value)
			if k.ShortTag() == tagMerge {
				// Merged keys would have to be checked against the keys they
				// override; the format is small enough to do without them.
				v.add(p, "merge keys are not supported")
				continue
			}
			if line, dup := seen[k.Value]; dup {
				v.add(p, "duplicate key (first given on line %d)", line)
				continue
			}
			seen[k.Value] = k.Line
			f, ok := fields[k.Value]
			if !ok {
				v.add(p, "unknown field")
				continue
			}
			checkShape(val, f.Type, p, v)
		}
	case reflect.Map:
		// Maps are string to string (vars, GitHub logins): keys are free,
		// each value is checked as the element type.
		if n.Kind != yaml.MappingNode {
			v.add(path, "expected a mapping, got %s", describe(n))
			return
		}
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == tagMerge {
				v.add(path, "expected a string key, got %s", describe(k))
				continue
			}
			p := joinPath(path, k.Value)
			if line, dup := seen[k.Value]; dup {
				v.add(p, "duplicate key (first given on line %d)", line)
				continue
			}
			seen[k.Value] = k.Line
			checkShape(val, t.Elem(), p, v)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			v.add(path, "expected a list, got %s", describe(n))
			return
		}
		for i, e := range n.Content {
			checkShape(e, t.Elem(), indexPath(path, i), v)
		}
	case reflect.String:
		// Any scalar is a fine string: yaml.v3 keeps the text as written, so
		// "id: 007" stays "007".
		if n.Kind != yaml.ScalarNode {
			v.add(path, "expected a string, got %s", describe(n))
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != tagInt {
			v.add(path, "expected an integer, got %s", describe(n))
		}
	case reflect.Float64:
		// A whole number is a fine number: "monthly_cost_gt: 500".
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != tagInt && n.ShortTag() != tagFloat) {
			v.add(path, "expected a number, got %s", describe(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != tagBool {
			v.add(path, "expected a boolean (true or false), got %s", describe(n))
		}
	default:
		// Only reachable if a raw type gains a field of a kind not handled
		// above: a programming error, caught by the tests.
		panic(fmt.Sprintf("config: checkShape: unsupported type %s at %q", t, path))
	}
}

// yamlFields maps each yaml key of struct type t to its field, including the
// keys of the structs it inlines (`yaml:",inline"`), as yaml.v3 decodes them.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" && slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			maps.Copy(fields, yamlFields(f.Type))
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f
	}
	return fields
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

// joinPath appends a key to a path; the root path is "".
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a list index to a path.
func indexPath(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}
