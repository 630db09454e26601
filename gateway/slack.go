package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackutilsx"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// This file is Slack's interactivity endpoint: the buttons on a run's
// message and the modal that Reject and Request changes open. Slack signs
// each request instead of sending a bearer token, and wants a 200 within 3
// seconds whatever happened: it shows any other answer as a bare failure and
// retries it. So once a request is verified, refusals travel back to the
// person who clicked as ephemeral messages or modal errors, never as HTTP
// statuses. Every decision goes through starter.DecideOn, the one path the
// REST API takes too: same rules, same signed Update, channel "slack".

// The modal's names: its callback_id, and the block and element ids of its
// comment input (errors are addressed to the block).
const (
	slackModalCallback = "gatehouse_decision"
	slackCommentBlock  = "gatehouse_comment"
	slackCommentAction = "comment"
)

// channelSlack names this channel on the decisions it carries.
const channelSlack = "slack"

// Slack gives up on an answer after 3 seconds. The work behind one (users.info,
// reading the run, the decision, views.open) gets slackWorkBudget; the
// reply to the clicker then gets slackReplyBudget of its own, so a slow
// Temporal still leaves time to say so, and the answer leaves within 2.5 s.
const (
	slackWorkBudget  = 2 * time.Second
	slackReplyBudget = 500 * time.Millisecond
	// slackCommentChars is the longest input Slack's plain_text_input
	// takes; the domain's MaxCommentBytes still applies to its bytes.
	slackCommentChars = 3000
)

// slackInteraction answers POST /api/v1/slack/interactions. Nothing is
// parsed before the signature is checked over the raw body.
func (s *server) slackInteraction(c echo.Context) error {
	sl := s.Config.Slack
	if sl == nil {
		return approval.Errorf(approval.CodeNotFound, "slack is not configured")
	}
	raw, err := readRawBody(c)
	if err != nil {
		return err
	}
	if err := verifySlack(c.Request().Header, raw, sl.SigningSecret); err != nil {
		s.Logger.Warn("slack interaction not verified", zap.Error(err))
		return echo.NewHTTPError(http.StatusUnauthorized, "slack request not verified: "+err.Error())
	}
	// slack-go reads the payload from the form body, which was consumed
	// above: give it the same bytes again.
	c.Request().Body = io.NopCloser(bytes.NewReader(raw))
	cb, err := slack.InteractionCallbackParse(c.Request())
	if err != nil {
		// Signed but unreadable: a retry would not read better, so it is
		// answered 200 and only logged.
		s.Logger.Warn("slack interaction: unreadable payload", zap.Error(err))
		return c.NoContent(http.StatusOK)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), slackWorkBudget)
	defer cancel()
	h := s.slackHandler(sl)
	if retry := c.Request().Header.Get("X-Slack-Retry-Num"); retry != "" {
		// Idempotency keys come from the action, so a retry counts once.
		h.logger.Info("slack interaction retried", zap.String("retry", retry), zap.String("type", string(cb.Type)))
	}
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		h.blockActions(ctx, cb)
		return c.NoContent(http.StatusOK)
	case slack.InteractionTypeViewSubmission:
		if resp := h.viewSubmission(ctx, cb); resp != nil {
			return c.JSON(http.StatusOK, resp)
		}
		return c.NoContent(http.StatusOK)
	}
	h.logger.Info("slack interaction ignored: unknown type", zap.String("type", string(cb.Type)))
	return c.NoContent(http.StatusOK)
}

// verifySlack checks Slack's v0 signature of raw and the age of its
// timestamp, in slack-go's verifier. Its errors say what was wrong in
// words a Slack app's developer can act on.
func verifySlack(h http.Header, raw []byte, secret string) error {
	sv, err := slack.NewSecretsVerifier(h, secret)
	switch {
	case errors.Is(err, slack.ErrMissingHeaders):
		return errors.New("X-Slack-Signature and X-Slack-Request-Timestamp are required")
	case errors.Is(err, slack.ErrExpiredTimestamp):
		return errors.New("X-Slack-Request-Timestamp is more than 5 minutes from now")
	case errors.Is(err, slack.ErrInvalidConfiguration):
		return errors.New("no signing secret is configured")
	case err != nil:
		// A malformed signature or timestamp: no detail helps a forger.
		return errors.New("signature does not match")
	}
	if _, err := sv.Write(raw); err != nil {
		return fmt.Errorf("hash body: %w", err)
	}
	if err := sv.Ensure(); err != nil {
		return errors.New("signature does not match")
	}
	return nil
}

