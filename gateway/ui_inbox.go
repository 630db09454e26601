package gateway

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// Bounds on what one inbox costs: the runs read in full to decide whether
// they wait for the user (a query each), the runs listed, and how many
// Temporal calls run at once.
const (
	maxInboxReads  = 50
	maxListedRows  = 200
	inboxRecent    = 25
	uiParallelism  = 4
	uiQueryTimeout = 10 * time.Second
)

// uiStatuses are the statuses the filter offers, in lifecycle order.
var uiStatuses = []approval.Status{
	approval.StatusPendingApproval, approval.StatusChangesRequested, approval.StatusAwaitingSignoff,
	approval.StatusEvaluatingPolicy, approval.StatusPlanning, approval.StatusApproved, approval.StatusQueued,
	approval.StatusApplying, approval.StatusApplied, approval.StatusRejected, approval.StatusCancelled,
	approval.StatusTimedOut, approval.StatusFailed, approval.StatusPolicyFailed, approval.StatusPlanFailed,
	approval.StatusNoChanges, approval.StatusSuperseded, approval.StatusOutcomeUnknown, approval.StatusTerminated,
}

// inboxPage is the inbox (ShowWaiting) and the run list.
type inboxPage struct {
	ShowWaiting bool
	Waiting     []waitingRun
	// WaitingMore says more runs may wait than were read.
	WaitingMore bool
	Filter      runFilter
	Rows        []starter.RunSummary
	// Total is how many runs matched; Rows holds at most the newest few.
	Total int
	// Workspaces, Statuses and Users are the filter's choices.
	Workspaces []string
	Statuses   []approval.Status
	Users      []approval.UserID
	Errors     []string
}

// waitingRun is a run the user may approve now.
type waitingRun struct {
	Run     approval.Run
	Reasons []approval.Reason // the open reasons the user may approve
}

// runFilter is the run list's query.
type runFilter struct {
	Workspace   string
	Status      approval.Status
	RequestedBy approval.UserID
}

func (f runFilter) Active() bool { return f.Workspace != "" || f.Status != "" || f.RequestedBy != "" }

func (u *webUI) inbox(c echo.Context) error { return u.listPage(c, true) }

func (u *webUI) runList(c echo.Context) error { return u.listPage(c, false) }

func (u *webUI) listPage(c echo.Context, inbox bool) error {
	user, _ := c.Get(userKey).(config.User)
	f := runFilter{
		Workspace:   c.QueryParam("workspace"),
		Status:      approval.Status(c.QueryParam("status")),
		RequestedBy: approval.UserID(c.QueryParam("requested_by")),
	}
	if f.Status != "" && !f.Status.Valid() {
		return approval.Errorf(approval.CodeInvalid, "status: unknown status %q", f.Status)
	}
	if _, ok := u.s.Config.Workspace(f.Workspace); f.Workspace != "" && !ok {
		return approval.Errorf(approval.CodeNotFound, "workspace %q not found", f.Workspace)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), uiQueryTimeout)
	defer cancel()
	p := inboxPage{ShowWaiting: inbox, Filter: f, Statuses: uiStatuses, Workspaces: u.s.Config.Readable(user.Identity)}
	for _, cu := range u.s.Config.Users {
		p.Users = append(p.Users, cu.ID)
	}
	if inbox {
		p.Waiting, p.WaitingMore, p.Errors = u.waitingFor(ctx, user.Identity)
	}
	rows, errs := u.listRuns(ctx, user.Identity, f)
	p.Errors = append(p.Errors, errs...)
	p.Total = len(rows)
	limit := maxListedRows
	if inbox {
		limit = inboxRecent
	}
	if len(rows) > limit {
		rows = rows[:limit]
	}
	p.Rows = rows
	title := "Runs"
	if inbox {
		title = "Inbox"
	}
	return u.render(c, http.StatusOK, "inbox", title, p)
}

