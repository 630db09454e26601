package itsm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Jira stands for a run's approval with an issue, through the REST API v2,
// which Jira Cloud and Data Center both serve with plain-text descriptions
// and comments. The issue's workflow decides: the statuses in Approved and
// Rejected are verdicts, any other status waits. CancelTransition is the id
// of the transition that withdraws an issue ("" to only comment), since
// workflows name and number their transitions differently.
type Jira struct {
	BaseURL          string
	Auth             Auth
	Project          string
	IssueType        string
	Approved         []string
	Rejected         []string
	CancelTransition string
	Client           *http.Client
}

// JiraLabel is the label that ties an issue to its run: Open searches by
// it, and the gateway finds the run of a webhook delivery by it. Jira
// labels cannot hold spaces; run ids have none.
func JiraLabel(runID string) string { return "gatehouse-" + runID }

// Open finds the run's issue by its label or creates it, so a retry after
// a lost answer does not open a second issue.
func (j *Jira) Open(ctx context.Context, req Request) (Ticket, error) {
	if req.RunID == "" {
		return Ticket{}, fmt.Errorf("jira: open: %w: no run id", ErrInvalid)
	}
	base := strings.TrimRight(j.BaseURL, "/")
	q := url.Values{
		"jql":        {"labels = " + jqlString(JiraLabel(req.RunID))},
		"fields":     {"key"},
		"maxResults": {"1"},
	}
	var found struct {
		Issues []struct {
			Key string `json:"key"`
		} `json:"issues"`
	}
	err := do(ctx, j.Client, "jira: look for the run's issue", http.MethodGet, base+"/rest/api/2/search?"+q.Encode(), j.Auth, nil, &found)
	var se *StatusError
	if errors.As(err, &se) && (se.Code == http.StatusGone || se.Code == http.StatusNotFound) {
		// Jira Cloud removed /search (410 Gone) for /search/jql, which
		// takes the same parameters and answers issues the same way;
		// Data Center has only /search.
		err = do(ctx, j.Client, "jira: look for the run's issue", http.MethodGet, base+"/rest/api/2/search/jql?"+q.Encode(), j.Auth, nil, &found)
	}
	if err != nil {
		return Ticket{}, err
	}
	if len(found.Issues) > 0 && found.Issues[0].Key != "" {
		return j.ticket(found.Issues[0].Key), nil
	}
	body := map[string]any{"fields": map[string]any{
		"project":     map[string]string{"key": j.Project},
		"issuetype":   map[string]string{"name": j.IssueType},
		"summary":     req.Title,
		"description": req.Description,
		"labels":      []string{JiraLabel(req.RunID)},
	}}
	var created struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if err := do(ctx, j.Client, "jira: create issue", http.MethodPost, base+"/rest/api/2/issue", j.Auth, body, &created); err != nil {
		return Ticket{}, err
	}
	if created.Key == "" {
		return Ticket{}, errors.New("jira: create issue: the answer has no key")
	}
	return j.ticket(created.Key), nil
}

// jqlString quotes s as a JQL string literal, escaping what would end it.
func jqlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (j *Jira) ticket(key string) Ticket {
	return Ticket{ID: key, Ref: key, Link: strings.TrimRight(j.BaseURL, "/") + "/browse/" + url.PathEscape(key)}
}

// jiraUser is a user as Jira sends one. Cloud hides names and often the
// email address (GDPR) and always has accountId; Data Center has name.
type jiraUser struct {
	AccountID    string `json:"accountId"`
	DisplayName  string `json:"displayName"`
	EmailAddress string `json:"emailAddress"`
	Name         string `json:"name"`
}

// who is the most readable way the user is named.
func (u jiraUser) who() string {
	for _, s := range []string{u.DisplayName, u.EmailAddress, u.AccountID, u.Name} {
		if s != "" {
			return s
		}
	}
	return ""
}

// jiraItem is one field change of a changelog entry.
type jiraItem struct {
	Field      string `json:"field"`
	FromString string `json:"fromString"`
	ToString   string `json:"toString"`
}

