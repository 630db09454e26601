package tests

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/internal/smtptest"
)

// TestEmailGoesToEachApprover: a workspace that emails always sends the
// approval request by SMTP — through the real client to an in-process
// server that parses what it gets — to each eligible approver, in text and
// HTML, with a link to the run; the requester is not asked.
func TestEmailGoesToEachApprover(t *testing.T) {
	sink, port := smtptest.NewServer(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
public_url: https://gatehouse.example.com
email: {smtp: {host: 127.0.0.1, port: %d, tls: none}, from: gatehouse@example.com}
users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: t-alice}
  - {id: bob, email: bob@example.com, groups: [platform], roles: [approver], token: t-bob}
  - {id: carol, email: carol@example.com, groups: [platform], roles: [approver], token: t-carol}
workspaces:
  - name: prod-network
    environment: production
    notify: {email: {mode: always}}
    rules:
      - {name: destroys-need-two, when: {destroys_gt: 0}, approvers: {groups: [platform]}, min_approvals: 2}
`, port)))
	if err != nil {
		t.Fatal(err)
	}
	s := stackFor(t, cfg, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	deadline := time.Now().Add(30 * time.Second)
	for len(sink.Received()) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	got := sink.Received()
	var to []string
	for _, m := range got {
		to = append(to, m.To...)
		for _, part := range []string{m.Text, m.HTML} {
			for _, want := range []string{"prod-network", "destroys-need-two", "https://gatehouse.example.com/ui/workspaces/prod-network/runs/" + run.ID} {
				if !strings.Contains(part, want) {
					t.Errorf("email to %v lacks %q in a part:\n%s", m.To, want, part)
				}
			}
		}
		if m.From != "gatehouse@example.com" || m.Subject == "" {
			t.Errorf("email from %q subject %q; want the configured sender and a subject", m.From, m.Subject)
		}
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{"bob@example.com", "carol@example.com"}) {
		t.Errorf("emailed %v; want bob and carol, not alice who asked", to)
	}
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
}
