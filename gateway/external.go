package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/gatehouse-dev/gatehouse/activities/itsm"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// This file holds the callbacks of external approval systems. They carry no
// Bearer token: each authenticates by the workspace's callback secret (an
// HMAC of the raw body) or by the run's callback token, checked in constant
// time before anything in the body is read. A verified decision goes to the
// run as a signal through starter.DecideExternal, which checks the run's
// rules first, so a refusal changes nothing.

// Headers of the callbacks.
const (
	headerServiceNowSignature = "X-Gatehouse-Signature"
	headerJiraSignature       = "X-Hub-Signature"
	headerJiraWebhookID       = "X-Atlassian-Webhook-Identifier"
)

// externalAnswer is what a callback gets back.
type externalAnswer struct {
	Outcome starter.ExternalOutcome `json:"outcome"`
	RunID   string                  `json:"run_id"`
	Status  approval.Status         `json:"status"`
}

// externalWorkspace is the workspace of a callback, if it approves with
// provider p; one answer for every other case, so an unauthenticated caller
// learns nothing about which workspaces exist.
func (s *server) externalWorkspace(name string, p approval.ExternalProvider) (config.Workspace, error) {
	ws, ok := s.Config.Workspace(name)
	if !ok || ws.External == nil || ws.External.Provider != p {
		return config.Workspace{}, approval.Errorf(approval.CodeNotFound, "no %s callback for workspace %q", p.Title(), name)
	}
	return ws, nil
}

// signedBody reads the raw body and checks its HMAC before anything else.
func signedBody(c echo.Context, secret, header string) ([]byte, error) {
	raw, err := readRawBody(c)
	if err != nil {
		return nil, err
	}
	if !itsm.VerifyHexHMAC(secret, raw, c.Request().Header.Get(header)) {
		return nil, echo.NewHTTPError(http.StatusUnauthorized, "callback not verified: send "+header+": sha256=<hex HMAC-SHA256 of the raw body, keyed with the workspace's callback secret>")
	}
	return raw, nil
}

// serviceNowCallback takes the JSON a ServiceNow business rule posts when
// the change request Gatehouse opened is updated. The run is the one its
// correlation_id names.
func (s *server) serviceNowCallback(c echo.Context) error {
	ws, err := s.externalWorkspace(c.Param("ws"), approval.ProviderServiceNow)
	if err != nil {
		return err
	}
	raw, err := signedBody(c, ws.External.CallbackSecret, headerServiceNowSignature)
	if err != nil {
		return err
	}
	cb, st, err := itsm.ParseServiceNow(raw)
	if err != nil {
		return approval.Errorf(approval.CodeInvalid, "body: %v", err)
	}
	if !starter.ValidRunID(cb.CorrelationID) {
		return approval.Errorf(approval.CodeNotFound, "correlation_id: no run %q", cb.CorrelationID)
	}
	return s.decideExternal(c, ws.Name, cb.CorrelationID, approval.ExternalDecision{
		Provider: approval.ProviderServiceNow, TicketID: cb.SysID, Verdict: st.Verdict, State: st.State,
		Actor: st.Actor, Comment: st.Comment, DecidedAt: st.DecidedAt, Via: approval.ViaCallback, Delivery: bodyDigest(raw),
	})
}

// jiraCallback takes Jira's own jira:issue_updated webhook, signed with the
// webhook's secret. The run is found by the label Gatehouse put on the
// issue, or by its key; only a change of status decides.
func (s *server) jiraCallback(c echo.Context) error {
	ws, err := s.externalWorkspace(c.Param("ws"), approval.ProviderJira)
	if err != nil {
		return err
	}
	raw, err := signedBody(c, ws.External.CallbackSecret, headerJiraSignature)
	if err != nil {
		return err
	}
	cb, err := itsm.ParseJira(raw)
	if err != nil {
		return approval.Errorf(approval.CodeInvalid, "body: %v", err)
	}
	runID := ""
	for _, l := range cb.Labels {
		if id, ok := strings.CutPrefix(l, itsm.JiraLabel("")); ok && starter.ValidRunID(id) {
			runID = id
		}
	}
	if runID == "" {
		if runID, _, err = s.Runs.FindByTicket(c.Request().Context(), ws.Name, cb.IssueKey); err != nil {
			return err
		}
	}
	x := ws.External
	d := approval.ExternalDecision{
		Provider: approval.ProviderJira, TicketID: cb.IssueKey, Actor: cb.Actor, DecidedAt: cb.Timestamp,
		Via: approval.ViaCallback, Delivery: c.Request().Header.Get(headerJiraWebhookID),
	}
	if d.Delivery == "" {
		d.Delivery = bodyDigest(raw)
	}
	if cb.Event == "jira:issue_updated" && cb.StatusChange {
		j := itsm.Jira{Approved: x.ApprovedStatuses, Rejected: x.RejectedStatuses}
		d.Verdict, d.State = j.Map(cb.To), cb.To
	}
	return s.decideExternal(c, ws.Name, runID, d)
}

// webhookCallback takes the decision of a generic system, posted to the
// callback URL Gatehouse sent it: the path's token is the run's, compared
// in constant time with the digest the run keeps.
func (s *server) webhookCallback(c echo.Context) error {
	token := c.Param("token")
	forged := echo.NewHTTPError(http.StatusUnauthorized, "callback not verified: the token in the URL is not a run's")
	if len(token) < 20 || len(token) > 200 {
		return forged
	}
	digest := itsm.TokenSHA256(token)
	ctx := c.Request().Context()
	runID, wsName, err := s.Runs.FindByTicket(ctx, "", digest)
	if err != nil {
		return forged
	}
	run, err := s.Runs.GetRun(ctx, wsName, runID)
	if err != nil {
		return err
	}
	if run.External == nil || !itsm.TokenMatches(token, run.External.TokenSHA256) {
		return forged
	}
	raw, err := readRawBody(c)
	if err != nil {
		return err
	}
	cb, st, err := itsm.ParseWebhookCallback(raw)
	if err != nil {
		return approval.Errorf(approval.CodeInvalid, "body: %v", err)
	}
	return s.decideExternal(c, wsName, runID, approval.ExternalDecision{
		Provider: approval.ProviderWebhook, TicketID: run.External.ID, Verdict: st.Verdict, State: cb.Decision,
		Actor: cb.Actor, Comment: cb.Comment, DecidedAt: cb.DecidedAt, Via: approval.ViaCallback, Delivery: bodyDigest(raw),
	})
}

// decideExternal sends a verified decision on and answers the caller: 202
// when it went to the run, 200 when it decides nothing or repeats the
// decision that counted; refusals are errors (404, 409) and change nothing.
func (s *server) decideExternal(c echo.Context, ws, runID string, d approval.ExternalDecision) error {
	outcome, run, err := s.Runs.DecideExternal(c.Request().Context(), ws, runID, d)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if outcome == starter.ExternalAccepted {
		code = http.StatusAccepted
	}
	return c.JSON(code, externalAnswer{Outcome: outcome, RunID: run.ID, Status: run.Status})
}

// bodyDigest identifies a callback for the run's record.
func bodyDigest(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}