// slackHandler carries one verified interaction's dependencies.
type slackHandler struct {
	cfg    *config.Config
	runs   *starter.Client
	api    *slack.Client
	logger *zap.Logger
}

func (s *server) slackHandler(sl *config.Slack) *slackHandler {
	return &slackHandler{cfg: s.Config, runs: s.Runs, api: newSlackClient(sl), logger: s.Logger}
}

// newSlackClient is the Web API client of the configured app. It is cheap
// to make and holds no state worth keeping between requests.
func newSlackClient(sl *config.Slack) *slack.Client {
	var opts []slack.Option
	if sl.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(sl.APIURL))
	}
	return slack.New(sl.BotToken, opts...)
}

// slackTarget is the run a button names in its value, "<workspace>/<run id>".
type slackTarget struct {
	Workspace string
	RunID     string
}

func parseSlackTarget(value string) (slackTarget, bool) {
	ws, id, ok := activities.ParseActionValue(value)
	if !ok || !starter.ValidRunID(id) {
		return slackTarget{}, false
	}
	return slackTarget{Workspace: ws, RunID: id}, true
}

// blockActions handles a click on one of the message's buttons.
func (h *slackHandler) blockActions(ctx context.Context, cb slack.InteractionCallback) {
	if len(cb.ActionCallback.BlockActions) == 0 {
		h.logger.Info("slack block_actions without an action")
		return
	}
	act := cb.ActionCallback.BlockActions[0]
	kind, ok := map[string]approval.DecisionKind{
		activities.ActionApprove:        approval.DecisionApprove,
		activities.ActionReject:         approval.DecisionReject,
		activities.ActionRequestChanges: approval.DecisionRequestChanges,
	}[act.ActionID]
	if !ok {
		h.logger.Info("slack action ignored: not Gatehouse's", zap.String("action_id", act.ActionID))
		return
	}
	target, ok := parseSlackTarget(act.Value)
	if !ok {
		h.logger.Warn("slack action ignored: value names no run", zap.String("value", act.Value))
		return
	}
	user, ok := h.actor(ctx, cb)
	if !ok {
		return
	}
	run, err := h.runs.GetRun(ctx, target.Workspace, target.RunID)
	if err != nil {
		h.tell(ctx, cb, h.refusal(ctx, kind, target, err))
		return
	}
	if kind == approval.DecisionApprove {
		h.approve(ctx, cb, act, user, run)
		return
	}
	h.openModal(ctx, cb, kind, user, run)
}

// approve decides at once. The message itself is updated by the run's
// notifier; the clicker hears how it went.
func (h *slackHandler) approve(ctx context.Context, cb slack.InteractionCallback, act *slack.BlockAction, user config.User, run approval.Run) {
	out, err := h.decide(ctx, run, starter.DecisionRequest{
		Workspace: run.Workspace, RunID: run.ID, Kind: approval.DecisionApprove,
		Actor: user.Identity, IdempotencyKey: blockActionKey(cb, act, run), Channel: channelSlack,
	})
	if err != nil {
		h.tell(ctx, cb, h.refusal(ctx, approval.DecisionApprove, targetOf(run), err))
		return
	}
	h.tell(ctx, cb, fmt.Sprintf("You approved %s. It is now %s%s.", runName(out), out.Status, progress(out)))
}

