package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackutilsx"
	"go.temporal.io/sdk/temporal"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

// The buttons of a run's Slack message. The interactivity endpoint reads
// exactly these action ids, and the value ActionValue makes.
const (
	ActionApprove        = "gatehouse_approve"
	ActionReject         = "gatehouse_reject"
	ActionRequestChanges = "gatehouse_request_changes"
	// ActionsBlockID names the block holding the buttons.
	ActionsBlockID = "gatehouse_actions"
)

// ActionValue is a button's value: the run it decides, "<workspace>/<run id>".
func ActionValue(workspace, runID string) string { return workspace + "/" + runID }

// ParseActionValue splits a button's value into workspace and run id. Run
// ids have no slash, so the last one separates them.
func ParseActionValue(v string) (workspace, runID string, ok bool) {
	i := strings.LastIndex(v, "/")
	if i <= 0 || i == len(v)-1 {
		return "", "", false
	}
	return v[:i], v[i+1:], true
}

// slackNotice is one notice's work in Slack, with the user ids it resolved.
type slackNotice struct {
	api *slack.Client
	cfg *config.Config
	ids map[approval.UserID]string
}

func (a *Activities) slackClient() *slack.Client {
	hc := a.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	opts := []slack.Option{slack.OptionHTTPClient(hc)}
	if a.Config.Slack.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(a.Config.Slack.APIURL))
	}
	return slack.New(a.Config.Slack.BotToken, opts...)
}

// notifySlack posts the run's message on its first request for approval
// and otherwise keeps the messages up to date, replying in their threads to
// reminders, escalations, renotifies and later rounds. It never posts a
// second top-level message for a run.
func (a *Activities) notifySlack(ctx context.Context, sn *config.SlackNotify, v view, p *NotifyProgress) error {
	s := &slackNotice{api: a.slackClient(), cfg: a.Config, ids: map[approval.UserID]string{}}
	existing := slackRefs(v.Event.Messages)
	if len(existing) == 0 {
		if v.Event.Kind != EventApprovalRequested {
			return nil
		}
		return s.post(ctx, sn, v, p)
	}
	for _, ref := range slackRefs(p.Posted) {
		if !slices.Contains(existing, ref) {
			existing = append(existing, ref)
		}
	}
	if err := s.update(ctx, existing, v, p); err != nil {
		return err
	}
	if replies(v.Event.Kind) {
		return s.reply(ctx, existing, v, p)
	}
	return nil
}

// replies reports whether notices of kind k reply in the message's thread.
func replies(k EventKind) bool {
	switch k {
	case EventReminder, EventEscalated, EventRenotify, EventApprovalRequested:
		return true
	}
	return false
}

func slackRefs(refs []approval.MessageRef) []approval.MessageRef {
	var out []approval.MessageRef
	for _, r := range refs {
		if r.Kind == "slack" {
			out = append(out, r)
		}
	}
	return out
}

// post posts the message to the channel and, with dm_approvers, to each
// recipient, skipping what an earlier attempt posted.
func (s *slackNotice) post(ctx context.Context, sn *config.SlackNotify, v view, p *NotifyProgress) error {
	blocks, text := slackMessage(v)
	posted := func(user approval.UserID) bool {
		return slices.ContainsFunc(p.Posted, func(r approval.MessageRef) bool { return r.User == user })
	}
	if sn.Channel != "" && !posted("") {
		ch, ts, err := s.api.PostMessageContext(ctx, sn.Channel, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false))
		if err != nil {
			return slackError("chat.postMessage to "+sn.Channel, err)
		}
		p.Posted = append(p.Posted, approval.MessageRef{Kind: "slack", Channel: ch, TS: ts})
		p.save(ctx)
	}
	if !sn.DMApprovers {
		return nil
	}
	for _, u := range uniqueUsers(v.Event.Recipients) {
		if posted(u) || len(p.Posted) >= approval.MaxMessages {
			continue
		}
		if err := s.dm(ctx, u, blocks, text, p); err != nil {
			return err
		}
	}
	return nil
}

