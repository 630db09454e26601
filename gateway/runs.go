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
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/cost"
	"github.com/gatehouse-dev/gatehouse/plan"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// maxIdempotencyKey bounds the Idempotency-Key header: it becomes a Temporal
// Update ID and part of workflow IDs.
const maxIdempotencyKey = 200

type createRunBody struct {
	Plan json.RawMessage `json:"plan"`
	Cost json.RawMessage `json:"cost"`
	// PlanFile is the binary plan (plan -out), base64: what the apply
	// runs. Its JSON (show -json of it) is Plan.
	PlanFile   []byte `json:"plan_file"`
	Message    string `json:"message"`
	OnBehalfOf string `json:"on_behalf_of"`
	// Ref is the git ref Gatehouse plans, for terraform workspaces
	// started without a plan.
	Ref string `json:"ref"`
}

// maxRefLength bounds a git ref.
const maxRefLength = 255

// decodeCreateRun reads a create-run request: a JSON object, or a
// multipart form (what `curl -F plan=@plan.json -F plan_file=@tfplan`
// sends) whose parts have the JSON object's names: plan, cost and plan_file
// as files (or values), message, ref and on_behalf_of as values.
func decodeCreateRun(c echo.Context) (createRunBody, error) {
	var body createRunBody
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if !strings.HasPrefix(ct, echo.MIMEMultipartForm) {
		return body, decodeBody(c, &body, true)
	}
	// The body limit middleware bounds the whole request; parts beyond
	// the memory limit spill to temporary files, removed below.
	form, err := c.MultipartForm()
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) || errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
			return body, echo.ErrStatusRequestEntityTooLarge
		}
		return body, approval.Errorf(approval.CodeInvalid, "body: not a multipart form: %v", err)
	}
	defer func() { _ = form.RemoveAll() }()
	known := map[string]bool{"plan": true, "cost": true, "plan_file": true, "message": true, "ref": true, "on_behalf_of": true}
	part := func(name string) ([]byte, error) {
		if files := form.File[name]; len(files) > 0 {
			f, err := files[0].Open()
			if err != nil {
				return nil, approval.Errorf(approval.CodeInvalid, "%s: could not be read", name)
			}
			defer f.Close()
			data, err := io.ReadAll(f)
			if err != nil {
				return nil, approval.Errorf(approval.CodeInvalid, "%s: could not be read", name)
			}
			return data, nil
		}
		if vals := form.Value[name]; len(vals) > 0 {
			return []byte(vals[0]), nil
		}
		return nil, nil
	}
	for name := range form.Value {
		if !known[name] {
			return body, approval.Errorf(approval.CodeInvalid, "body: unknown field %q", name)
		}
	}
	for name := range form.File {
		if !known[name] {
			return body, approval.Errorf(approval.CodeInvalid, "body: unknown field %q", name)
		}
	}
	fields := map[string][]byte{}
	for name := range known {
		data, err := part(name)
		if err != nil {
			return body, err
		}
		fields[name] = data
	}
	body.Plan, body.Cost, body.PlanFile = fields["plan"], fields["cost"], fields["plan_file"]
	body.Message, body.Ref, body.OnBehalfOf = string(fields["message"]), string(fields["ref"]), string(fields["on_behalf_of"])
	if len(bytes.TrimSpace(body.Plan)) == 0 && len(body.PlanFile) == 0 && body.Message == "" && body.Ref == "" {
		return body, approval.Errorf(approval.CodeInvalid, "body: required: a form with at least a plan, a message or a ref")
	}
	return body, nil
}

