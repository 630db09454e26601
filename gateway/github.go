package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// GitHub's delivery headers.
const (
	headerGitHubEvent     = "X-GitHub-Event"
	headerGitHubDelivery  = "X-GitHub-Delivery"
	headerGitHubSignature = "X-Hub-Signature-256"
)

// zeroCommit is the "before" of a push that created its branch.
var zeroCommit = regexp.MustCompile(`^0+$`)

// commitID is a full git object name: SHA-1, or SHA-256 for repositories
// that use it. GitHub sends full names only.
var commitID = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// gitHubChange is what a delivery asks to plan: a commit on a branch of a
// repository, who merged or pushed it, and the commit before it.
type gitHubChange struct {
	Repository string // "org/repo" as GitHub spells it
	Branch     string
	Commit     string
	// Since is the commit the branch was at before ("" for a new
	// branch): the worker diffs Since..Commit against a workspace's paths.
	Since string
	// Actor is the GitHub login who merged or pushed.
	Actor string
	// Summary describes the change for the run's message.
	Summary string
}

// gitHubRunView is one run a delivery started, or found already started.
type gitHubRunView struct {
	Workspace string          `json:"workspace"`
	ID        string          `json:"id"`
	Status    approval.Status `json:"status"`
}

// gitHubFailure is a workspace a delivery mapped to whose run did not start.
type gitHubFailure struct {
	Workspace string `json:"workspace"`
	Error     string `json:"error"`
}

type gitHubAnswer struct {
	Runs    []gitHubRunView `json:"runs"`
	Errors  []gitHubFailure `json:"errors,omitempty"`
	Ignored string          `json:"ignored,omitempty"`
}

// gitHubWebhook starts a run in every workspace a verified GitHub delivery
// concerns. A workspace whose run fails to start is reported beside the
// others, never instead of them.
func (s *server) gitHubWebhook(c echo.Context) error {
	gh := s.Config.GitHub
	if gh == nil {
		return approval.Errorf(approval.CodeNotFound, "github deliveries are not configured (no top-level github block)")
	}
	raw, err := readRawBody(c)
	if err != nil {
		return err
	}
	if err := verifyGitHubSignature(gh.WebhookSecret, c.Request().Header.Get(headerGitHubSignature), raw); err != nil {
		return echo.NewHTTPError(http.StatusUnauthorized, err.Error())
	}
	event := c.Request().Header.Get(headerGitHubEvent)
	if event == "ping" {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
	change, ignored, err := parseGitHubEvent(event, raw)
	if err != nil {
		return err
	}
	if ignored != "" {
		return c.JSON(http.StatusAccepted, gitHubAnswer{Runs: []gitHubRunView{}, Ignored: ignored})
	}
	delivery, err := checkDelivery(c.Request().Header.Get(headerGitHubDelivery))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, s.startGitHubRuns(c.Request().Context(), gh, change, delivery))
}

// verifyGitHubSignature checks X-Hub-Signature-256: "sha256=" and the hex
// HMAC-SHA256 of the raw body, keyed with the webhook secret, compared in
// constant time.
func verifyGitHubSignature(secret, header string, body []byte) error {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return fmt.Errorf("github delivery not verified: missing %s (set the webhook's secret)", headerGitHubSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return errors.New("github delivery not verified: malformed signature")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("github delivery not verified: signature mismatch")
	}
	return nil
}

// parseGitHubEvent reads the change an event asks to plan; ignored says
// why an event asks for none. Payloads are read leniently (GitHub adds
// fields), but what Gatehouse uses must be there and well formed.
func parseGitHubEvent(event string, raw []byte) (change gitHubChange, ignored string, err error) {
	switch event {
	case "pull_request":
		return parsePullRequest(raw)
	case "push":
		return parsePush(raw)
	case "":
		return gitHubChange{}, "", approval.Errorf(approval.CodeInvalid, "%s: required", headerGitHubEvent)
	}
	return gitHubChange{}, fmt.Sprintf("event %q starts no runs (only pull_request merges and pushes do)", event), nil
}

type gitHubUser struct {
	Login string `json:"login"`
}

type gitHubRepository struct {
	FullName string `json:"full_name"`
}

type pullRequestEvent struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest struct {
		Title          string      `json:"title"`
		Merged         bool        `json:"merged"`
		MergeCommitSHA string      `json:"merge_commit_sha"`
		MergedBy       *gitHubUser `json:"merged_by"`
		Base           struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		} `json:"base"`
	} `json:"pull_request"`
	Repository gitHubRepository `json:"repository"`
	Sender     gitHubUser       `json:"sender"`
}