// decide carries a decision through the one path every channel takes. A
// retry or a double click that arrives after its first answer finished the
// run finds the run final, which DecideOn answers as a conflict; when the
// clicker's latest decision on the run is this very kind, it was recorded,
// and that is the answer.
func (h *slackHandler) decide(ctx context.Context, run approval.Run, d starter.DecisionRequest) (approval.Run, error) {
	out, err := h.runs.DecideOn(ctx, run, d)
	if approval.ErrorCode(err) == approval.CodeConflict && run.Status.Final() && latestKind(run, d.Actor.ID) == d.Kind {
		return run, nil
	}
	return out, err
}

// latestKind is the kind of user's latest decision on the run, "" if none.
func latestKind(run approval.Run, user approval.UserID) approval.DecisionKind {
	for i := len(run.Decisions) - 1; i >= 0; i-- {
		if run.Decisions[i].UserID == user {
			return run.Decisions[i].Kind
		}
	}
	return ""
}

// openModal opens the comment form of a reject or a request for changes,
// once the domain's check says the clicker may make that decision now: an
// ineligible click is refused at the click, not after typing a comment.
func (h *slackHandler) openModal(ctx context.Context, cb slack.InteractionCallback, kind approval.DecisionKind, user config.User, run approval.Run) {
	check := run.CheckReject
	if kind == approval.DecisionRequestChanges {
		check = run.CheckRequestChanges
	}
	// The comment is what the modal asks for: a stand-in lets the check
	// judge everything else (eligibility, self-approval, role, status).
	if err := check(approval.Request{Actor: user.Identity, Comment: "-", Channel: channelSlack}); err != nil {
		h.tell(ctx, cb, h.refusal(ctx, kind, targetOf(run), err))
		return
	}
	meta, err := json.Marshal(slackModalMeta{Workspace: run.Workspace, RunID: run.ID, Kind: kind, Channel: slackChannelOf(cb)})
	if err != nil {
		h.logger.Error("slack modal metadata", zap.Error(err))
		return
	}
	if _, err := h.api.OpenViewContext(ctx, cb.TriggerID, decisionModal(kind, run, string(meta))); err != nil {
		h.logger.Warn("slack views.open", zap.String("run", run.ID), zap.Error(err))
		h.tell(ctx, cb, "Gatehouse could not open the comment form, so nothing was recorded. Please click the button again.")
	}
}

// slackModalMeta is the modal's private_metadata: what it decides on, and
// where to confirm. Slack hands it back with the submission, signed.
type slackModalMeta struct {
	Workspace string                `json:"ws"`
	RunID     string                `json:"run"`
	Kind      approval.DecisionKind `json:"kind"`
	Channel   string                `json:"channel,omitempty"`
}

// decisionModal is the form with one required multiline comment.
func decisionModal(kind approval.DecisionKind, run approval.Run, meta string) slack.ModalViewRequest {
	title, submit, label := "Reject run", "Reject", "Why are you rejecting it?"
	if kind == approval.DecisionRequestChanges {
		title, submit, label = "Request changes", "Send", "What should change?"
	}
	text := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	input := slack.NewPlainTextInputBlockElement(text("Your comment is recorded on the run"), slackCommentAction).
		WithMultiline(true).WithMaxLength(slackCommentChars)
	// Input blocks are required unless marked optional: Slack itself
	// refuses an empty comment before it submits.
	comment := slack.NewInputBlock(slackCommentBlock, text(label), nil, input)
	about := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType,
		fmt.Sprintf("*%s* run `%s`", slackutilsx.EscapeMessage(run.Workspace), slackutilsx.EscapeMessage(run.ID)), false, false), nil, nil)
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      slackModalCallback,
		Title:           text(title),
		Submit:          text(submit),
		Close:           text("Cancel"),
		PrivateMetadata: meta,
		Blocks:          slack.Blocks{BlockSet: []slack.Block{about, comment}},
	}
}