// Read reads the issue's status and, from its changelog, who moved it to
// that status and when. The latest status change is chosen by its time,
// not its place, since the order of histories is not the same everywhere.
func (j *Jira) Read(ctx context.Context, t Ticket) (State, error) {
	if t.ID == "" {
		return State{}, fmt.Errorf("jira: read issue: %w: no issue key", ErrInvalid)
	}
	u := strings.TrimRight(j.BaseURL, "/") + "/rest/api/2/issue/" + url.PathEscape(t.ID) + "?fields=status,updated&expand=changelog"
	var got struct {
		Fields struct {
			Status struct {
				Name string `json:"name"`
			} `json:"status"`
		} `json:"fields"`
		Changelog struct {
			Histories []struct {
				Author  jiraUser   `json:"author"`
				Created string     `json:"created"`
				Items   []jiraItem `json:"items"`
			} `json:"histories"`
		} `json:"changelog"`
	}
	if err := do(ctx, j.Client, "jira: read issue", http.MethodGet, u, j.Auth, nil, &got); err != nil {
		return State{}, err
	}
	st := State{State: got.Fields.Status.Name, Verdict: j.Map(got.Fields.Status.Name)}
	var latest time.Time
	for _, h := range got.Changelog.Histories {
		if !hasStatus(h.Items) {
			continue
		}
		at, err := time.Parse(jiraTime, h.Created)
		if err != nil || (!latest.IsZero() && at.Before(latest)) {
			continue
		}
		latest, st.Actor = at, h.Author.who()
	}
	if st.Verdict != VerdictNone && !latest.IsZero() {
		st.DecidedAt = latest.UTC()
	}
	return st, nil
}

// jiraTime is how Jira's REST API writes times.
const jiraTime = "2006-01-02T15:04:05.000-0700"

// hasStatus reports whether a changelog entry changed the status.
func hasStatus(items []jiraItem) bool {
	for _, it := range items {
		if strings.EqualFold(it.Field, "status") {
			return true
		}
	}
	return false
}

// Map reads a verdict from a status name, ignoring case and surrounding
// space, since statuses are typed by hand in the config. A status in both
// lists approves: configuration validation is where that is refused.
func (j Jira) Map(status string) Verdict {
	for _, s := range j.Approved {
		if strings.EqualFold(strings.TrimSpace(s), strings.TrimSpace(status)) {
			return VerdictApproved
		}
	}
	for _, s := range j.Rejected {
		if strings.EqualFold(strings.TrimSpace(s), strings.TrimSpace(status)) {
			return VerdictRejected
		}
	}
	return VerdictNone
}

// Cancel comments why and, when configured, moves the issue with the
// cancel transition. Both are tried, so the people watching learn why even
// when the transition is not available from the current status; the first
// failure is returned.
func (j *Jira) Cancel(ctx context.Context, t Ticket, why string) error {
	if t.ID == "" {
		return fmt.Errorf("jira: cancel: %w: no issue key", ErrInvalid)
	}
	base := strings.TrimRight(j.BaseURL, "/") + "/rest/api/2/issue/" + url.PathEscape(t.ID)
	err := do(ctx, j.Client, "jira: comment", http.MethodPost, base+"/comment", j.Auth, map[string]string{"body": why}, nil)
	if j.CancelTransition != "" {
		terr := do(ctx, j.Client, "jira: transition", http.MethodPost, base+"/transitions", j.Auth,
			map[string]any{"transition": map[string]string{"id": j.CancelTransition}}, nil)
		if err == nil {
			err = terr
		}
	}
	return err
}

// JiraCallback is what Gatehouse reads of a Jira webhook delivery. Jira
// sends every update of the issue; only a StatusChange can decide, and To
// is the status it moved to.
type JiraCallback struct {
	Event        string
	IssueKey     string
	Labels       []string
	StatusChange bool
	From, To     string
	Actor        string
	Timestamp    time.Time
}

// ParseJira parses the body of Jira's own webhook (jira:issue_updated and
// the other issue events), whose signature the caller has checked. A
// delivery without an issue key cannot be matched to a run and is an
// error. Actor is the user who made the change; Timestamp is Jira's, in
// milliseconds.
func ParseJira(body []byte) (JiraCallback, error) {
	var raw struct {
		Timestamp    int64    `json:"timestamp"`
		WebhookEvent string   `json:"webhookEvent"`
		User         jiraUser `json:"user"`
		Issue        struct {
			Key    string `json:"key"`
			Fields struct {
				Labels []string `json:"labels"`
				Status struct {
					Name string `json:"name"`
				} `json:"status"`
			} `json:"fields"`
		} `json:"issue"`
		Changelog struct {
			Items []jiraItem `json:"items"`
		} `json:"changelog"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return JiraCallback{}, fmt.Errorf("not a Jira webhook delivery: %w", err)
	}
	if raw.Issue.Key == "" {
		return JiraCallback{}, errors.New("issue.key: missing")
	}
	cb := JiraCallback{Event: raw.WebhookEvent, IssueKey: raw.Issue.Key, Labels: raw.Issue.Fields.Labels, Actor: raw.User.who()}
	if raw.Timestamp > 0 {
		cb.Timestamp = time.UnixMilli(raw.Timestamp).UTC()
	}
	for _, it := range raw.Changelog.Items {
		if strings.EqualFold(it.Field, "status") {
			cb.StatusChange, cb.From, cb.To = true, it.FromString, it.ToString
		}
	}
	if cb.StatusChange && cb.To == "" {
		cb.To = raw.Issue.Fields.Status.Name
	}
	return cb, nil
}
