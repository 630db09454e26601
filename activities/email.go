package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

// sendEmails sends the notice to each recipient's address, one email each,
// skipping those an earlier attempt reached. A recipient without an address
// is reported, not retried; a failing SMTP server is a retryable error.
func (a *Activities) sendEmails(ctx context.Context, v view, p *NotifyProgress) error {
	type letter struct {
		user approval.UserID
		msg  *mail.Msg
	}
	var letters []letter
	for _, u := range uniqueUsers(v.Event.Recipients) {
		if slices.Contains(p.Emailed, u) {
			continue
		}
		user, ok := a.Config.User(u)
		if !ok || user.Email == "" {
			p.fail(fmt.Sprintf("email: no address for %s", u))
			continue
		}
		m, err := emailMessage(a.Config.Email.From, user.Email, v, time.Now())
		if err != nil {
			return err
		}
		letters = append(letters, letter{user: u, msg: m})
	}
	if len(letters) == 0 {
		return nil
	}
	c, err := mailClient(a.Config.Email)
	if err != nil {
		return err
	}
	if err := c.DialWithContext(ctx); err != nil {
		return fmt.Errorf("email: connect to %s:%d: %w", a.Config.Email.Host, a.Config.Email.Port, err)
	}
	defer func() { _ = c.Close() }()
	for _, l := range letters {
		if err := c.Send(l.msg); err != nil {
			return fmt.Errorf("email to %s: %w", l.user, err)
		}
		p.Emailed = append(p.Emailed, l.user)
		p.save(ctx)
	}
	return nil
}

// mailClient is an SMTP client for the configured server: TLS as the config
// says (never falling back to plain text when TLS was asked for), and SMTP
// authentication when a username is set.
func mailClient(cfg *config.Email) (*mail.Client, error) {
	opts := []mail.Option{mail.WithPort(cfg.Port), mail.WithTimeout(15 * time.Second)}
	switch cfg.TLS {
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case "tls":
		opts = append(opts, mail.WithSSL())
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	c, err := mail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("email: client for %s: %w", cfg.Host, err)
	}
	return c, nil
}

// emailMessage is the notice to one address: the same facts as the Slack
// message, in plain text and HTML, with the link to the run.
func emailMessage(from, to string, v view, now time.Time) (*mail.Msg, error) {
	m := mail.NewMsg()
	if err := m.From(from); err != nil {
		return nil, fmt.Errorf("email: sender %q: %w", from, err)
	}
	if err := m.To(to); err != nil {
		return nil, fmt.Errorf("email: recipient %q: %w", to, err)
	}
	m.Subject(emailSubject(v))
	// One Message-ID per notice and address, so a mail system that sees a
	// retried send can tell it is the same email.
	sum := sha256.Sum256([]byte(v.Event.ID + "\x00" + to))
	m.SetMessageIDWithValue(hex.EncodeToString(sum[:12]) + "@gatehouse")
	m.SetGenHeader(mail.Header(HeaderEventID), v.Event.ID)
	m.SetDate()
	data := emailData(v, now)
	var text, html bytes.Buffer
	if err := textEmail.Execute(&text, data); err != nil {
		return nil, fmt.Errorf("email: render text: %w", err)
	}
	if err := htmlEmail.Execute(&html, data); err != nil {
		return nil, fmt.Errorf("email: render html: %w", err)
	}
	m.SetBodyString(mail.TypeTextPlain, text.String())
	m.AddAlternativeString(mail.TypeTextHTML, html.String())
	return m, nil
}

func emailSubject(v view) string {
	lead := map[EventKind]string{
		EventReminder:  "Reminder: ",
		EventEscalated: "Escalated: ",
		EventRenotify:  "Asked again: ",
	}[v.Event.Kind]
	return fmt.Sprintf("[Gatehouse] %s%s (run %s)", lead, v.Title(), v.Event.RunID)
}

// emailFacts is what both email templates show.
type emailFacts struct {
	Title, Lead, Workspace, Environment, Requester, Status, Message string
	Plan, Cost                                                      string
	Removed                                                         []string
	RemovedMore                                                     int
	Denials, Warnings                                               []string
	Reasons                                                         []emailReason
	Decisions                                                       []string
	Earlier                                                         int
	Deadline                                                        string
	Outcome                                                         string
	RunID, RunURL, TemporalURL                                      string
}

type emailReason struct {
	Name, Progress, Detail string
	Approved               bool
}