// dm posts the message to one approver's direct messages. Someone Slack
// does not know is reported and skipped: the channel and the others still
// hear.
func (s *slackNotice) dm(ctx context.Context, u approval.UserID, blocks []slack.Block, text string, p *NotifyProgress) error {
	id, err := s.userID(ctx, u)
	if err != nil {
		return err
	}
	if id == "" {
		p.fail(fmt.Sprintf("slack: no Slack user for %s (no slack_id, and no Slack account with their email)", u))
		return nil
	}
	im, _, _, err := s.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{id}})
	if err != nil {
		return slackError("conversations.open with "+string(u), err)
	}
	ch, ts, err := s.api.PostMessageContext(ctx, im.ID, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false))
	if err != nil {
		return slackError("chat.postMessage to "+string(u), err)
	}
	p.Posted = append(p.Posted, approval.MessageRef{Kind: "slack", Channel: ch, TS: ts, User: u})
	p.save(ctx)
	return nil
}

// update rewrites every message with the run as it stands. A message Slack
// no longer has (deleted, its channel archived) is reported and skipped.
func (s *slackNotice) update(ctx context.Context, refs []approval.MessageRef, v view, p *NotifyProgress) error {
	blocks, text := slackMessage(v)
	for _, ref := range refs {
		_, _, _, err := s.api.UpdateMessageContext(ctx, ref.Channel, ref.TS, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false))
		if err == nil {
			continue
		}
		err = slackError("chat.update of "+ref.Channel+"/"+ref.TS, err)
		if !final(err) {
			return err
		}
		p.fail("slack: " + errorMessage(err))
	}
	return nil
}

// reply mentions the pending approvers in the thread of the channel's
// message and of the DMs of those it is for.
func (s *slackNotice) reply(ctx context.Context, refs []approval.MessageRef, v view, p *NotifyProgress) error {
	text, err := s.replyText(ctx, v)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		key := ref.Channel + "/" + ref.TS
		if slices.Contains(p.Threads, key) || (ref.User != "" && !slices.Contains(v.Event.Recipients, ref.User)) {
			continue
		}
		_, _, err := s.api.PostMessageContext(ctx, ref.Channel, slack.MsgOptionTS(ref.TS), slack.MsgOptionText(text, false))
		if err != nil {
			err = slackError("chat.postMessage in thread "+key, err)
			if !final(err) {
				return err
			}
			p.fail("slack: " + errorMessage(err))
		}
		p.Threads = append(p.Threads, key)
		p.save(ctx)
	}
	return nil
}

// replyText is the thread reply: what happened, and who is asked.
func (s *slackNotice) replyText(ctx context.Context, v view) (string, error) {
	var lead string
	switch v.Event.Kind {
	case EventReminder:
		lead = ":bell: Reminder: this run still needs your approval"
	case EventEscalated:
		lead = ":rotating_light: Escalated: this run needs an approval"
	case EventRenotify:
		lead = ":bell: " + esc(string(v.Event.Actor)) + " asks again for your approval"
	default:
		lead = ":arrows_counterclockwise: A revised plan needs approval"
		if n := len(v.Run.Rounds); n > 0 {
			lead += fmt.Sprintf(" (round %d)", n)
		}
	}
	mentions, err := s.mentions(ctx, v.Event.Recipients)
	if err != nil {
		return "", err
	}
	text := lead
	if mentions != "" {
		text += ": " + mentions
	}
	if d := v.Deadline(); !d.IsZero() {
		text += "\nDeadline: " + slackDate(d)
	}
	return text, nil
}

// mentions mentions each user by their Slack id, or names them when Slack
// does not know them.
func (s *slackNotice) mentions(ctx context.Context, users []approval.UserID) (string, error) {
	var out []string
	for _, u := range uniqueUsers(users) {
		id, err := s.userID(ctx, u)
		if err != nil {
			return "", err
		}
		if id == "" {
			out = append(out, esc(string(u)))
			continue
		}
		out = append(out, "<@"+id+">")
	}
	return strings.Join(out, " "), nil
}

// userID maps a Gatehouse user to their Slack member id: the config's
// slack_id, else the account with their email (users.lookupByEmail). ""
// when there is none.
func (s *slackNotice) userID(ctx context.Context, u approval.UserID) (string, error) {
	if id, ok := s.ids[u]; ok {
		return id, nil
	}
	user, ok := s.cfg.User(u)
	if !ok {
		s.ids[u] = ""
		return "", nil
	}
	if user.SlackID != "" || user.Email == "" {
		s.ids[u] = user.SlackID
		return user.SlackID, nil
	}
	su, err := s.api.GetUserByEmailContext(ctx, user.Email)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "users_not_found" {
			s.ids[u] = ""
			return "", nil
		}
		return "", slackError("users.lookupByEmail for "+string(u), err)
	}
	s.ids[u] = su.ID
	return su.ID, nil
}

