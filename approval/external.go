package approval

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds external approval: a workspace hands every run's approval
// to an ITSM (ServiceNow, Jira) or any system that can call a webhook. That
// system is then the only source of truth: the run's own reasons are kept
// and shown, on hold, and only the external decision moves them.

// ExternalProvider names an external approval system.
type ExternalProvider string

// The external providers.
const (
	ProviderServiceNow ExternalProvider = "servicenow"
	ProviderJira       ExternalProvider = "jira"
	ProviderWebhook    ExternalProvider = "webhook"
)

// Valid reports whether p is a known provider.
func (p ExternalProvider) Valid() bool {
	return p == ProviderServiceNow || p == ProviderJira || p == ProviderWebhook
}

// Title is the provider's name as people write it.
func (p ExternalProvider) Title() string {
	switch p {
	case ProviderServiceNow:
		return "ServiceNow"
	case ProviderJira:
		return "Jira"
	case ProviderWebhook:
		return "the external approver"
	}
	return string(p)
}

// ExternalApproval is a workspace's external approval settings that runs
// decide on (the connection and its secrets stay in the worker's config).
type ExternalApproval struct {
	Provider ExternalProvider `json:"provider"`
	// PollEvery is how often a waiting run reads its ticket, so a lost
	// callback costs at most one interval. Zero: never.
	PollEvery time.Duration `json:"poll_every,omitempty"`
}

// KindExternal is the reason every run of an external workspace carries:
// the external system's approval of the whole plan.
const KindExternal ReasonKind = "external"

// ExternalReasonID is the id of that reason.
const ExternalReasonID = string(KindExternal) + ":approval"

// Verdict is what an external system decided.
type Verdict string

// The verdicts. VerdictNone is an update that decides nothing (a ticket
// still waiting, an edit).
const (
	VerdictNone      Verdict = ""
	VerdictApproved  Verdict = "approved"
	VerdictRejected  Verdict = "rejected"
	VerdictCancelled Verdict = "cancelled"
)

// How an external decision reached the run.
const (
	ViaCallback       = "callback"
	ViaReconciliation = "reconciliation"
)

