package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// This file holds external approval: a workspace whose runs are approved in
// ServiceNow, Jira or any system that can call a webhook.

// DefaultPollEvery is how often a waiting run reads its ticket when the
// workspace does not say.
const DefaultPollEvery = 5 * time.Minute

// External is how Gatehouse reaches a workspace's external approval system
// and verifies what it sends back. The secrets never reach a run.
type External struct {
	approval.ExternalApproval
	// URL is the system's base URL (webhook: the URL requests are posted to).
	URL string
	// Username and Password authenticate with Basic auth (Jira Cloud: an
	// email and an API token); Token with Bearer (a Jira Data Center PAT).
	Username, Password, Token string
	// CallbackSecret verifies the system's callbacks, and signs what
	// Gatehouse posts to a webhook provider.
	CallbackSecret string
	// Fields are copied into every ServiceNow change request.
	Fields map[string]string
	// Jira: the project and issue type of the issues Gatehouse creates,
	// the statuses that approve and reject, and the transition that
	// cancels (optional).
	Project          string
	IssueType        string
	ApprovedStatuses []string
	RejectedStatuses []string
	CancelTransition string
}

type rawExternal struct {
	Provider          string            `yaml:"provider"`
	URL               string            `yaml:"url"`
	Auth              *rawExternalAuth  `yaml:"auth"`
	CallbackSecret    string            `yaml:"callback_secret"`
	CallbackSecretEnv string            `yaml:"callback_secret_env"`
	PollEvery         *string           `yaml:"poll_every"`
	Fields            map[string]string `yaml:"fields"`
	Project           string            `yaml:"project"`
	IssueType         string            `yaml:"issue_type"`
	ApprovedStatuses  []string          `yaml:"approved_statuses"`
	RejectedStatuses  []string          `yaml:"rejected_statuses"`
	CancelTransition  string            `yaml:"cancel_transition"`
}

type rawExternalAuth struct {
	Username    string `yaml:"username"`
	UsernameEnv string `yaml:"username_env"`
	Password    string `yaml:"password"`
	PasswordEnv string `yaml:"password_env"`
	Token       string `yaml:"token"`
	TokenEnv    string `yaml:"token_env"`
}