// startedUnread answers a create whose run started but could not be read:
// 202 with the run's id and Location, so the caller looks rather than
// retries (without an idempotency key a retry would start a second run).
func (s *server) startedUnread(c echo.Context, e *starter.StartedUnreadError) error {
	s.Logger.Warn("run started but not read", zap.String("run_id", e.RunID), zap.Error(e.Err))
	tagRun(c, e.RunID)
	run := approval.Run{ID: e.RunID, Workspace: e.Workspace}
	c.Response().Header().Set(echo.HeaderLocation, runPath(run))
	c.Response().Header().Set("Retry-After", "5")
	why := "it could not be read yet"
	if errors.Is(e.Err, starter.ErrNoWorker) {
		why = "no Gatehouse worker is polling its task queue to read it"
	}
	return c.JSON(http.StatusAccepted, map[string]string{
		"id":        e.RunID,
		"workspace": e.Workspace,
		"detail":    "the run started, but " + why + ": GET its Location for its state; do not submit it again",
	})
}

func (s *server) createRun(c echo.Context) error {
	body, err := decodeCreateRun(c)
	if err != nil {
		return err
	}
	if err := approval.CheckText("message", body.Message, approval.MaxMessageBytes); err != nil {
		return err
	}
	ws := workspaceOf(c)
	if err := checkRef(body.Ref); err != nil {
		return err
	}
	var sub submission
	switch {
	case isEmpty(body.Plan) && ws.Terraform != nil:
		// Gatehouse plans: nothing submitted but the message and ref.
		if len(body.PlanFile) > 0 || !isEmpty(body.Cost) {
			return approval.Errorf(approval.CodeInvalid, "plan_file, cost: only with a plan; without one Gatehouse plans the workspace itself")
		}
	default:
		if sub, err = parseSubmission(body.Plan, body.Cost); err != nil {
			return err
		}
		if len(body.PlanFile) > 0 {
			sub.planFile = body.PlanFile
			sub.docs = append(sub.docs, body.PlanFile)
		}
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	requester, submitter, err := s.requester(userOf(c), body.OnBehalfOf)
	if err != nil {
		return err
	}
	if err := s.store(sub); err != nil {
		return err
	}
	origin := approval.Origin{Ref: body.Ref, Trigger: "api"}
	if sub.planFile != nil {
		origin.PlanFileSHA256 = plan.Hash(sub.planFile)
	}
	run, err := s.Runs.StartRun(c.Request().Context(), starter.StartRequest{
		Workspace:      ws.Name,
		RequestedBy:    requester,
		SubmittedBy:    submitter,
		Message:        body.Message,
		Plan:           sub.plan,
		Cost:           sub.cost,
		IdempotencyKey: key,
		Origin:         origin,
	})
	if unread := (*starter.StartedUnreadError)(nil); errors.As(err, &unread) {
		return s.startedUnread(c, unread)
	}
	if err != nil {
		return err
	}
	tagRun(c, run.ID)
	c.Response().Header().Set(echo.HeaderLocation, runPath(run))
	return c.JSON(http.StatusCreated, s.view(run))
}

// submission is a plan (and optional cost estimate) as submitted: the
// summaries a run is started with and the exact documents to store.
type submission struct {
	plan     approval.Plan
	cost     *approval.CostSummary
	planFile []byte // the binary plan, when submitted
	docs     [][]byte
}

func isEmpty(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// checkRef refuses what git would take for an option, or cannot be a ref
// (git check-ref-format's rules, roughly: no control characters, spaces,
// ~ ^ : ? * [ \, "..", or a leading "-").
func checkRef(ref string) error {
	if len(ref) > maxRefLength {
		return approval.Errorf(approval.CodeInvalid, "ref: longer than %d bytes", maxRefLength)
	}
	bad := strings.HasPrefix(ref, "-") || strings.Contains(ref, "..") || strings.ContainsAny(ref, " ~^:?*[\\")
	for i := 0; i < len(ref) && !bad; i++ {
		bad = ref[i] < 0x20 || ref[i] == 0x7f
	}
	if bad {
		return approval.Errorf(approval.CodeInvalid, "ref: %q is not a git ref", ref)
	}
	return nil
}

// parseSubmission validates the plan and cost fields of a body. The plan's
// raw bytes are what is hashed and stored.
func parseSubmission(planField, costField json.RawMessage) (submission, error) {
	raw := bytes.TrimSpace(planField)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return submission{}, approval.Errorf(approval.CodeInvalid, "plan: required: the output of `terraform show -json <planfile>`")
	}
	summary, err := plan.Parse(raw)
	if err != nil {
		return submission{}, approval.Errorf(approval.CodeInvalid, "plan: %v", err)
	}
	sub := submission{plan: summary, docs: [][]byte{raw}}
	if rawCost := bytes.TrimSpace(costField); len(rawCost) > 0 && !bytes.Equal(rawCost, []byte("null")) {
		estimate, err := cost.Parse(rawCost)
		if err != nil {
			return submission{}, approval.Errorf(approval.CodeInvalid, "cost: %v", err)
		}
		sub.cost = &estimate
		sub.docs = append(sub.docs, rawCost)
	}
	return sub, nil
}

// store keeps the submitted documents before any run refers to them: a run
// that needs no approval applies at once and must find its plan, and
// policies read both. A failed start leaves only unreferenced,
// content-addressed files behind.
func (s *server) store(sub submission) error {
	for _, doc := range sub.docs {
		if _, err := s.Plans.Put(doc); err != nil {
			return fmt.Errorf("store plan: %w", err)
		}
	}
	return nil
}

// requester works out for whom a run is: the caller, or, when automation
// submits on behalf of a person, that person (who is then "self" for
// separation of duties).
func (s *server) requester(caller approval.Identity, onBehalfOf string) (approval.Identity, *approval.Identity, error) {
	if caller.HasRole(approval.RoleViewer) {
		return approval.Identity{}, nil, approval.Errorf(approval.CodeForbidden, "role: viewers may not start runs")
	}
	if onBehalfOf == "" {
		return caller, nil, nil
	}
	person, ok := s.Config.User(approval.UserID(onBehalfOf))
	if !ok {
		return approval.Identity{}, nil, approval.Errorf(approval.CodeInvalid, "on_behalf_of: unknown user %q", onBehalfOf)
	}
	if !caller.Automation {
		return approval.Identity{}, nil, approval.Errorf(approval.CodeForbidden, "role: only automation users may submit runs on behalf of someone")
	}
	return person.Identity, &caller, nil
}

func (s *server) listRuns(c echo.Context) error {
	status := approval.Status(c.QueryParam("status"))
	if status != "" && !status.Valid() {
		return approval.Errorf(approval.CodeInvalid, "status: unknown status %q", status)
	}
	switch source := c.QueryParam("source"); source {
	case "audit":
		return s.listRunsFromAudit(c, status)
	case "", "temporal":
	default:
		return approval.Errorf(approval.CodeInvalid, "source: want temporal (live runs, the default) or audit (every run the audit trail has, paged)")
	}
	filter := starter.ListFilter{Status: status}
	if user := userOf(c); !workspaceOf(c).CanRead(user) {
		// Someone the workspace does not name sees only their own runs.
		filter.RequestedBy = user.ID
	}
	runs, err := s.Runs.ListRuns(c.Request().Context(), workspaceOf(c).Name, filter)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []starter.RunSummary{}
	}
	return c.JSON(http.StatusOK, map[string]any{"runs": runs})
}

