package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// hookMaxAge is how far a hook delivery's timestamp may be from now, either
// way: an older delivery is a replay, a later one a forged clock.
const hookMaxAge = 5 * time.Minute

// Triggers recorded on runs that webhooks start.
const (
	triggerHook   = "hook"
	triggerGitHub = "github"
)

// hookBody is what a hook delivery asks for. The hook authenticates as the
// workspace, not as a person: requested_by names the person the run is for.
type hookBody struct {
	Ref         string `json:"ref"`
	Message     string `json:"message"`
	RequestedBy string `json:"requested_by"`
}

// startFromHook starts a run of a terraform workspace from a delivery
// signed with the workspace's hook secret, the way Gatehouse signs its own
// webhooks. Nothing is decoded before the signature is checked.
func (s *server) startFromHook(c echo.Context) error {
	ws, ok := s.Config.Workspace(c.Param("ws"))
	if !ok || ws.Hooks == nil {
		// One answer for both: an unauthenticated caller learns nothing
		// about which workspaces exist.
		return approval.Errorf(approval.CodeNotFound, "no hook for workspace %q", c.Param("ws"))
	}
	raw, err := readRawBody(c)
	if err != nil {
		return err
	}
	if err := activities.VerifyWebhook(ws.Hooks.Secret, c.Request().Header, raw, hookMaxAge, time.Now()); err != nil {
		return echo.NewHTTPError(http.StatusUnauthorized, "hook not verified: "+err.Error()+
			" (send "+activities.HeaderTimestamp+" and "+activities.HeaderSignature+": sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\">)")
	}
	var body hookBody
	if err := decodeRaw(c, raw, &body); err != nil {
		return err
	}
	requester, err := s.hookRequester(body.RequestedBy)
	if err != nil {
		return err
	}
	if err := checkRef(body.Ref); err != nil {
		return err
	}
	key, err := hookIdempotencyKey(c)
	if err != nil {
		return err
	}
	run, err := s.Runs.StartRun(c.Request().Context(), hookStart(ws, requester, body, key))
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, runPath(run))
	return c.JSON(http.StatusCreated, s.view(run))
}

// hookStart is the start a verified hook delivery asks for. The hook has no
// user of its own, so no one is recorded as submitting: the run is the
// named person's, who is "self" for separation of duties.
func hookStart(ws config.Workspace, requester approval.Identity, body hookBody, key string) starter.StartRequest {
	return starter.StartRequest{
		Workspace:      ws.Name,
		RequestedBy:    requester,
		Message:        body.Message,
		IdempotencyKey: key,
		Origin:         approval.Origin{Trigger: triggerHook, Ref: body.Ref},
	}
}

// hookRequester is the configured user a hook starts a run for. Viewers
// start no runs, whatever channel asks.
func (s *server) hookRequester(id string) (approval.Identity, error) {
	if id == "" {
		return approval.Identity{}, approval.Errorf(approval.CodeInvalid, "requested_by: required: the Gatehouse user the run is for")
	}
	user, ok := s.Config.User(approval.UserID(id))
	if !ok {
		return approval.Identity{}, approval.Errorf(approval.CodeInvalid, "requested_by: unknown user %q", id)
	}
	if user.HasRole(approval.RoleViewer) {
		return approval.Identity{}, approval.Errorf(approval.CodeForbidden, "role: viewers may not start runs (requested_by %q)", id)
	}
	return user.Identity, nil
}

// hookIdempotencyKey is the caller's Idempotency-Key, else the delivery's
// timestamp and signature: a delivery replayed within the window is the
// same delivery and returns the same run. Prefixed so that a hook's key and
// an API caller's same string never name the same run.
func hookIdempotencyKey(c echo.Context) (string, error) {
	key, err := idempotencyKey(c)
	if err != nil {
		return "", err
	}
	if key != "" {
		return "hook:" + key, nil
	}
	h := c.Request().Header
	return "hook:" + h.Get(activities.HeaderTimestamp) + "." + h.Get(activities.HeaderSignature), nil
}

// readRawBody reads the whole body: a signature covers its exact bytes.
func readRawBody(c echo.Context) ([]byte, error) {
	data, err := io.ReadAll(c.Request().Body)
	if err != nil {
		// A chunked body is cut off by the limit middleware while it is
		// read: that is a 413 too.
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) || errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
			return nil, echo.ErrStatusRequestEntityTooLarge
		}
		return nil, approval.Errorf(approval.CodeInvalid, "body: could not be read")
	}
	return data, nil
}

// decodeRaw decodes verified bytes with the API's strict decoder.
func decodeRaw(c echo.Context, raw []byte, v any) error {
	c.Request().Body = io.NopCloser(bytes.NewReader(raw))
	return decodeBody(c, v, true)
}