// ExternalDecision is what the external system said about a ticket: from a
// verified callback (through the gateway) or read by reconciliation.
type ExternalDecision struct {
	Provider ExternalProvider `json:"provider"`
	// TicketID is the system's id of the ticket (ServiceNow sys_id, Jira
	// issue key, webhook request id) the decision is about.
	TicketID string  `json:"ticket_id"`
	Verdict  Verdict `json:"verdict"`
	// State is the ticket's state in the system's own words.
	State string `json:"state,omitempty"`
	// Actor, Comment and DecidedAt are what the system says, if anything.
	Actor     string    `json:"actor,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
	// Via is ViaCallback or ViaReconciliation; Delivery identifies the
	// callback (Jira's webhook identifier, a digest of the body).
	Via      string `json:"via"`
	Delivery string `json:"delivery,omitempty"`
}

// Limits on what an external system writes into a run. Longer text is cut,
// not refused: a decision must never be lost for a long comment.
const (
	maxExternalActor   = 256
	maxExternalState   = 256
	MaxExternalRefused = 20
	MaxPreviousTickets = 20
)

// External is the ticket that stands for a run's approval, and what the
// external system said about it.
type External struct {
	Provider ExternalProvider `json:"provider"`
	// ID is the system's id of the ticket; Ref what people call it
	// (CHG0030001, CHG-42); Link where a person opens it. All "" until the
	// ticket is open.
	ID   string `json:"id,omitempty"`
	Ref  string `json:"ref,omitempty"`
	Link string `json:"link,omitempty"`
	// TokenSHA256 is the digest of the webhook provider's per-run callback
	// token; the token itself is never kept.
	TokenSHA256 string `json:"token_sha256,omitempty"`
	// State is the ticket's last known state; CheckedAt when it was read.
	State     string     `json:"state,omitempty"`
	CheckedAt *time.Time `json:"checked_at,omitempty"`
	OpenedAt  *time.Time `json:"opened_at,omitempty"`
	// OpenError says why the ticket could not be opened yet (the run keeps
	// trying until its deadline).
	OpenError string `json:"open_error,omitempty"`
	// Decision is the decision that counted.
	Decision *ExternalDecision `json:"decision,omitempty"`
	// Refused lists the latest external decisions the run did not take,
	// and why (at most MaxExternalRefused; RefusedDropped counts older).
	Refused        []ExternalRefusal `json:"refused,omitempty"`
	RefusedDropped int               `json:"refused_dropped,omitempty"`
	// Withdrawn records Gatehouse cancelling the ticket when the run ended
	// without its decision (best effort).
	Withdrawn *Withdrawal `json:"withdrawn,omitempty"`
	// Previous lists the tickets of earlier rounds (a plan made again
	// before apply goes back to the system with a new ticket).
	Previous []string `json:"previous,omitempty"`
}

// ExternalRefusal is an external decision the run did not take.
type ExternalRefusal struct {
	Decision ExternalDecision `json:"decision"`
	Why      string           `json:"why"`
	At       time.Time        `json:"at"`
}

// Withdrawal is Gatehouse cancelling a ticket.
type Withdrawal struct {
	At    time.Time `json:"at"`
	Why   string    `json:"why"`
	Error string    `json:"error,omitempty"`
}

// Name is how the run shows its ticket: "ServiceNow CHG0030001".
func (e *External) Name() string {
	if e.Ref == "" {
		return e.Provider.Title()
	}
	if e.Provider == ProviderWebhook {
		return "external request " + e.Ref
	}
	return e.Provider.Title() + " " + e.Ref
}

// Open reports whether the ticket was opened and not yet decided.
func (e *External) Open() bool { return e != nil && e.ID != "" && e.Decision == nil }

// NeedsTicket reports whether the run waits for external approval but has no
// ticket for it yet: the workflow opens one.
func (r *Run) NeedsTicket() bool {
	return r.External != nil && r.Status == StatusPendingApproval && r.External.ID == ""
}

// TicketOpened records the ticket opened for the run's approval.
func (r *Run) TicketOpened(t External, now time.Time) error {
	if r.External == nil {
		return Errorf(CodeConflict, "run %s takes no external approval", r.ID)
	}
	if r.External.ID != "" {
		return Errorf(CodeConflict, "run %s has its ticket already (%s)", r.ID, r.External.Name())
	}
	e := r.External
	e.ID, e.Ref, e.Link, e.TokenSHA256 = t.ID, t.Ref, t.Link, t.TokenSHA256
	e.OpenError, e.State = "", t.State
	e.OpenedAt = &now
	r.UpdatedAt = now
	return nil
}

// TicketNotOpened records why the ticket could not be opened (yet).
func (r *Run) TicketNotOpened(why string, now time.Time) {
	if r.External != nil {
		r.External.OpenError = why
		r.UpdatedAt = now
	}
}

// TicketWithdrawn records Gatehouse cancelling the ticket.
func (r *Run) TicketWithdrawn(why, failure string, now time.Time) {
	if r.External != nil {
		r.External.Withdrawn = &Withdrawal{At: now, Why: why, Error: failure}
	}
}

// externalRefused is the domain's refusal of the internal decisions an
// external workspace does not take.
func (r *Run) externalRefused(verb string) error {
	if r.External == nil {
		return nil
	}
	where := r.External.Name()
	if r.External.Link != "" {
		where += " (" + r.External.Link + ")"
	}
	return Errorf(CodeConflict, "external approval: %s decides this run in %s; Gatehouse does not %s it (an admin may still cancel)", r.External.Provider.Title(), where, verb)
}

// CheckExternal reports whether the run takes d now, with why not. A nil
// error with changed false means d decides nothing new: an update that is
// no decision, or a repeat of the decision that counted.
func (r *Run) CheckExternal(d ExternalDecision) (changed bool, err error) {
	e := r.External
	switch {
	case e == nil:
		return false, Errorf(CodeNotFound, "run %s takes no external approval", r.ID)
	case d.Provider != e.Provider:
		return false, Errorf(CodeConflict, "run %s is approved in %s, not %s", r.ID, e.Provider.Title(), d.Provider.Title())
	case e.Decision != nil && d.TicketID == e.Decision.TicketID && d.Verdict == e.Decision.Verdict:
		return false, nil // a repeat, also after the run finished
	case e.ID == "" && !slices.Contains(e.Previous, d.TicketID):
		return false, Errorf(CodeConflict, "run %s has no ticket yet: %s is not its ticket", r.ID, d.TicketID)
	case d.TicketID != e.ID:
		return false, Errorf(CodeConflict, "ticket %s is not the ticket of run %s (%s)", d.TicketID, r.ID, e.Name())
	case d.Verdict == VerdictNone:
		return false, nil
	case d.Verdict != VerdictApproved && d.Verdict != VerdictRejected && d.Verdict != VerdictCancelled:
		return false, Errorf(CodeInvalid, "verdict: unknown %q", d.Verdict)
	case e.Decision != nil:
		return false, Errorf(CodeConflict, "run %s was %s in %s already; it takes no other decision", r.ID, e.Decision.Verdict, e.Name())
	}
	if err := r.checkStatus("take an external decision", StatusPendingApproval); err != nil {
		return false, err
	}
	return true, nil
}

// DecideExternal takes the external system's decision: an approval approves
// every reason the run holds (the system is the only source of truth); a
// rejection or a cancellation ends the run cancelled, for good. It reports
// whether the run changed; an update that decides nothing only refreshes the
// ticket's last known state.
func (r *Run) DecideExternal(d ExternalDecision, now time.Time) (bool, error) {
	d = boundExternal(d)
	changed, err := r.CheckExternal(d)
	if err != nil || !changed {
		if err == nil && r.External.ID == d.TicketID && d.State != "" && r.External.Decision == nil {
			r.External.State = d.State
		}
		return false, err
	}
	e := r.External
	e.Decision = &d
	if d.State != "" {
		e.State = d.State
	}
	actor := externalActor(e.Provider, d.Actor)
	comment := d.Comment
	if comment == "" {
		comment = fmt.Sprintf("%s in %s", d.Verdict, e.Name())
		if d.Via == ViaReconciliation {
			comment += " (seen by reconciliation)"
		}
	} else if d.Via == ViaReconciliation {
		comment += " (seen by reconciliation)"
	}
	req := Request{
		ID:      fmt.Sprintf("external-%s-%s-%d", d.Verdict, e.ID, len(r.Decisions)),
		Actor:   actor,
		Comment: comment,
		Channel: string(e.Provider),
	}
	if d.Verdict != VerdictApproved {
		kind := DecisionReject
		if d.Verdict == VerdictCancelled {
			kind = DecisionCancel
		}
		r.record(req, kind, r.heldReasons(), now)
		r.closeOpenReasons()
		r.Status = StatusCancelled
		return true, nil
	}
	held := r.heldReasons()
	for i := range r.Reasons {
		reason := &r.Reasons[i]
		if reason.State != ReasonOnHold {
			continue
		}
		reason.Approvals = append(reason.Approvals, Approval{
			UserID: actor.ID, At: now, Comment: comment, DecisionID: req.ID,
			ResponseSeconds: responseSince(reason.OpenedAt, now),
		})
		reason.State = ReasonApproved
	}
	r.record(req, DecisionApprove, held, now)
	r.advance(now, false)
	return true, nil
}

// RefuseExternal records an external decision the run did not take.
func (r *Run) RefuseExternal(d ExternalDecision, why string, now time.Time) {
	if r.External == nil {
		return
	}
	e := r.External
	e.Refused = append(e.Refused, ExternalRefusal{Decision: boundExternal(d), Why: why, At: now})
	if over := len(e.Refused) - MaxExternalRefused; over > 0 {
		e.Refused = slices.Delete(e.Refused, 0, over)
		e.RefusedDropped += over
	}
}

// TicketChecked records that reconciliation read the ticket.
func (r *Run) TicketChecked(now time.Time) {
	if r.External != nil {
		r.External.CheckedAt = &now
	}
}

// externalActor is the identity an external decision is recorded under:
// "servicenow:jane.doe", or the system itself when it names nobody.
func externalActor(p ExternalProvider, who string) Identity {
	if who == "" {
		return Identity{ID: UserID(p)}
	}
	return Identity{ID: UserID(string(p) + ":" + who)}
}

func (r *Run) heldReasons() []string {
	var ids []string
	for _, reason := range r.Reasons {
		if reason.State == ReasonOnHold {
			ids = append(ids, reason.ID)
		}
	}
	return ids
}

func responseSince(from, now time.Time) float64 {
	if from.IsZero() {
		return 0
	}
	return now.Sub(from).Seconds()
}

// holdAll puts every reason not yet approved on hold: the external system
// decides them all. Reasons before apply start their clocks (Gatehouse's
// timeouts, reminders and escalations still run); sign-offs after apply
// have none. A ticket decided in an earlier round is put aside, so the
// run asks again with a new one.
func (r *Run) holdAll(now time.Time, restart bool) {
	if e := r.External; e.Decision != nil || (restart && e.ID != "") {
		if e.ID != "" && len(e.Previous) < MaxPreviousTickets {
			e.Previous = append(e.Previous, e.ID)
		}
		*e = External{Provider: e.Provider, Refused: e.Refused, RefusedDropped: e.RefusedDropped, Previous: e.Previous}
	}
	for i := range r.Reasons {
		reason := &r.Reasons[i]
		fresh := reason.State == ReasonWaiting || reason.State == ReasonOpen || (restart && reason.State == ReasonOnHold)
		if !fresh {
			continue
		}
		reason.State = ReasonOnHold
		if blocksApply(reason.Stage) {
			reason.OpenedAt = now
			reason.Deadline = now.Add(reason.Timing.Timeout)
			reason.RemindersSent, reason.RemindedBefore = 0, false
		}
	}
}

// externalReason is the reason an external workspace's runs always carry,
// so a run is never approved because no rule of the workspace matched.
func externalReason(ws Workspace, inputs string) Reason {
	return Reason{
		ID: ExternalReasonID, Name: "approval in " + ws.External.Provider.Title(), Kind: KindExternal,
		Stage: StagePreApply, State: ReasonWaiting, Required: 1,
		Timing: ws.Timing.Resolved(), Inputs: inputs, Approvals: []Approval{},
	}
}

// boundExternal cuts what an external system wrote to the run's limits.
func boundExternal(d ExternalDecision) ExternalDecision {
	d.Actor = cut(d.Actor, maxExternalActor)
	d.State = cut(d.State, maxExternalState)
	d.Comment = cut(d.Comment, MaxCommentBytes)
	d.TicketID = cut(d.TicketID, maxExternalState)
	d.Delivery = cut(d.Delivery, maxExternalState)
	return d
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return TruncateUTF8(s, n-len("…")) + "…"
}

// TruncateUTF8 cuts s to at most n bytes without splitting a character:
// how text from outside is fitted to the limits the run keeps.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
