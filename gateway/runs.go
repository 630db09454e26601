package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/plan"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// maxIdempotencyKey bounds the Idempotency-Key header: it becomes a Temporal
// Update ID and part of workflow IDs.
const maxIdempotencyKey = 200

type createRunBody struct {
	Plan    json.RawMessage `json:"plan"`
	Message string          `json:"message"`
}

func (s *server) createRun(c echo.Context) error {
	var body createRunBody
	if err := decodeBody(c, &body, true); err != nil {
		return err
	}
	raw := bytes.TrimSpace(body.Plan)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return approval.Errorf(approval.CodeInvalid, "plan: required: the output of `terraform show -json <planfile>`")
	}
	summary, err := plan.Parse(raw)
	if err != nil {
		return approval.Errorf(approval.CodeInvalid, "plan: %v", err)
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	user := userOf(c)
	if user.HasRole(approval.RoleViewer) {
		return approval.Errorf(approval.CodeForbidden, "role: viewers may not start runs")
	}
	// The plan is stored before the run starts: a run that needs no approval
	// applies at once and must find it. A failed start leaves only an
	// unreferenced, content-addressed file behind.
	if _, err := s.Plans.Put(raw); err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	run, err := s.Runs.StartRun(c.Request().Context(), starter.StartRequest{
		Workspace:      workspaceOf(c).Name,
		RequestedBy:    user,
		Message:        body.Message,
		Plan:           summary,
		IdempotencyKey: key,
	})
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, runPath(run))
	return c.JSON(http.StatusCreated, newRunView(run))
}

func (s *server) listRuns(c echo.Context) error {
	status := approval.Status(c.QueryParam("status"))
	if status != "" && !status.Valid() {
		return approval.Errorf(approval.CodeInvalid, "status: unknown status %q", status)
	}
	runs, err := s.Runs.ListRuns(c.Request().Context(), workspaceOf(c).Name, status)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []starter.RunSummary{}
	}
	return c.JSON(http.StatusOK, map[string]any{"runs": runs})
}

func (s *server) getRun(c echo.Context) error {
	run, err := s.Runs.GetRun(c.Request().Context(), workspaceOf(c).Name, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newRunView(run))
}

func (s *server) getDecisions(c echo.Context) error {
	run, err := s.Runs.GetRun(c.Request().Context(), workspaceOf(c).Name, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"decisions": newRunView(run).Decisions})
}

func (s *server) getRequirements(c echo.Context) error {
	run, err := s.Runs.GetRun(c.Request().Context(), workspaceOf(c).Name, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"reasons": newRunView(run).Reasons})
}

// decisionBody is the body of approve, reject and cancel. Reject takes a
// comment, cancel a message; both are required there (the domain says so).
type decisionBody struct {
	Comment *string `json:"comment"`
	Message *string `json:"message"`
}

func (s *server) decide(kind approval.DecisionKind) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		run, err := s.Runs.GetRun(ctx, workspaceOf(c).Name, c.Param("id"))
		if err != nil {
			return err
		}
		var body decisionBody
		if err := decodeBody(c, &body, kind != approval.DecisionApprove); err != nil {
			return err
		}
		text, err := body.text(kind)
		if err != nil {
			return err
		}
		key, err := idempotencyKey(c)
		if err != nil {
			return err
		}
		out, err := s.Runs.DecideOn(ctx, run, starter.DecisionRequest{
			Workspace: run.Workspace, RunID: run.ID, Kind: kind,
			Actor: userOf(c), Comment: text, IdempotencyKey: key,
		})
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, newRunView(out))
	}
}

// text picks the field the decision takes and refuses the other, so a
// message sent to reject is not silently dropped.
func (b decisionBody) text(kind approval.DecisionKind) (string, error) {
	field, other := b.Comment, b.Message
	name, otherName := "comment", "message"
	if kind == approval.DecisionCancel {
		field, other = b.Message, b.Comment
		name, otherName = "message", "comment"
	}
	if other != nil {
		return "", approval.Errorf(approval.CodeInvalid, "%s: not accepted by %s; use %q", otherName, kind, name)
	}
	if field == nil {
		return "", nil
	}
	return *field, nil
}

// decodeBody reads a JSON object strictly: unknown fields, trailing data and
// wrong types are 400s that name the field. An empty body is an empty object
// unless required.
func decodeBody(c echo.Context, v any, required bool) error {
	data, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return echo.ErrStatusRequestEntityTooLarge
		}
		return approval.Errorf(approval.CodeInvalid, "body: could not be read")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if required {
			return approval.Errorf(approval.CodeInvalid, "body: required: a JSON object")
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return approval.Errorf(approval.CodeInvalid, "body: %s", describeJSONError(err))
	}
	if dec.More() {
		return approval.Errorf(approval.CodeInvalid, "body: unexpected data after the JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("%s: expected %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("expected a JSON object, got %s", typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ") + ""
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: unexpected end"
	}
	return "invalid JSON"
}

// idempotencyKey reads the optional Idempotency-Key header.
func idempotencyKey(c echo.Context) (string, error) {
	key := c.Request().Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return "", approval.Errorf(approval.CodeInvalid, "Idempotency-Key: longer than %d characters", maxIdempotencyKey)
	}
	for _, r := range key {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return "", approval.Errorf(approval.CodeInvalid, "Idempotency-Key: only printable ASCII is allowed")
		}
	}
	return key, nil
}

func runPath(run approval.Run) string {
	return "/api/v1/workspaces/" + run.Workspace + "/runs/" + run.ID
}