// listRuns lists the runs the filter asks for that the user may see: all
// runs of the workspaces they may read, and their own runs elsewhere,
// newest first.
func (u *webUI) listRuns(ctx context.Context, user approval.Identity, f runFilter) ([]starter.RunSummary, []string) {
	type query struct {
		ws     string
		filter starter.ListFilter
	}
	var queries []query
	for _, ws := range u.s.Config.Workspaces {
		if f.Workspace != "" && ws.Name != f.Workspace {
			continue
		}
		lf := starter.ListFilter{Status: f.Status, RequestedBy: f.RequestedBy}
		if !ws.CanRead(user) {
			// As in the API: someone the workspace does not name sees
			// only the runs they requested.
			if f.RequestedBy != "" && f.RequestedBy != user.ID {
				continue
			}
			lf.RequestedBy = user.ID
		}
		queries = append(queries, query{ws.Name, lf})
	}
	results := make([][]starter.RunSummary, len(queries))
	errs := make([]error, len(queries))
	parallel(len(queries), func(i int) {
		results[i], errs[i] = u.s.Runs.ListRuns(ctx, queries[i].ws, queries[i].filter)
	})
	var out []starter.RunSummary
	var problems []string
	for i := range queries {
		if errs[i] != nil {
			problems = append(problems, "The runs of "+queries[i].ws+" could not be listed: "+u.plainError(errs[i]))
			continue
		}
		out = append(out, results[i]...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, problems
}

// waitingFor lists the runs the user could approve something on now, the
// most urgent first. Visibility says who each waiting run still waits for;
// the runs that name the user there (at most maxInboxReads) are read and
// the domain's own check decides.
func (u *webUI) waitingFor(ctx context.Context, user approval.Identity) ([]waitingRun, bool, []string) {
	var candidates []starter.RunSummary
	var problems []string
	type query struct {
		ws     string
		status approval.Status
	}
	var queries []query
	for _, ws := range u.s.Config.Workspaces {
		// Every workspace: a policy may name the user on a run of a
		// workspace they cannot otherwise read, and only runs that wait
		// for them are shown.
		for _, st := range []approval.Status{approval.StatusPendingApproval, approval.StatusAwaitingSignoff} {
			queries = append(queries, query{ws.Name, st})
		}
	}
	results := make([][]starter.RunSummary, len(queries))
	errs := make([]error, len(queries))
	parallel(len(queries), func(i int) {
		results[i], errs[i] = u.s.Runs.ListRuns(ctx, queries[i].ws, starter.ListFilter{Status: queries[i].status})
	})
	for i, q := range queries {
		if errs[i] != nil {
			if q.status == approval.StatusPendingApproval {
				problems = append(problems, "The waiting runs of "+q.ws+" could not be listed: "+u.plainError(errs[i]))
			}
			continue
		}
		for _, r := range results[i] {
			if slices.Contains(r.PendingApprovers, string(user.ID)) {
				candidates = append(candidates, r)
			}
		}
	}
	more := len(candidates) > maxInboxReads
	if more {
		// The oldest wait longest: keep those.
		sort.SliceStable(candidates, func(i, j int) bool { return candidates[i].CreatedAt.Before(candidates[j].CreatedAt) })
		candidates = candidates[:maxInboxReads]
	}
	found := make([]*waitingRun, len(candidates))
	parallel(len(candidates), func(i int) {
		run, err := u.s.Runs.GetRun(ctx, candidates[i].Workspace, candidates[i].ID)
		if err != nil {
			return // gone or unreadable meanwhile: not waiting
		}
		if reasons := approvableReasons(run, user); len(reasons) > 0 {
			found[i] = &waitingRun{Run: run, Reasons: reasons}
		}
	})
	var out []waitingRun
	for _, w := range found {
		if w != nil {
			out = append(out, *w)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Run.Deadline, out[j].Run.Deadline
		switch {
		case a.IsZero() != b.IsZero():
			return !a.IsZero()
		case !a.Equal(b):
			return a.Before(b)
		}
		return out[i].Run.CreatedAt.Before(out[j].Run.CreatedAt)
	})
	return out, more, problems
}

// approvableReasons lists the open reasons of run the user may approve now
// and has not approved yet, as the domain decides.
func approvableReasons(run approval.Run, user approval.Identity) []approval.Reason {
	if run.CheckApprove(approval.Request{Actor: user}) != nil {
		return nil
	}
	var out []approval.Reason
	for _, reason := range run.Reasons {
		if reason.State != approval.ReasonOpen || approvedBy(reason, user.ID) {
			continue
		}
		if run.CheckApprove(approval.Request{Actor: user, ReasonIDs: []string{reason.ID}}) == nil {
			out = append(out, reason)
		}
	}
	return out
}

// approvedBy reports whether user has an approval on reason that stands.
func approvedBy(reason approval.Reason, user approval.UserID) bool {
	for _, a := range reason.ApproverStates() {
		if a.UserID == user {
			return a.State == approval.ApproverApproved
		}
	}
	return false
}

// parallel runs f(0..n-1), at most uiParallelism at a time.
func parallel(n int, f func(i int)) {
	sem := make(chan struct{}, uiParallelism)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}
