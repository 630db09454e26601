package approval

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Timing says how long a reason waits once it opens and how its approvers are
// chased meanwhile. A workspace sets the defaults; a rule or step overrides
// any of them.
type Timing struct {
	// Timeout counts from when the reason opens; the earliest deadline of
	// the open reasons is the run's.
	Timeout time.Duration `json:"timeout,omitempty"`
	// RemindEvery reminds pending approvers at this interval after opening.
	RemindEvery time.Duration `json:"remind_every,omitempty"`
	// RemindBefore reminds them once, this long before the deadline.
	RemindBefore time.Duration `json:"remind_before,omitempty"`
	// EscalateAfter makes EscalateTo eligible, and tells them, this long
	// after opening.
	EscalateAfter time.Duration `json:"escalate_after,omitempty"`
	EscalateTo    Approvers     `json:"escalate_to"`
}

// Over returns t with every field it leaves unset taken from base.
func (t Timing) Over(base Timing) Timing {
	if t.Timeout == 0 {
		t.Timeout = base.Timeout
	}
	if t.RemindEvery == 0 {
		t.RemindEvery = base.RemindEvery
	}
	if t.RemindBefore == 0 {
		t.RemindBefore = base.RemindBefore
	}
	if t.EscalateAfter == 0 {
		t.EscalateAfter = base.EscalateAfter
	}
	if t.EscalateTo.Empty() {
		t.EscalateTo = base.EscalateTo
	}
	return t
}

// Resolved fills in the defaults every reason needs (the timeout).
func (t Timing) Resolved() Timing {
	if t.Timeout <= 0 {
		t.Timeout = DefaultTimeout
	}
	return t
}

// nextReminder is when the reason's next periodic reminder is due, or zero.
func (r Reason) nextReminder() time.Time {
	if r.Timing.RemindEvery <= 0 {
		return time.Time{}
	}
	at := r.OpenedAt.Add(time.Duration(r.RemindersSent+1) * r.Timing.RemindEvery)
	if !at.Before(r.Deadline) {
		return time.Time{}
	}
	return at
}

// reminderBefore is when the reason's one reminder before its deadline is
// due, or zero.
func (r Reason) reminderBefore() time.Time {
	if r.Timing.RemindBefore <= 0 || r.RemindedBefore {
		return time.Time{}
	}
	at := r.Deadline.Add(-r.Timing.RemindBefore)
	if !at.After(r.OpenedAt) {
		return time.Time{}
	}
	return at
}

// escalation is when the reason escalates, or zero.
func (r Reason) escalation() time.Time {
	if r.Timing.EscalateAfter <= 0 || r.Timing.EscalateTo.Empty() || r.EscalatedAt != nil {
		return time.Time{}
	}
	return r.OpenedAt.Add(r.Timing.EscalateAfter)
}

// NextWake is the earliest moment something is due on an open reason: a
// reminder, an escalation or a deadline. Zero when nothing waits.
func (r *Run) NextWake() time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, reason := range r.Reasons {
		if !reason.clocked() {
			continue
		}
		consider(reason.nextReminder())
		consider(reason.reminderBefore())
		consider(reason.escalation())
		consider(reason.Deadline)
	}
	return next
}

// Due is what has come due on a run at a moment.
type Due struct {
	Remind   []string // reasons whose pending approvers to remind
	Escalate []string // reasons to escalate
	Expired  bool     // a deadline passed: the run times out
}

// DueAt reports what is due at now. The caller acts on it with Remind,
// Escalate or TimeOut.
func (r *Run) DueAt(now time.Time) Due {
	var d Due
	for _, reason := range r.Reasons {
		if !reason.clocked() {
			continue
		}
		if !reason.Deadline.IsZero() && !now.Before(reason.Deadline) {
			d.Expired = true
		}
		if at := reason.nextReminder(); !at.IsZero() && !now.Before(at) {
			d.Remind = append(d.Remind, reason.ID)
		} else if at := reason.reminderBefore(); !at.IsZero() && !now.Before(at) {
			d.Remind = append(d.Remind, reason.ID)
		}
		if at := reason.escalation(); !at.IsZero() && !now.Before(at) {
			d.Escalate = append(d.Escalate, reason.ID)
		}
	}
	return d
}

// Remind records that the reasons' approvers were reminded at now and returns
// whom to remind: their pending approvers. Reminders missed while nobody was
// running (a worker outage) are not sent one by one: the count jumps to now.
func (r *Run) Remind(ids []string, now time.Time) []UserID {
	var who []UserID
	for _, id := range ids {
		reason, ok := r.reason(id)
		if !ok || !reason.clocked() {
			continue
		}
		if at := reason.nextReminder(); !at.IsZero() && !now.Before(at) {
			reason.RemindersSent = int(now.Sub(reason.OpenedAt) / reason.Timing.RemindEvery)
		}
		if at := reason.reminderBefore(); !at.IsZero() && !now.Before(at) {
			reason.RemindedBefore = true
		}
		for _, u := range reason.pending() {
			if !slices.Contains(who, u) {
				who = append(who, u)
			}
		}
	}
	r.UpdatedAt = now
	return who
}

// Escalate makes each reason's fallback owners eligible, adds them to the
// people it waits for, and records the escalation on the run. It returns the
// fallback owners to tell.
func (r *Run) Escalate(ids []string, now time.Time) []UserID {
	var who, done []string
	var users []UserID
	for _, id := range ids {
		reason, ok := r.reason(id)
		if !ok || !reason.clocked() || reason.EscalatedAt != nil {
			continue
		}
		at := now
		reason.EscalatedAt = &at
		for _, u := range reason.EscalationEligible {
			if r.isSelf(Identity{ID: u}) && !reason.AllowSelfApproval {
				continue
			}
			if !slices.Contains(reason.Eligible, u) {
				reason.Eligible = append(reason.Eligible, u)
			}
			if !slices.Contains(users, u) {
				users = append(users, u)
				who = append(who, string(u))
			}
		}
		done = append(done, id)
	}
	if len(done) > 0 {
		r.Decisions = append(r.Decisions, Decision{
			ID: "escalate-" + now.UTC().Format(time.RFC3339Nano), Kind: DecisionEscalate, UserID: SystemActor,
			Comment:   "escalated after no decision in time; now also eligible: " + cmp.Or(strings.Join(who, ", "), "(nobody in the directory)"),
			ReasonIDs: done, PlanSHA256: r.Plan.SHA256, At: now,
		})
		r.UpdatedAt = now
	}
	return users
}

// pending lists the reason's eligible users who have not approved it.
func (r Reason) pending() []UserID {
	var out []UserID
	for _, id := range r.Eligible {
		if !r.approvedBy(id) {
			out = append(out, id)
		}
	}
	return out
}

// refreshDeadline makes the run's deadline the earliest of its open reasons'.
func (r *Run) refreshDeadline() {
	var earliest time.Time
	for _, reason := range r.Reasons {
		if reason.clocked() && !reason.Deadline.IsZero() && (earliest.IsZero() || reason.Deadline.Before(earliest)) {
			earliest = reason.Deadline
		}
	}
	r.Deadline = earliest
}

// clocked reports whether the reason's clock runs: it is open, or on hold
// for an external system (Gatehouse still times it out, reminds and
// escalates) before apply.
func (r Reason) clocked() bool {
	return r.State == ReasonOpen || (r.State == ReasonOnHold && !r.Deadline.IsZero())
}
