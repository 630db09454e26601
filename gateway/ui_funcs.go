package gateway

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// funcs are the templates' helpers.
func (u *webUI) funcs() template.FuncMap {
	return template.FuncMap{
		"asset":       u.asset,
		"when":        when,
		"iso":         iso,
		"words":       func(s any) string { return strings.ReplaceAll(fmt.Sprint(s), "_", " ") },
		"statusTone":  statusTone,
		"reasonTone":  reasonTone,
		"approvers":   approversText,
		"money":       money,
		"signed":      signedMoney,
		"runPath":     uiRunPath,
		"join":        func(sep string, xs []string) string { return strings.Join(xs, sep) },
		"actionsText": actionsText,
		"count":       count,
		"fieldFor":    func(k approval.DecisionKind) string { return textField[k] },
		"final":       func(s approval.Status) bool { return s.Final() },
		"shortHash": func(s string) string {
			if len(s) > 12 {
				return s[:12]
			}
			return s
		},
		"userIs":        func(a, b approval.UserID) bool { return a == b },
		"approvedCount": approvedCount,
		"approverState": approverState,
		"decisionTone":  decisionTone,
		"reasonNames":   reasonNames,
	}
}

// reasonNames names the reasons a decision counted on, by their names.
func reasonNames(reasons []ReasonView, ids []string) string {
	var out []string
	for _, id := range ids {
		name := id
		for _, r := range reasons {
			if r.ID == id {
				name = r.Name
			}
		}
		out = append(out, name)
	}
	return strings.Join(out, ", ")
}

// approvedCount is how many approvals of a reason stand.
func approvedCount(r ReasonView) int {
	n := 0
	for _, a := range r.Approvers {
		if a.State == approval.ApproverApproved {
			n++
		}
	}
	return n
}

// approverState is a person's standing on a reason as the page says it: a
// pending approver of a reason that was cancelled is cancelled too.
func approverState(reason approval.ReasonState, state string) string {
	if state == approval.ApproverPending && reason == approval.ReasonCancelled {
		return "cancelled"
	}
	return state
}

// decisionTone picks the badge colour of a decision.
func decisionTone(k approval.DecisionKind) string {
	switch k {
	case approval.DecisionApprove:
		return "ok"
	case approval.DecisionReject, approval.DecisionCancel, approval.DecisionBypass:
		return "bad"
	case approval.DecisionRequestChanges, approval.DecisionRevoke:
		return "wait"
	}
	return "muted"
}

// when formats a time (or *time.Time) in UTC for people; "" for none.
func when(v any) string {
	t, ok := timeOf(v)
	if !ok {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// iso formats a time for a <time datetime> attribute.
func iso(v any) string {
	t, ok := timeOf(v)
	if !ok {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func timeOf(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil || t.IsZero() {
			return time.Time{}, false
		}
		return *t, true
	}
	return time.Time{}, false
}

// statusTone picks the badge colour of a run status.
func statusTone(s approval.Status) string {
	switch s {
	case approval.StatusApplied, approval.StatusApproved:
		return "ok"
	case approval.StatusPendingApproval, approval.StatusAwaitingSignoff, approval.StatusChangesRequested:
		return "wait"
	case approval.StatusQueued, approval.StatusApplying, approval.StatusEvaluatingPolicy, approval.StatusPlanning:
		return "info"
	case approval.StatusRejected, approval.StatusFailed, approval.StatusPolicyFailed, approval.StatusTimedOut,
		approval.StatusOutcomeUnknown, approval.StatusTerminated, approval.StatusPlanFailed:
		return "bad"
	}
	return "muted"
}

// reasonTone picks the badge colour of a reason or approver state.
func reasonTone(s any) string {
	switch fmt.Sprint(s) {
	case "approved":
		return "ok"
	case "open", "pending":
		return "wait"
	case "on_hold", "waiting":
		return "info"
	case "cancelled", "revoked":
		return "muted"
	}
	return "muted"
}

// approversText says whom a reason names.
func approversText(a approval.Approvers) string {
	var parts []string
	list := func(label string, xs []string) {
		if len(xs) > 0 {
			parts = append(parts, label+" "+strings.Join(xs, ", "))
		}
	}
	var users, roles []string
	for _, x := range a.Users {
		users = append(users, string(x))
	}
	for _, x := range a.Roles {
		roles = append(roles, string(x))
	}
	list("users", users)
	list("groups", a.Groups)
	list("roles", roles)
	if len(parts) == 0 {
		return "nobody"
	}
	return strings.Join(parts, "; ")
}

func money(v float64, currency string) string {
	if currency == "" {
		currency = "USD"
	}
	return fmt.Sprintf("%.2f %s", v, currency)
}

func signedMoney(v float64, currency string) string {
	if v > 0 {
		return "+" + money(v, currency)
	}
	return money(v, currency)
}

func actionsText(as []approval.Action) string {
	var out []string
	for _, a := range as {
		out = append(out, string(a))
	}
	return strings.Join(out, ", ")
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// plainError says in words why a read failed, logging what people are not
// shown.
func (u *webUI) plainError(err error) string {
	var de *approval.Error
	switch {
	case errors.As(err, &de):
		return de.Message
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "Temporal did not answer in time"
	}
	u.s.Logger.Error("ui read failed", zap.Error(err))
	return "an internal error (logged)"
}