// viewSubmission decides a reject or a request for changes from the modal.
// It returns the errors to show in the modal, or nil to close it.
func (h *slackHandler) viewSubmission(ctx context.Context, cb slack.InteractionCallback) *slack.ViewSubmissionResponse {
	if cb.View.CallbackID != slackModalCallback {
		h.logger.Info("slack view ignored: not Gatehouse's", zap.String("callback_id", cb.View.CallbackID))
		return nil
	}
	var meta slackModalMeta
	if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta); err != nil ||
		(meta.Kind != approval.DecisionReject && meta.Kind != approval.DecisionRequestChanges) {
		h.logger.Warn("slack view ignored: bad private_metadata", zap.String("metadata", cb.View.PrivateMetadata))
		return nil
	}
	user, refusal := h.resolve(ctx, cb.User.ID)
	if refusal != "" {
		return modalError(refusal)
	}
	target := slackTarget{Workspace: meta.Workspace, RunID: meta.RunID}
	run, err := h.runs.GetRun(ctx, meta.Workspace, meta.RunID)
	if err != nil {
		return modalError(h.refusal(ctx, meta.Kind, target, err))
	}
	out, err := h.decide(ctx, run, starter.DecisionRequest{
		Workspace: run.Workspace, RunID: run.ID, Kind: meta.Kind, Actor: user.Identity,
		Comment: submittedComment(cb.View), IdempotencyKey: slackKey("slack", cb.View.ID), Channel: channelSlack,
	})
	if err != nil {
		return modalError(h.refusal(ctx, meta.Kind, target, err))
	}
	if meta.Channel != "" {
		h.post(ctx, meta.Channel, cb.User.ID, fmt.Sprintf("You %s %s. It is now %s.", pastTense(meta.Kind), runName(out), out.Status))
	}
	return nil
}

// submittedComment is the text of the modal's comment input.
func submittedComment(v slack.View) string {
	if v.State == nil {
		return ""
	}
	return strings.TrimSpace(v.State.Values[slackCommentBlock][slackCommentAction].Value)
}

func modalError(msg string) *slack.ViewSubmissionResponse {
	return slack.NewErrorsViewSubmissionResponse(map[string]string{slackCommentBlock: msg})
}

// actor resolves who clicked, telling them when Gatehouse does not know
// them.
func (h *slackHandler) actor(ctx context.Context, cb slack.InteractionCallback) (config.User, bool) {
	user, refusal := h.resolve(ctx, cb.User.ID)
	if refusal != "" {
		h.tell(ctx, cb, refusal)
		return config.User{}, false
	}
	return user, true
}

// resolve maps a Slack member to a configured user, or says in plain words
// why it cannot.
func (h *slackHandler) resolve(ctx context.Context, slackID string) (config.User, string) {
	user, ok, err := h.slackUser(ctx, slackID)
	switch {
	case err != nil:
		h.logger.Warn("slack users.info", zap.String("slack_user", slackID), zap.Error(err))
		return config.User{}, "Gatehouse could not look up your Slack profile, so nothing was recorded. Please try again in a moment."
	case !ok:
		h.logger.Info("slack user matches no Gatehouse user", zap.String("slack_user", slackID))
		return config.User{}, "Gatehouse does not know who you are: your Slack account matches no Gatehouse user " +
			"(by slack_id, or by email). Nothing was recorded. Ask a Gatehouse admin to add you."
	}
	return user, ""
}