// external validates a workspace's external_approval block. Its keys are
// flat; a key that belongs to another provider is refused, so a config
// copied from a Jira workspace cannot silently lose its meaning.
func (v *validator) external(p string, re rawExternal) *External {
	x := &External{URL: re.URL, Fields: re.Fields, Project: re.Project, IssueType: re.IssueType,
		ApprovedStatuses: re.ApprovedStatuses, RejectedStatuses: re.RejectedStatuses, CancelTransition: re.CancelTransition}
	x.Provider = approval.ExternalProvider(re.Provider)
	if !x.Provider.Valid() {
		v.add(p+".provider", "unknown provider %q (want servicenow, jira or webhook)", re.Provider)
	}
	if re.URL == "" {
		v.add(p+".url", "required: the system's base URL (webhook: the URL requests are posted to)")
	} else {
		x.URL = v.baseURL(p+".url", re.URL)
	}
	x.CallbackSecret, _ = v.secret(p, "callback_secret", re.CallbackSecret, re.CallbackSecretEnv)
	x.PollEvery = DefaultPollEvery
	if re.PollEvery != nil {
		if *re.PollEvery == "0" {
			x.PollEvery = 0
		} else if d, ok := v.duration(p+".poll_every", *re.PollEvery); ok {
			x.PollEvery = d
			if d < time.Minute {
				v.add(p+".poll_every", "%s is too often: at least 1m, or 0 to disable", d)
			}
		}
	}
	// Which keys each provider takes, beyond provider, url, auth,
	// callback_secret and poll_every.
	own := map[approval.ExternalProvider][]string{
		approval.ProviderServiceNow: {"fields"},
		approval.ProviderJira:       {"project", "issue_type", "approved_statuses", "rejected_statuses", "cancel_transition"},
		approval.ProviderWebhook:    {},
	}
	given := map[string]bool{
		"fields": len(re.Fields) > 0, "project": re.Project != "", "issue_type": re.IssueType != "",
		"approved_statuses": len(re.ApprovedStatuses) > 0, "rejected_statuses": len(re.RejectedStatuses) > 0,
		"cancel_transition": re.CancelTransition != "",
	}
	if keys, ok := own[x.Provider]; ok {
		var foreign []string
		for k, set := range given {
			if set && !slices.Contains(keys, k) {
				foreign = append(foreign, k)
			}
		}
		sort.Strings(foreign)
		for _, k := range foreign {
			v.add(p+"."+k, "is not a key of provider %s", x.Provider)
		}
	}
	switch x.Provider {
	case approval.ProviderServiceNow:
		for _, k := range []string{"correlation_id", "correlation_display", "short_description", "description"} {
			if _, ok := re.Fields[k]; ok {
				v.add(p+".fields."+k, "is set by Gatehouse and may not be configured")
			}
		}
	case approval.ProviderJira:
		if re.Project == "" {
			v.add(p+".project", "required: the key of the project Gatehouse creates issues in")
		}
		if re.IssueType == "" {
			v.add(p+".issue_type", "required: the issue type Gatehouse creates, e.g. Change")
		}
		if len(re.ApprovedStatuses) == 0 {
			v.add(p+".approved_statuses", "required: the statuses that approve the run")
		}
		if len(re.RejectedStatuses) == 0 {
			v.add(p+".rejected_statuses", "required: the statuses that reject the run")
		}
		for _, s := range re.ApprovedStatuses {
			if slices.ContainsFunc(re.RejectedStatuses, func(r string) bool { return strings.EqualFold(r, s) }) {
				v.add(p+".rejected_statuses", "%q also approves", s)
			}
		}
	}
	if a := re.Auth; a != nil && x.Provider != approval.ProviderWebhook {
		switch {
		case (a.Username != "" || a.UsernameEnv != "") && (a.Token != "" || a.TokenEnv != ""):
			v.add(p+".auth", "give username and password (Basic) or token (Bearer), not both")
		case a.Username != "" || a.UsernameEnv != "":
			x.Username, _ = v.secret(p+".auth", "username", a.Username, a.UsernameEnv)
			x.Password, _ = v.secret(p+".auth", "password", a.Password, a.PasswordEnv)
		default:
			x.Token, _ = v.secret(p+".auth", "token", a.Token, a.TokenEnv)
		}
	} else if a != nil {
		v.add(p+".auth", "is not a key of provider webhook: its requests are signed with callback_secret")
	} else if x.Provider == approval.ProviderServiceNow || x.Provider == approval.ProviderJira {
		v.add(p+".auth", "required: { username_env, password_env } or { token_env }")
	}
	return x
}

// externalChannels checks what external workspaces need at the top level:
// public_url, the base of the run links and callback URLs they send.
func (v *validator) externalChannels(c *Config) {
	for i, w := range c.Workspaces {
		if w.External != nil && c.PublicURL == "" {
			v.add(indexPath("workspaces", i)+".external_approval", "needs public_url: the base of the run links and %s callback URL Gatehouse sends", w.External.Provider.Title())
		}
	}
}

// canonicalExternal is External as the config version writes it: secrets
// only as digests.
type canonicalExternal struct {
	URL              string            `json:"url"`
	UsernameSHA256   string            `json:"username_sha256,omitempty"`
	PasswordSHA256   string            `json:"password_sha256,omitempty"`
	TokenSHA256      string            `json:"token_sha256,omitempty"`
	SecretSHA256     string            `json:"callback_secret_sha256"`
	Fields           map[string]string `json:"fields,omitempty"`
	Project          string            `json:"project,omitempty"`
	IssueType        string            `json:"issue_type,omitempty"`
	ApprovedStatuses []string          `json:"approved_statuses,omitempty"`
	RejectedStatuses []string          `json:"rejected_statuses,omitempty"`
	CancelTransition string            `json:"cancel_transition,omitempty"`
}

func canonicalExternalOf(x *External) *canonicalExternal {
	if x == nil {
		return nil
	}
	c := &canonicalExternal{URL: x.URL, SecretSHA256: hashToken(x.CallbackSecret), Fields: x.Fields, Project: x.Project,
		IssueType: x.IssueType, ApprovedStatuses: x.ApprovedStatuses, RejectedStatuses: x.RejectedStatuses, CancelTransition: x.CancelTransition}
	if x.Username != "" {
		c.UsernameSHA256, c.PasswordSHA256 = hashToken(x.Username), hashToken(x.Password)
	}
	if x.Token != "" {
		c.TokenSHA256 = hashToken(x.Token)
	}
	return c
}

// String names the provider and its URL, never a secret.
func (x *External) String() string { return fmt.Sprintf("%s %s", x.Provider, x.URL) }