// parsePullRequest reads a merged pull request: its merge commit on the
// base branch, compared with the base as it was.
func parsePullRequest(raw []byte) (gitHubChange, string, error) {
	var e pullRequestEvent
	if err := decodeLenient(raw, &e); err != nil {
		return gitHubChange{}, "", err
	}
	pr := e.PullRequest
	if e.Action != "closed" || !pr.Merged {
		return gitHubChange{}, fmt.Sprintf("pull_request %q without a merge starts no run", e.Action), nil
	}
	actor := e.Sender.Login
	if pr.MergedBy != nil && pr.MergedBy.Login != "" {
		actor = pr.MergedBy.Login
	}
	ch := gitHubChange{
		Repository: e.Repository.FullName, Branch: pr.Base.Ref, Commit: pr.MergeCommitSHA, Since: pr.Base.SHA, Actor: actor,
		Summary: fmt.Sprintf("GitHub: #%d %q merged into %s by %s", e.Number, pr.Title, pr.Base.Ref, actor),
	}
	return ch, "", checkChange(ch, "pull_request.merge_commit_sha", "pull_request.base.sha", "pull_request.base.ref")
}

type pushEvent struct {
	Ref     string `json:"ref"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Deleted bool   `json:"deleted"`
	Pusher  struct {
		Name string `json:"name"`
	} `json:"pusher"`
	Repository gitHubRepository `json:"repository"`
	Sender     gitHubUser       `json:"sender"`
}

// parsePush reads a push to a branch: its new head compared with the old
// one. Tags and deleted branches have nothing to plan.
func parsePush(raw []byte) (gitHubChange, string, error) {
	var e pushEvent
	if err := decodeLenient(raw, &e); err != nil {
		return gitHubChange{}, "", err
	}
	branch, ok := strings.CutPrefix(e.Ref, "refs/heads/")
	switch {
	case !ok:
		return gitHubChange{}, fmt.Sprintf("push to %q (not a branch) starts no run", e.Ref), nil
	case e.Deleted || zeroCommit.MatchString(e.After):
		return gitHubChange{}, fmt.Sprintf("push deleting branch %q starts no run", branch), nil
	}
	since := e.Before
	if zeroCommit.MatchString(since) {
		since = "" // a new branch: nothing to compare with
	}
	// sender is the account GitHub authenticated, which is what users
	// maps; pusher.name is the same login for people.
	actor := e.Sender.Login
	if actor == "" {
		actor = e.Pusher.Name
	}
	ch := gitHubChange{
		Repository: e.Repository.FullName, Branch: branch, Commit: e.After, Since: since, Actor: actor,
		Summary: fmt.Sprintf("GitHub: push to %s by %s (%s)", branch, actor, short(e.After)),
	}
	return ch, "", checkChange(ch, "after", "before", "ref")
}

// checkChange refuses a change with fields Gatehouse cannot use; the names
// are the payload's fields.
func checkChange(ch gitHubChange, commitField, sinceField, branchField string) error {
	switch {
	case ch.Repository == "":
		return approval.Errorf(approval.CodeInvalid, "repository.full_name: required")
	case ch.Branch == "" || checkRef(ch.Branch) != nil:
		return approval.Errorf(approval.CodeInvalid, "%s: %q is not a branch", branchField, ch.Branch)
	case !commitID.MatchString(ch.Commit):
		return approval.Errorf(approval.CodeInvalid, "%s: %q is not a commit id", commitField, ch.Commit)
	case ch.Since != "" && !commitID.MatchString(ch.Since):
		return approval.Errorf(approval.CodeInvalid, "%s: %q is not a commit id", sinceField, ch.Since)
	}
	return nil
}

func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

// decodeLenient decodes a JSON object, ignoring fields Gatehouse does not use.
func decodeLenient(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return approval.Errorf(approval.CodeInvalid, "body: %s", describeJSONError(err))
	}
	return nil
}

// checkDelivery validates X-GitHub-Delivery, which names the delivery in
// the runs' idempotency keys: a redelivery returns the runs the first made.
func checkDelivery(id string) (string, error) {
	if id == "" {
		return "", approval.Errorf(approval.CodeInvalid, "%s: required", headerGitHubDelivery)
	}
	if len(id) > maxIdempotencyKey {
		return "", approval.Errorf(approval.CodeInvalid, "%s: longer than %d characters", headerGitHubDelivery, maxIdempotencyKey)
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; b <= ' ' || b >= 0x7f {
			return "", approval.Errorf(approval.CodeInvalid, "%s: only printable ASCII is allowed", headerGitHubDelivery)
		}
	}
	return id, nil
}

// gitHubTargets are the workspaces a change concerns: the same repository
// (GitHub names are case-insensitive) and branch (git's are not). Paths
// are for the worker to check: the payload has no file list.
func gitHubTargets(workspaces []config.Workspace, ch gitHubChange) []config.Workspace {
	var out []config.Workspace
	for _, ws := range workspaces {
		if g := ws.GitHub; g != nil && strings.EqualFold(g.Repository, ch.Repository) && g.Branch == ch.Branch {
			out = append(out, ws)
		}
	}
	return out
}

// gitHubRequester is for whom GitHub's runs are: the Gatehouse user the
// login maps to, submitted by the automation user; else the automation user
// itself, on behalf of nobody. Either way the requester is "self" for
// separation of duties, so no rule exempts anything by this channel.
func gitHubRequester(cfg *config.Config, gh *config.GitHub, login string) (approval.Identity, *approval.Identity, error) {
	bot, ok := cfg.User(gh.AutomationUser)
	if !ok {
		return approval.Identity{}, nil, fmt.Errorf("github.automation_user %q is not a user", gh.AutomationUser)
	}
	id, ok := mappedLogin(gh.Users, login)
	if !ok {
		return bot.Identity, nil, nil
	}
	person, ok := cfg.User(id)
	if !ok {
		return approval.Identity{}, nil, fmt.Errorf("github.users.%s: %q is not a user", login, id)
	}
	if person.HasRole(approval.RoleViewer) {
		return approval.Identity{}, nil, approval.Errorf(approval.CodeForbidden, "role: viewers may not start runs (GitHub login %q is %s)", login, id)
	}
	return person.Identity, &bot.Identity, nil
}

// mappedLogin looks a login up in users: exactly, else ignoring case, as
// GitHub does (in sorted order, so two spellings in the config resolve the
// same way every time).
func mappedLogin(users map[string]approval.UserID, login string) (approval.UserID, bool) {
	if login == "" {
		return "", false
	}
	if id, ok := users[login]; ok {
		return id, true
	}
	logins := make([]string, 0, len(users))
	for l := range users {
		logins = append(logins, l)
	}
	slices.Sort(logins)
	for _, l := range logins {
		if strings.EqualFold(l, login) {
			return users[l], true
		}
	}
	return "", false
}

// gitHubStart is the start a change asks of one workspace. The delivery id
// in the key makes a redelivery find the run the first delivery made (run
// ids also derive from the workspace and requester).
func gitHubStart(ws config.Workspace, ch gitHubChange, delivery string, requester approval.Identity, submitter *approval.Identity) starter.StartRequest {
	req := starter.StartRequest{
		Workspace:      ws.Name,
		RequestedBy:    requester,
		SubmittedBy:    submitter,
		Message:        approval.TruncateUTF8(ch.Summary, approval.MaxMessageBytes),
		IdempotencyKey: "github:" + delivery,
		Origin: approval.Origin{
			Trigger: triggerGitHub, Repository: ch.Repository, Ref: ch.Branch, Commit: ch.Commit,
			Delivery: delivery, Actor: ch.Actor,
		},
	}
	// Without paths any change concerns the workspace: it plans, with
	// nothing to diff.
	if len(ws.GitHub.Paths) > 0 {
		req.Paths = slices.Clone(ws.GitHub.Paths)
		req.ChangedSince = ch.Since
	}
	return req
}

// startGitHubRuns starts the change's run in each workspace it concerns,
// at once: GitHub waits 10 s for an answer, and each start waits briefly
// for its policies.
func (s *server) startGitHubRuns(ctx context.Context, gh *config.GitHub, ch gitHubChange, delivery string) gitHubAnswer {
	answer := gitHubAnswer{Runs: []gitHubRunView{}}
	targets := gitHubTargets(s.Config.Workspaces, ch)
	if len(targets) == 0 {
		return answer
	}
	requester, submitter, err := gitHubRequester(s.Config, gh, ch.Actor)
	runs := make([]approval.Run, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, ws := range targets {
		if err != nil {
			errs[i] = err
			continue
		}
		wg.Go(func() {
			runs[i], errs[i] = s.Runs.StartRun(ctx, gitHubStart(ws, ch, delivery, requester, submitter))
		})
	}
	wg.Wait()
	for i, ws := range targets {
		if errs[i] != nil {
			answer.Errors = append(answer.Errors, gitHubFailure{Workspace: ws.Name, Error: s.clientMessage(errs[i], ws.Name)})
			continue
		}
		answer.Runs = append(answer.Runs, gitHubRunView{Workspace: ws.Name, ID: runs[i].ID, Status: runs[i].Status})
	}
	return answer
}

// clientMessage is what a client may read of err: a domain error's message;
// for anything else, only that it went wrong inside (it is logged).
func (s *server) clientMessage(err error, workspace string) string {
	var de *approval.Error
	switch {
	case errors.As(err, &de):
		return de.Message
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "temporal did not answer in time"
	}
	s.Logger.Error("github delivery: start run", zap.String("workspace", workspace), zap.Error(err))
	return "internal error"
}
