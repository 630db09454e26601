package config

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

func externalConfig(block string) string {
	return `public_url: https://gatehouse.example.com
users:
  - {id: alice, email: alice@example.com, roles: [approver], token: t-alice}
workspaces:
  - name: prod-network
    external_approval:
` + block
}

func TestExternalServiceNow(t *testing.T) {
	c := mustParse(t, externalConfig(`      provider: servicenow
      url: https://acme.service-now.com/
      auth: { username: gh, password_env: GATEHOUSE_TEST_WEBHOOK_SECRET }
      callback_secret_env: GATEHOUSE_TEST_WEBHOOK_SECRET
      fields: { assignment_group: CAB, category: Software }
`))
	w := c.Workspaces[0]
	x := w.External
	if x == nil || x.Provider != approval.ProviderServiceNow || x.URL != "https://acme.service-now.com" || x.Username != "gh" || x.Password != "dev-only-secret" ||
		x.CallbackSecret != "dev-only-secret" || x.PollEvery != DefaultPollEvery || x.Fields["assignment_group"] != "CAB" {
		t.Fatalf("external = %+v", x)
	}
	if w.Workspace.External == nil || w.Workspace.External.Provider != approval.ProviderServiceNow || w.Workspace.External.PollEvery != 5*time.Minute {
		t.Errorf("the run's view of it = %+v", w.Workspace.External)
	}
	data, err := canonicalJSON(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "dev-only-secret") || !strings.Contains(string(data), "callback_secret_sha256") {
		t.Errorf("canonical form leaks or drops the secret: %s", data)
	}
}

func TestExternalJiraAndWebhook(t *testing.T) {
	c := mustParse(t, externalConfig(`      provider: jira
      url: http://jira.internal:8080
      auth: { token: pat }
      callback_secret: s
      poll_every: "0"
      project: CHG
      issue_type: Change
      approved_statuses: [Approved]
      rejected_statuses: [Declined, Canceled]
      cancel_transition: "31"
`))
	if x := c.Workspaces[0].External; x.Token != "pat" || x.PollEvery != 0 || x.CancelTransition != "31" {
		t.Errorf("jira = %+v", x)
	}
	c = mustParse(t, externalConfig(`      provider: webhook
      url: https://approvals.example.com/hook
      callback_secret: s
`))
	if x := c.Workspaces[0].External; x.Provider != approval.ProviderWebhook {
		t.Errorf("webhook = %+v", x)
	}
}

func TestExternalRefusesForeignAndMissingKeys(t *testing.T) {
	for name, tc := range map[string]struct{ block, path, want string }{
		"jira key on servicenow": {`      provider: servicenow
      url: https://sn
      auth: {token: x}
      callback_secret: s
      project: CHG
`, "workspaces[0].external_approval.project", "not a key of provider servicenow"},
		"servicenow key on jira": {`      provider: jira
      url: https://j
      auth: {token: x}
      callback_secret: s
      project: CHG
      issue_type: Change
      approved_statuses: [Approved]
      rejected_statuses: [Declined]
      fields: {a: b}
`, "workspaces[0].external_approval.fields", "not a key of provider jira"},
		"no secret": {`      provider: webhook
      url: https://h
`, "workspaces[0].external_approval", "callback_secret_env"},
		"unknown provider": {`      provider: remedy
      url: https://h
      callback_secret: s
`, "workspaces[0].external_approval.provider", "unknown provider"},
		"jira statuses": {`      provider: jira
      url: https://j
      auth: {token: x}
      callback_secret: s
      project: CHG
      issue_type: Change
`, "workspaces[0].external_approval.approved_statuses", "required"},
		"fixed field": {`      provider: servicenow
      url: https://sn
      auth: {token: x}
      callback_secret: s
      fields: {correlation_id: x}
`, "workspaces[0].external_approval.fields.correlation_id", "set by Gatehouse"},
		"no auth": {`      provider: servicenow
      url: https://sn
      callback_secret: s
`, "workspaces[0].external_approval.auth", "required"},
		"poll too often": {`      provider: webhook
      url: https://h
      callback_secret: s
      poll_every: 10s
`, "workspaces[0].external_approval.poll_every", "too often"},
	} {
		t.Run(name, func(t *testing.T) {
			found := false
			for _, p := range problemsOf(t, externalConfig(tc.block)) {
				if p.Path == tc.path && strings.Contains(p.Message, tc.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem at %s containing %q: %v", tc.path, tc.want, problemsOf(t, externalConfig(tc.block)))
			}
		})
	}
}

func TestExternalNeedsPublicURL(t *testing.T) {
	src := strings.Replace(externalConfig(`      provider: webhook
      url: https://h
      callback_secret: s
`), "public_url: https://gatehouse.example.com\n", "", 1)
	found := false
	for _, p := range problemsOf(t, src) {
		found = found || (p.Path == "workspaces[0].external_approval" && strings.Contains(p.Message, "public_url"))
	}
	if !found {
		t.Error("an external workspace without public_url is accepted: its callbacks would have nowhere to go")
	}
}