// slackUser maps a Slack member id to a configured user: the one whose
// slack_id it is, else the one whose email users.info reports for the
// member (scope users:read.email). Users with a slack_id are matched by it
// alone, so another account sharing their email is not them; an email two
// users share (an SSO and a local account) names neither.
func (h *slackHandler) slackUser(ctx context.Context, slackID string) (config.User, bool, error) {
	if slackID == "" {
		return config.User{}, false, nil
	}
	for _, u := range h.cfg.Users {
		if u.SlackID == slackID {
			return u, true, nil
		}
	}
	info, err := h.api.GetUserInfoContext(ctx, slackID)
	if err != nil {
		return config.User{}, false, fmt.Errorf("users.info %s: %w", slackID, err)
	}
	email := info.Profile.Email
	if email == "" || info.Deleted || info.IsBot {
		return config.User{}, false, nil
	}
	var found []config.User
	for _, u := range h.cfg.Users {
		if u.SlackID == "" && strings.EqualFold(u.Email, email) {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		return config.User{}, false, nil
	}
	return found[0], true, nil
}

// refusal words an error for the clicker: a domain error's own message
// (the same text as the REST API's 4xx, naming the rule that refused), or,
// for anything else, that it failed inside, which is logged.
func (h *slackHandler) refusal(ctx context.Context, kind approval.DecisionKind, t slackTarget, err error) string {
	var de *approval.Error
	switch {
	case errors.As(err, &de):
		return fmt.Sprintf("Not recorded: you cannot %s %s run %s: %s", verbOf(kind), t.Workspace, t.RunID, de.Message)
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		h.logger.Warn("slack decision timed out", zap.String("run", t.RunID), zap.Error(err))
		return "Gatehouse did not answer in time. Your decision may still be recorded: the run's message will show it."
	}
	h.logger.Error("slack decision failed", zap.String("run", t.RunID), zap.String("kind", string(kind)), zap.Error(err))
	return "Gatehouse could not record your decision (internal error). Please try again, or use the run page."
}

// tell answers a click with an ephemeral message to the clicker, where
// they clicked.
func (h *slackHandler) tell(ctx context.Context, cb slack.InteractionCallback, text string) {
	h.post(ctx, slackChannelOf(cb), cb.User.ID, text)
}

// post sends an ephemeral message within slackReplyBudget, even when the
// work before it used up its own budget: the clicker must hear something.
func (h *slackHandler) post(ctx context.Context, channel, user, text string) {
	if channel == "" || user == "" {
		h.logger.Warn("slack reply has nowhere to go", zap.String("text", text))
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), slackReplyBudget)
	defer cancel()
	if _, err := h.api.PostEphemeralContext(ctx, channel, user, slack.MsgOptionText(text, true)); err != nil {
		h.logger.Warn("slack chat.postEphemeral", zap.String("channel", channel), zap.Error(err))
	}
}

// slackChannelOf is the conversation a click came from.
func slackChannelOf(cb slack.InteractionCallback) string {
	if cb.Channel.ID != "" {
		return cb.Channel.ID
	}
	return cb.Container.ChannelID
}

// blockActionKey derives a click's idempotency key from the action itself
// (team, member, message, button) and the run's round, never from the HTTP
// request: a double click and a Slack retry carry the same, and count once.
// The round makes the same button on the same message a new action after a
// revised plan, when approvals are asked for again.
func blockActionKey(cb slack.InteractionCallback, act *slack.BlockAction, run approval.Run) string {
	ts := cb.Container.MessageTs
	if ts == "" {
		ts = cb.Message.Timestamp
	}
	return slackKey("slack", cb.Team.ID, cb.User.ID, ts, act.ActionID, "r"+strconv.Itoa(len(run.Rounds)))
}

// slackKey joins parts into an Idempotency-Key, hashed when it would break
// the key rules (printable ASCII, at most maxIdempotencyKey bytes): the
// parts come from Slack, which promises neither.
func slackKey(parts ...string) string {
	key := strings.Join(parts, ":")
	if len(key) <= maxIdempotencyKey && printableASCII(key) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "slack:" + hex.EncodeToString(sum[:])
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func targetOf(run approval.Run) slackTarget {
	return slackTarget{Workspace: run.Workspace, RunID: run.ID}
}

func runName(run approval.Run) string {
	return run.Workspace + " run " + run.ID
}

// progress says where each of the run's open reasons stands, e.g.
// " (destroys-need-two: 1/2)".
func progress(run approval.Run) string {
	var parts []string
	for _, r := range run.Reasons {
		if r.State == approval.ReasonOpen {
			parts = append(parts, r.Name+": "+r.Progress())
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func verbOf(kind approval.DecisionKind) string {
	if kind == approval.DecisionRequestChanges {
		return "request changes on"
	}
	return string(kind)
}

// pastTense words the decisions a modal makes.
func pastTense(kind approval.DecisionKind) string {
	if kind == approval.DecisionRequestChanges {
		return "requested changes on"
	}
	return "rejected"
}