// readRun reads the run the path names, as the caller may see it: a run of
// a workspace the caller may not read is not found, unless the caller
// requested it or one of its reasons names them.
func (s *server) readRun(c echo.Context) (approval.Run, error) {
	ws, user := workspaceOf(c), userOf(c)
	run, err := s.Runs.GetRun(c.Request().Context(), ws.Name, c.Param("id"))
	if err != nil {
		return approval.Run{}, err
	}
	if !ws.CanRead(user) && !run.Concerns(user) {
		return approval.Run{}, approval.Errorf(approval.CodeNotFound, "run %q not found in workspace %q", c.Param("id"), ws.Name)
	}
	s.recordTermination(c, run)
	return run, nil
}

func (s *server) getRun(c echo.Context) error {
	run, err := s.readRun(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.view(run))
}

func (s *server) getDecisions(c echo.Context) error {
	run, err := s.readRun(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"decisions": newRunView(run, nil).Decisions})
}

func (s *server) getRequirements(c echo.Context) error {
	run, err := s.readRun(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"reasons": newRunView(run, nil).Reasons})
}

// maxLogBytes bounds what the logs endpoint serves; the worker already
// bounds what it stores.
const maxLogBytes = 8 << 20

// getLogs serves the apply's output, kept as an artifact beside the plan,
// to those who may read the run.
func (s *server) getLogs(c echo.Context) error {
	run, err := s.readRun(c)
	if err != nil {
		return err
	}
	if run.Apply == nil || run.Apply.LogSHA256 == "" {
		return approval.Errorf(approval.CodeNotFound, "run %s has no apply output", run.ID)
	}
	data, err := s.Plans.Get(run.Apply.LogSHA256)
	if err != nil {
		return fmt.Errorf("read apply output of %s: %w", run.ID, err)
	}
	if len(data) > maxLogBytes {
		data = data[len(data)-maxLogBytes:]
	}
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", data)
}