func uniqueUsers(us []approval.UserID) []approval.UserID {
	var out []approval.UserID
	for _, u := range us {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// permanentSlackErrors are Slack's answers that another attempt would get
// again: the app's token, scopes or channel are wrong, or the message is
// malformed or gone.
var permanentSlackErrors = []string{
	"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission",
	"missing_scope", "not_allowed_token_type", "team_access_not_granted", "ekm_access_denied",
	"channel_not_found", "is_archived", "not_in_channel", "restricted_action", "user_not_found",
	"users_not_found", "cannot_dm_bot", "user_disabled", "msg_too_long", "invalid_blocks",
	"invalid_blocks_format", "invalid_arguments", "message_not_found", "cant_update_message",
	"edit_window_closed",
}

// slackError turns a Slack API failure into the activity's error: a rate
// limit retries after Slack's Retry-After (the activity's retry waits, not
// the workflow), a permanent refusal does not retry and names Slack's
// error, anything else retries.
func slackError(op string, err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("slack %s: rate limited, retry after %s", op, rl.RetryAfter), "SlackRateLimited",
			temporal.ApplicationErrorOptions{NextRetryDelay: rl.RetryAfter})
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && slices.Contains(permanentSlackErrors, se.Err) {
		return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("slack %s: %s", op, se.Err), "SlackRefused",
			temporal.ApplicationErrorOptions{NonRetryable: true})
	}
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("slack %s: %v", op, err), "SlackFailed", temporal.ApplicationErrorOptions{})
}

// final reports whether err is an error retrying will not cure.
func final(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.NonRetryable()
}

// Slack's limits on what a block holds.
const (
	maxHeader  = 150
	maxSection = 3000
	maxField   = 2000
	maxMessage = 1000
)

// slackMessage renders the run's message: its blocks, and the text Slack
// shows in notifications and where blocks cannot be shown.
func slackMessage(v view) ([]slack.Block, string) {
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, clip(v.Title(), maxHeader), false, false)),
		slack.NewSectionBlock(nil, factFields(v), nil),
	}
	if m := v.Run.Message; m != "" {
		blocks = append(blocks, section(quote(esc(clip(m, maxMessage)))))
	}
	blocks = append(blocks, section(planText(v)), section(costPolicyText(v)))
	if t := reasonsText(v); t != "" {
		blocks = append(blocks, section(t))
	}
	if t := decisionsText(v); t != "" {
		blocks = append(blocks, section(t))
	}
	if t := outcomeText(v); t != "" {
		blocks = append(blocks, section(t))
	}
	if t := linksText(v); t != "" {
		blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, t, false, false)))
	}
	switch e := v.Run.External; {
	case e != nil && v.Waiting():
		// The external system decides: no buttons, but where to go.
		t := "*Decided in " + esc(e.Name()) + "*"
		if e.Link != "" {
			t = "*Decided in <" + e.Link + "|" + esc(e.Name()) + ">*"
		}
		blocks = append(blocks, section(t))
	case v.Waiting():
		blocks = append(blocks, actionsBlock(v))
	}
	text := fmt.Sprintf("%s — run %s requested by %s", v.Title(), v.Event.RunID, v.Requester())
	return blocks, esc(text)
}

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, clip(text, maxSection), false, false), nil, nil)
}

func factFields(v view) []*slack.TextBlockObject {
	field := func(name, value string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, clip("*"+name+"*\n"+value, maxField), false, false)
	}
	fs := []*slack.TextBlockObject{
		field("Workspace", esc(v.Event.Workspace)),
		field("Environment", esc(v.Environment())),
		field("Requested by", esc(v.Requester())),
		field("Status", esc(strings.ReplaceAll(string(v.Run.Status), "_", " "))),
	}
	if d := v.Deadline(); !d.IsZero() {
		fs = append(fs, field("Deadline", slackDate(d)))
	}
	run := esc(v.Event.RunID)
	if v.RunURL != "" {
		run = "<" + v.RunURL + "|" + run + ">"
	}
	return append(fs, field("Run", run))
}

func planText(v view) string {
	var b strings.Builder
	b.WriteString("*Plan* " + v.PlanLine())
	if len(v.Removed) > 0 {
		b.WriteString("\nDestroyed or replaced:")
		for _, a := range v.Removed {
			b.WriteString("\n• `" + esc(a) + "`")
		}
		if v.RemovedMore > 0 {
			fmt.Fprintf(&b, "\n… and %d more", v.RemovedMore)
		}
	}
	return b.String()
}