func emailData(v view, now time.Time) emailFacts {
	f := emailFacts{
		Title: v.Title(), Workspace: v.Event.Workspace, Environment: v.Environment(), Requester: v.Requester(),
		Status: strings.ReplaceAll(string(v.Run.Status), "_", " "), Message: v.Run.Message,
		Plan: v.PlanLine(), Cost: v.CostLine(), Removed: v.Removed, RemovedMore: v.RemovedMore,
		Denials: v.Denials(), Warnings: v.Warnings(), RunID: v.Event.RunID, RunURL: v.RunURL, TemporalURL: v.TemporalURL,
	}
	switch v.Event.Kind {
	case EventReminder:
		f.Lead = "Reminder: this run still needs your approval."
	case EventEscalated:
		f.Lead = "This run was escalated to you: it needs an approval."
	case EventRenotify:
		f.Lead = string(v.Event.Actor) + " asks again for your approval."
	default:
		f.Lead = "This run needs your approval."
	}
	if d := v.Deadline(); !d.IsZero() {
		f.Deadline = d.UTC().Format("Mon 2 Jan 2006 15:04 UTC") + " (" + until(d, now) + ")"
	}
	for _, r := range v.Reasons() {
		var parts []string
		if len(r.Approved) > 0 {
			parts = append(parts, "approved by "+joinUsers(r.Approved))
		}
		if len(r.Pending) > 0 {
			parts = append(parts, "waiting for "+joinUsers(r.Pending))
		}
		if g := approverGroups(r); g != "" {
			parts = append(parts, g)
		}
		if r.Note != "" {
			parts = append(parts, r.Note)
		}
		f.Reasons = append(f.Reasons, emailReason{Name: r.Name, Progress: r.Progress, Detail: strings.Join(parts, "; "), Approved: r.State == approval.ReasonApproved})
	}
	ds, earlier := v.Decisions()
	f.Earlier = earlier
	for _, d := range ds {
		s := string(d.UserID) + " " + decisionVerb(d.Kind)
		if d.Comment != "" {
			s += ": “" + clip(d.Comment, 300) + "”"
		}
		f.Decisions = append(f.Decisions, s)
	}
	if v.Run.Done() {
		f.Outcome = f.Status
	}
	return f
}

var textEmail = texttemplate.Must(texttemplate.New("text").Parse(`{{.Title}}

{{.Lead}}

Workspace:    {{.Workspace}}
Environment:  {{.Environment}}
Requested by: {{.Requester}}
Status:       {{.Status}}
{{- if .Deadline}}
Deadline:     {{.Deadline}}{{end}}
{{- if .Message}}

Message:
{{.Message}}{{end}}

Plan: {{.Plan}}
{{- if .Removed}}
Destroyed or replaced:{{range .Removed}}
  - {{.}}{{end}}{{if .RemovedMore}}
  … and {{.RemovedMore}} more{{end}}{{end}}
Cost: {{.Cost}}
{{- range .Denials}}
Policy denies: {{.}}{{end}}
{{- range .Warnings}}
Policy warns: {{.}}{{end}}
{{- if .Reasons}}

Approvals:{{range .Reasons}}
  {{if .Approved}}[x]{{else}}[ ]{{end}} {{.Name}} {{.Progress}}{{if .Detail}} — {{.Detail}}{{end}}{{end}}{{end}}
{{- if .Decisions}}

Decisions{{if .Earlier}} ({{.Earlier}} earlier not shown){{end}}:{{range .Decisions}}
  - {{.}}{{end}}{{end}}
{{- if .Outcome}}

Outcome: {{.Outcome}}{{end}}

{{if .RunURL}}Open the run: {{.RunURL}}
{{end}}{{if .TemporalURL}}Temporal Web UI: {{.TemporalURL}}
{{end}}Decide with: gatehouse approve -w {{.Workspace}} {{.RunID}} (or reject, request-changes)
`))

var htmlEmail = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html><body style="font-family: sans-serif">
<h2>{{.Title}}</h2>
<p>{{.Lead}}</p>
<table>
<tr><th align="left">Workspace</th><td>{{.Workspace}}</td></tr>
<tr><th align="left">Environment</th><td>{{.Environment}}</td></tr>
<tr><th align="left">Requested by</th><td>{{.Requester}}</td></tr>
<tr><th align="left">Status</th><td>{{.Status}}</td></tr>
{{if .Deadline}}<tr><th align="left">Deadline</th><td>{{.Deadline}}</td></tr>{{end}}
</table>
{{if .Message}}<blockquote style="white-space: pre-wrap">{{.Message}}</blockquote>{{end}}
<p><b>Plan</b> {{.Plan}}</p>
{{if .Removed}}<p>Destroyed or replaced:</p><ul>{{range .Removed}}<li><code>{{.}}</code></li>{{end}}{{if .RemovedMore}}<li>… and {{.RemovedMore}} more</li>{{end}}</ul>{{end}}
<p><b>Cost</b> {{.Cost}}</p>
{{range .Denials}}<p>&#x26D4; <b>Policy denies:</b> {{.}}</p>{{end}}
{{range .Warnings}}<p>&#x26A0; <b>Policy warns:</b> {{.}}</p>{{end}}
{{if .Reasons}}<p><b>Approvals</b></p><ul>{{range .Reasons}}<li>{{if .Approved}}&#x2705;{{else}}&#x23F3;{{end}} <b>{{.Name}}</b> {{.Progress}}{{if .Detail}} — {{.Detail}}{{end}}</li>{{end}}</ul>{{end}}
{{if .Decisions}}<p><b>Decisions</b>{{if .Earlier}} ({{.Earlier}} earlier not shown){{end}}</p><ul>{{range .Decisions}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Outcome}}<p><b>Outcome:</b> {{.Outcome}}</p>{{end}}
{{if .RunURL}}<p><a href="{{.RunURL}}">Open the run {{.RunID}}</a></p>{{end}}
{{if .TemporalURL}}<p><a href="{{.TemporalURL}}">Temporal Web UI</a></p>{{end}}
<p style="color: #666">Decide with <code>gatehouse approve -w {{.Workspace}} {{.RunID}}</code> (or reject, request-changes).</p>
</body></html>
`))