// listWorkspaces lists the workspaces the caller may read.
func (s *server) listWorkspaces(c echo.Context) error {
	user := userOf(c)
	out := []map[string]any{}
	for _, ws := range s.Config.Workspaces {
		if ws.CanRead(user) {
			out = append(out, map[string]any{"name": ws.Name, "environment": ws.Environment, "tags": ws.Tags})
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"workspaces": out})
}

// decisionBody is the body of every decision endpoint. Each decision takes
// one text field (required where the domain says so); approve and cancel
// also take reason_ids. A field meant for another decision is refused, not
// ignored.
type decisionBody struct {
	Comment       *string  `json:"comment"`
	Message       *string  `json:"message"`
	Justification *string  `json:"justification"`
	ReasonIDs     []string `json:"reason_ids"`
}

// textField names the text field each decision takes.
var textField = map[approval.DecisionKind]string{
	approval.DecisionApprove:        "comment",
	approval.DecisionReject:         "comment",
	approval.DecisionRevoke:         "comment",
	approval.DecisionRequestChanges: "comment",
	approval.DecisionCancel:         "message",
	approval.DecisionBypass:         "justification",
	approval.DecisionRenotify:       "comment",
}

func (b decisionBody) text(kind approval.DecisionKind) (string, error) {
	fields := map[string]*string{"comment": b.Comment, "message": b.Message, "justification": b.Justification}
	want := textField[kind]
	for _, name := range []string{"comment", "message", "justification"} {
		if name != want && fields[name] != nil {
			return "", approval.Errorf(approval.CodeInvalid, "%s: not accepted by %s; use %q", name, kind, want)
		}
	}
	if b.ReasonIDs != nil && kind != approval.DecisionApprove && kind != approval.DecisionCancel {
		return "", approval.Errorf(approval.CodeInvalid, "reason_ids: only approve and cancel take reason_ids")
	}
	if fields[want] == nil {
		return "", nil
	}
	return *fields[want], nil
}

// requiresBody says which decisions cannot be sent without a body.
func requiresBody(kind approval.DecisionKind) bool {
	return kind != approval.DecisionApprove && kind != approval.DecisionRevoke && kind != approval.DecisionRenotify
}

// decide is a decision endpoint of the REST API: it reads the JSON body and
// decides through the starter, the path every channel takes. A caller who
// may read the workspace decides in one Update, which the workflow checks;
// one who may see the run only because it concerns them decides on the run
// as readRun read it, the path the web UI's forms take too.
func (s *server) decide(kind approval.DecisionKind) echo.HandlerFunc {
	return func(c echo.Context) error {
		d, err := decisionOf(c, kind)
		if err != nil {
			// A run that is not there (or not the caller's to see) is a
			// 404 whatever the body says.
			if _, rerr := s.readRun(c); rerr != nil {
				return rerr
			}
			return err
		}
		var out approval.Run
		if ws, user := workspaceOf(c), userOf(c); ws.CanRead(user) {
			out, err = s.Runs.Decide(c.Request().Context(), s.decisionRequest(c, ws.Name, c.Param("id"), d))
		} else {
			var run approval.Run
			if run, err = s.readRun(c); err != nil {
				return err
			}
			out, err = s.decideOn(c, run, d)
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, s.view(out))
	}
}