func costPolicyText(v view) string {
	var b strings.Builder
	b.WriteString("*Cost* " + esc(v.CostLine()))
	for _, d := range v.Denials() {
		b.WriteString("\n:no_entry: *Policy denies:* " + esc(d))
	}
	for _, w := range v.Warnings() {
		b.WriteString("\n:warning: *Policy warns:* " + esc(w))
	}
	if v.Run.Policy != nil && v.Run.Policy.Error != "" {
		b.WriteString("\n:no_entry: *Policy error:* " + esc(v.Run.Policy.Error))
	}
	return b.String()
}

func reasonsText(v view) string {
	rs := v.Reasons()
	if len(rs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("*Approvals*")
	for _, r := range rs {
		mark := ":hourglass_flowing_sand:"
		if r.State == approval.ReasonApproved {
			mark = ":white_check_mark:"
		}
		fmt.Fprintf(&b, "\n%s *%s* %s", mark, esc(r.Name), r.Progress)
		if len(r.Approved) > 0 {
			b.WriteString(" — approved by " + esc(joinUsers(r.Approved)))
		}
		if len(r.Pending) > 0 {
			b.WriteString(" — waiting for " + esc(joinUsers(r.Pending)))
		}
		if who := approverGroups(r); who != "" {
			b.WriteString(" (" + esc(who) + ")")
		}
		if r.State == approval.ReasonOnHold {
			b.WriteString(" — decided in another system")
		}
		if r.Note != "" {
			b.WriteString("\n    _" + esc(r.Note) + "_")
		}
	}
	return b.String()
}

func decisionsText(v view) string {
	ds, earlier := v.Decisions()
	if len(ds) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("*Decisions*")
	if earlier > 0 {
		fmt.Fprintf(&b, " (%d earlier not shown)", earlier)
	}
	for _, d := range ds {
		fmt.Fprintf(&b, "\n• %s %s", esc(string(d.UserID)), decisionVerb(d.Kind))
		if d.Comment != "" {
			b.WriteString(": “" + esc(clip(d.Comment, 300)) + "”")
		}
	}
	return b.String()
}

// outcomeText is the run's ending, once it has one (or its error).
func outcomeText(v view) string {
	if !v.Run.Done() {
		return ""
	}
	s := "*Outcome:* " + esc(strings.ReplaceAll(string(v.Run.Status), "_", " "))
	if v.Run.Error != "" {
		s += " — " + esc(clip(v.Run.Error, 500))
	}
	return s
}

func linksText(v view) string {
	var ls []string
	if v.RunURL != "" {
		ls = append(ls, "<"+v.RunURL+"|Open the run>")
	}
	if v.TemporalURL != "" {
		ls = append(ls, "<"+v.TemporalURL+"|Temporal Web UI>")
	}
	return strings.Join(ls, " · ")
}

func actionsBlock(v view) *slack.ActionBlock {
	value := ActionValue(v.Event.Workspace, v.Event.RunID)
	button := func(id, label string) *slack.ButtonBlockElement {
		return slack.NewButtonBlockElement(id, value, slack.NewTextBlockObject(slack.PlainTextType, label, false, false))
	}
	return slack.NewActionBlock(ActionsBlockID,
		button(ActionApprove, "Approve").WithStyle(slack.StylePrimary),
		button(ActionReject, "Reject").WithStyle(slack.StyleDanger),
		button(ActionRequestChanges, "Request changes"),
	)
}

// slackDate renders t in each reader's own time zone: Slack replaces the
// token with the reader's date and time, and {ago} with the distance from
// now ("in 3 hours"); the fallback, in UTC, is for clients that cannot.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} at {time} ({ago})|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func approverGroups(r reasonView) string {
	var parts []string
	for _, g := range r.Groups {
		parts = append(parts, "group "+g)
	}
	for _, role := range r.Roles {
		parts = append(parts, "role "+role)
	}
	return strings.Join(parts, ", ")
}

func joinUsers(us []approval.UserID) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = string(u)
	}
	return strings.Join(s, ", ")
}

// esc escapes what people wrote (messages, comments, addresses) so it
// cannot turn into mentions or links in Slack's mrkdwn.
func esc(s string) string { return slackutilsx.EscapeMessage(s) }

func quote(s string) string { return "> " + strings.ReplaceAll(s, "\n", "\n> ") }

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