// decisionOf reads a decision endpoint's body and idempotency key.
func decisionOf(c echo.Context, kind approval.DecisionKind) (decision, error) {
	var body decisionBody
	if err := decodeBody(c, &body, requiresBody(kind)); err != nil {
		return decision{}, err
	}
	text, err := body.text(kind)
	if err != nil {
		return decision{}, err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return decision{}, err
	}
	return decision{Kind: kind, Text: text, ReasonIDs: body.ReasonIDs, IdempotencyKey: key, Channel: approval.ChannelAPI}, nil
}

// decision is a person's decision as a gateway channel received it: its
// kind, its one text field (comment, message or justification), the
// reasons it names, the caller's idempotency key and the channel.
type decision struct {
	Kind           approval.DecisionKind
	Text           string
	ReasonIDs      []string
	IdempotencyKey string
	Channel        string
}

// decideOn carries the decision to run, which the caller read with readRun
// (so a run the user may not see is never decided on), as the
// authenticated user, through the starter; the domain's checks and the
// workflow decide. It returns the run as it stands afterwards.
func (s *server) decideOn(c echo.Context, run approval.Run, d decision) (approval.Run, error) {
	return s.Runs.DecideOn(c.Request().Context(), run, s.decisionRequest(c, run.Workspace, run.ID, d))
}

// decisionRequest is d, by the authenticated user, on run id in ws.
func (s *server) decisionRequest(c echo.Context, ws, id string, d decision) starter.DecisionRequest {
	return starter.DecisionRequest{
		Workspace: ws, RunID: id, Kind: d.Kind,
		Actor: userOf(c), Comment: d.Text, ReasonIDs: d.ReasonIDs, IdempotencyKey: d.IdempotencyKey, Channel: d.Channel,
	}
}

type revisePlanBody struct {
	Plan json.RawMessage `json:"plan"`
	Cost json.RawMessage `json:"cost"`
}

// revisePlan takes the requester's revised plan after changes were requested.
func (s *server) revisePlan(c echo.Context) error {
	ctx := c.Request().Context()
	run, err := s.readRun(c)
	if err != nil {
		return err
	}
	var body revisePlanBody
	if err := decodeBody(c, &body, true); err != nil {
		return err
	}
	sub, err := parseSubmission(body.Plan, body.Cost)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	// Check before storing, so a refused revision writes nothing.
	if err := run.CheckRevisePlan(approval.Request{Actor: userOf(c)}); err != nil && (approval.ErrorCode(err) != approval.CodeConflict || run.Status.Final()) {
		return err
	}
	if err := s.store(sub); err != nil {
		return err
	}
	out, err := s.Runs.DecideOn(ctx, run, starter.DecisionRequest{
		Workspace: run.Workspace, RunID: run.ID, Kind: approval.DecisionRevisePlan,
		Actor: userOf(c), Plan: &sub.plan, Cost: sub.cost, IdempotencyKey: key, Channel: approval.ChannelAPI,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.view(out))
}

// decodeBody reads a JSON object strictly: unknown fields, trailing data and
// wrong types are 400s that name the field. An empty body is an empty object
// unless required.
func decodeBody(c echo.Context, v any, required bool) error {
	data, err := io.ReadAll(c.Request().Body)
	if err != nil {
		// A body sent without Content-Length (chunked) is cut off by the
		// limit middleware while it is read: that is a 413 too.
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) || errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
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

// runPath is a run's API path, for Location headers: the one the client
// builds too (runPathOf), escaped the same way.
func runPath(run approval.Run) string { return runPathOf(run.Workspace, run.ID) }
