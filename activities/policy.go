package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/print"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/cost"
)

// PolicyInput names the run and the documents its policies are evaluated
// on. The plan and cost estimate travel by hash: the activity reads them
// from the store, so the full documents never enter workflow history.
type PolicyInput struct {
	RunID       string   `json:"run_id"`
	Workspace   string   `json:"workspace"`
	Environment string   `json:"environment,omitempty"`
	RequestedBy string   `json:"requested_by"`
	Message     string   `json:"message,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	PlanSHA256  string   `json:"plan_sha256"`
	// CostSHA256 is "" when no Infracost estimate was submitted.
	CostSHA256 string `json:"cost_sha256,omitempty"`
}

// policyTimeout bounds the evaluation of a workspace's policies, all of
// them. An activity deadline sooner than that bounds it too, with a margin
// so the activity can still report the timeout as the policies' failure
// instead of timing out itself.
const policyTimeout = 10 * time.Second

// contextKey is where the input carries Gatehouse's own context beside the
// plan's top-level keys (which never include it: Terraform's are
// format_version, resource_changes, planned_values, configuration...).
const contextKey = "gatehouse"

// EvaluatePolicy evaluates the workspace's Rego policies (from the worker's
// config, never from workflow input) on the run's plan and cost estimate.
//
// Each policy file is evaluated on its own, as conftest and `opa eval` would:
// data.gatehouse of that file alone, on the plan exactly as `terraform show
// -json` prints it, with Gatehouse's context at input.gatehouse:
//
//	{"run": {"id", "message"}, "workspace": {"name", "environment", "tags"},
//	 "requested_by": <user id>, "cost": {"status": "none" | "failed" | "ok", ...}}
//
// Gatehouse reads deny, deny_*, violation and violation_* (denials), warn
// and warn_* (warnings) — sets of strings or of objects with a string msg,
// as in conftest — and require_approval (a set of objects {name, approvers:
// {users, groups, roles}, min_approvals (default 1), stage}). The plan's
// sensitive values are replaced by "(sensitive)" in every message kept.
//
// A policy that does not parse or compile, fails at runtime (built-in errors
// are strict) or returns a value of the wrong type yields a result whose
// Error names the policy, and a nil error: the run fails closed. A missing
// workspace, plan or estimate is a non-retryable application error.
//
// Evaluation is bounded by the activity's deadline and by policyTimeout.
// Built-ins behave as OPA's defaults: time.now_ns and the like are fine in
// an activity, and http.send is enabled, so policies can reach the network
// from the worker. print() output goes to the worker log.
func (a *Activities) EvaluatePolicy(ctx context.Context, in PolicyInput) (approval.PolicyResult, error) {
	started := time.Now()
	ws, ok := a.Config.Workspace(in.Workspace)
	if !ok {
		return approval.PolicyResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("workspace %q is not configured on this worker", in.Workspace), "WorkspaceUnknown", nil)
	}
	planDoc, err := a.storedPlan(in.PlanSHA256)
	if err != nil {
		return approval.PolicyResult{}, err
	}
	// Collected before the context joins the plan: only the plan's own
	// values are Terraform's to call sensitive.
	redact := newRedactor(planDoc)
	costCtx, err := a.costContext(in.CostSHA256)
	if err != nil {
		return approval.PolicyResult{}, err
	}
	planDoc[contextKey] = gatehouseContext(in, costCtx)
	input, err := ast.InterfaceToValue(planDoc)
	if err != nil {
		return approval.PolicyResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("convert the plan for policy evaluation: %v", err), "PlanUnavailable", nil)
	}

	ev := &policyEval{
		cache:   &a.policies,
		version: a.Config.Version,
		logger:  a.Logger.With(zap.String("run_id", in.RunID), zap.String("workspace", in.Workspace)),
		input:   input,
		redact:  redact,
	}
	res, err := ev.run(ctx, ws.Policies)
	if err != nil {
		return approval.PolicyResult{}, err
	}
	res.PlanSHA256 = in.PlanSHA256
	res.EvaluatedAt = time.Now().UTC()
	a.Logger.Info("policies evaluated",
		zap.String("run_id", in.RunID), zap.String("workspace", in.Workspace),
		zap.Strings("policies", res.Policies), zap.Int("denials", len(res.Denials)),
		zap.Int("warnings", len(res.Warnings)), zap.Int("requirements", len(res.Requirements)),
		zap.String("error", res.Error), zap.Duration("took", time.Since(started)))
	return res, nil
}

// storedPlan reads the plan document. The gateway validated it, so a plan
// that is missing or not an object is the infrastructure's fault, not the
// policies'.
func (a *Activities) storedPlan(sha string) (map[string]any, error) {
	fail := func(err error) error {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("load plan for policy evaluation: %v", err), "PlanUnavailable", nil)
	}
	data, err := a.Plans.Get(sha)
	if err != nil {
		return nil, fail(err)
	}
	v, err := decodeJSON(data)
	if err != nil {
		return nil, fail(fmt.Errorf("%s: %w", sha, err))
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fail(fmt.Errorf("%s: not a JSON object", sha))
	}
	return doc, nil
}

// costContext is input.gatehouse.cost. It says in so many words whether
// there is an estimate a policy may compare, because an absent or failed
// estimate read as a number would pass a cost check silently.
func (a *Activities) costContext(sha string) (map[string]any, error) {
	if sha == "" {
		return map[string]any{"status": "none"}, nil
	}
	fail := func(err error) error {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("load cost estimate for policy evaluation: %v", err), "CostUnavailable", nil)
	}
	data, err := a.Plans.Get(sha)
	if err != nil {
		return nil, fail(err)
	}
	doc, err := decodeJSON(data)
	if err != nil {
		return nil, fail(fmt.Errorf("%s: %w", sha, err))
	}
	sum, err := cost.Parse(data)
	switch {
	case err != nil:
		// The gateway accepted it; if this worker reads it otherwise, it is
		// still no number to compare.
		return failedCost([]string{err.Error()}, doc), nil
	case sum.Failed:
		return failedCost(sum.Problems, doc), nil
	}
	return map[string]any{
		"status":             "ok",
		"currency":           sum.Currency,
		"monthly_cost":       number(sum.MonthlyCost),
		"past_monthly_cost":  number(sum.PastMonthlyCost),
		"monthly_cost_delta": number(sum.MonthlyCostDelta),
		"estimate":           doc,
	}, nil
}

func failedCost(problems []string, doc any) map[string]any {
	list := make([]any, len(problems))
	for i, p := range problems {
		list[i] = p
	}
	return map[string]any{"status": "failed", "problems": list, "estimate": doc}
}

// number renders x as the shortest decimal that reads back as x, so a
// policy's sprintf shows 1123.762, not 1123.7619999999999.
func number(x float64) json.Number {
	return json.Number(strconv.FormatFloat(x, 'f', -1, 64))
}

// gatehouseContext is input.gatehouse: what Gatehouse knows of the run.
func gatehouseContext(in PolicyInput, costCtx map[string]any) map[string]any {
	tags := make([]any, len(in.Tags))
	for i, t := range in.Tags {
		tags[i] = t
	}
	return map[string]any{
		"run":          map[string]any{"id": in.RunID, "message": in.Message},
		"workspace":    map[string]any{"name": in.Workspace, "environment": in.Environment, "tags": tags},
		"requested_by": in.RequestedBy,
		"cost":         costCtx,
	}
}

// decodeJSON decodes one JSON document, keeping numbers exact.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("decode: data after the JSON document")
	}
	return v, nil
}

// policyCache keeps each policy's prepared query for the worker's config
// version: parsing and compiling is most of the cost of evaluating a small
// policy, and the version covers every policy's name and source. Its zero
// value is ready to use; it is safe for concurrent use.
type policyCache struct {
	mu      sync.Mutex
	version string
	queries map[string]*preparedPolicy // by policy name
}

// preparedPolicy is a policy as prepared once: its query, or why it has
// none (a policy that does not compile fails every evaluation alike).
type preparedPolicy struct {
	// source is what it was prepared from: a config built without a
	// Version (as tests do) must not get another source's query.
	source string
	query  rego.PreparedEvalQuery
	err    error
}

func (c *policyCache) get(version string, p config.Policy) *preparedPolicy {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version {
		return nil
	}
	if pp := c.queries[p.Name]; pp != nil && pp.source == p.Source {
		return pp
	}
	return nil
}

// put keeps pp. A new version drops the old one's queries: a worker runs one
// config, so they will not be asked for again.
func (c *policyCache) put(version, name string, pp *preparedPolicy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version || c.queries == nil {
		c.version, c.queries = version, map[string]*preparedPolicy{}
	}
	c.queries[name] = pp
}

// policyEval evaluates one run's policies.
type policyEval struct {
	cache   *policyCache
	version string
	logger  *zap.Logger
	input   ast.Value // converted once for all the policies
	redact  *redactor
}

// run evaluates the policies in the workspace's order and merges what they
// said. The error is for the activity's own cancellation only; everything
// the policies got wrong is in the result: the first policy's problem, alone.
func (e *policyEval) run(ctx context.Context, policies []config.Policy) (approval.PolicyResult, error) {
	res := approval.PolicyResult{Policies: make([]string, len(policies))}
	for i, p := range policies {
		res.Policies[i] = p.Name
	}
	if len(policies) == 0 {
		return res, nil
	}
	limit := policyTimeout
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); left-left/10 < limit {
			limit = left - left/10
		}
	}
	evalCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	var said policyOutput
	for _, p := range policies {
		out, err := e.evaluate(evalCtx, p)
		if err == nil {
			err = said.merge(out)
		}
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			return approval.PolicyResult{}, fmt.Errorf("evaluate policy %q: %w", p.Name, ctx.Err())
		case evalCtx.Err() != nil:
			err = fmt.Errorf("policy %q: the workspace's policies did not finish within %v", p.Name, limit.Round(time.Millisecond))
		}
		res.Error = e.redact.text(err.Error())
		return res, nil
	}
	res.Denials, res.Warnings = sortedSet(said.denials), sortedSet(said.warnings)
	res.Requirements = said.requirements
	slices.SortFunc(res.Requirements, func(a, b approval.PolicyRequirement) int { return strings.Compare(a.Name, b.Name) })
	return res, nil
}

// evaluate evaluates one policy on its own. Every error names it.
func (e *policyEval) evaluate(ctx context.Context, p config.Policy) (policyOutput, error) {
	pp := e.prepared(ctx, p)
	if pp.err != nil {
		return policyOutput{}, fmt.Errorf("policy %q: %w", p.Name, pp.err)
	}
	hook := printHook{logger: e.logger.With(zap.String("policy", p.Name)), redact: e.redact}
	rs, err := pp.query.Eval(ctx, rego.EvalParsedInput(e.input), rego.EvalPrintHook(hook))
	if err != nil {
		return policyOutput{}, fmt.Errorf("policy %q: %s", p.Name, evalError(err))
	}
	doc := map[string]any{}
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		if d, ok := rs[0].Expressions[0].Value.(map[string]any); ok {
			doc = d
		}
	}
	out, err := readPolicy(doc, e.redact)
	if err != nil {
		return policyOutput{}, fmt.Errorf("policy %q: %w", p.Name, err)
	}
	for i := range out.requirements {
		out.requirements[i].Policy = p.Name
	}
	return out, nil
}

// prepared returns the policy's prepared query, preparing it on first use.
// Two evaluations may both prepare a new policy; either result is the same.
func (e *policyEval) prepared(ctx context.Context, p config.Policy) *preparedPolicy {
	if pp := e.cache.get(e.version, p); pp != nil {
		return pp
	}
	started := time.Now()
	q, err := config.PreparePolicy(ctx, p)
	pp := &preparedPolicy{source: p.Source, query: q, err: err}
	e.logger.Debug("policy prepared", zap.String("policy", p.Name), zap.String("config_version", e.version),
		zap.Duration("took", time.Since(started)), zap.Error(err))
	if ctx.Err() == nil { // a cancelled preparation says nothing of the policy
		e.cache.put(e.version, p.Name, pp)
	}
	return pp
}

// evalError renders OPA's evaluation error as "line <n>: <code>: <first
// line of the message>".
func evalError(err error) string {
	var tErr *topdown.Error
	if !errors.As(err, &tErr) {
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return msg
	}
	msg, _, _ := strings.Cut(tErr.Code+": "+tErr.Message, "\n")
	if tErr.Location != nil && tErr.Location.Row > 0 {
		msg = fmt.Sprintf("line %d: %s", tErr.Location.Row, msg)
	}
	return msg
}

// policyOutput is what one policy, or all of them merged, said.
type policyOutput struct {
	denials, warnings []string
	requirements      []approval.PolicyRequirement
}

// merge adds another policy's output. Two policies asking for the same
// approval ask for it once, credited to the first; asking for one name
// differently is a conflict no one could resolve by approving.
func (o *policyOutput) merge(next policyOutput) error {
	o.denials = append(o.denials, next.denials...)
	o.warnings = append(o.warnings, next.warnings...)
	for _, req := range next.requirements {
		i := slices.IndexFunc(o.requirements, func(r approval.PolicyRequirement) bool { return r.Name == req.Name })
		if i < 0 {
			o.requirements = append(o.requirements, req)
			continue
		}
		prev, same := o.requirements[i], req
		same.Policy = prev.Policy
		if !reflect.DeepEqual(prev, same) {
			return fmt.Errorf("policies %q and %q both ask for approval %q, differently", prev.Policy, req.Policy, req.Name)
		}
	}
	return nil
}

func sortedSet(list []string) []string {
	slices.Sort(list)
	return slices.Compact(list)
}

// readPolicy reads the rules Gatehouse reads from a policy's data.gatehouse,
// checking every type, rules in name order so the first problem reported
// does not depend on map order.
func readPolicy(doc map[string]any, redact *redactor) (policyOutput, error) {
	var out policyOutput
	names := make([]string, 0, len(doc))
	for name := range doc {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		var err error
		switch config.PolicyRuleOf(name) {
		case config.PolicyDeny:
			err = readMessages(&out.denials, name, doc[name], redact)
		case config.PolicyWarn:
			err = readMessages(&out.warnings, name, doc[name], redact)
		case config.PolicyRequire:
			out.requirements, err = readRequirements(name, doc[name], redact)
		}
		if err != nil {
			return policyOutput{}, err
		}
	}
	return out, nil
}

// readMessages reads a set of messages: strings, or objects with a string
// msg as conftest allows (their other fields are for conftest's output).
func readMessages(dst *[]string, rule string, v any, redact *redactor) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("%s: expected a set of strings or of objects with a msg, found %s", rule, describeValue(v))
	}
	for _, item := range list {
		switch x := item.(type) {
		case string:
			*dst = append(*dst, redact.text(x))
		case map[string]any:
			msg, ok := x["msg"].(string)
			if !ok {
				return fmt.Errorf("%s: expected an object with a string msg, found %s", rule, describeValue(redact.value(item)))
			}
			*dst = append(*dst, redact.text(msg))
		default:
			return fmt.Errorf("%s: expected a set of strings or of objects with a msg, found an element %s", rule, describeValue(redact.value(item)))
		}
	}
	return nil
}

// readRequirements reads require_approval, each entry strictly.
func readRequirements(rule string, v any, redact *redactor) ([]approval.PolicyRequirement, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: expected a set of objects, found %s", rule, describeValue(v))
	}
	var out []approval.PolicyRequirement
	for i, item := range list {
		req, err := parseRequirement(item)
		if err != nil {
			where := fmt.Sprintf("%s[%d]", rule, i)
			if obj, ok := item.(map[string]any); ok {
				if name, ok := obj["name"].(string); ok && name != "" {
					where += " (" + name + ")"
				}
			}
			return nil, errors.New(where + ": " + err.Error())
		}
		req.Name = redact.text(req.Name)
		out = append(out, req)
	}
	return out, nil
}

// parseRequirement reads one require_approval entry strictly: only the known
// fields, each of its type.
func parseRequirement(v any) (approval.PolicyRequirement, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return approval.PolicyRequirement{}, fmt.Errorf("expected an object, found %s", describeValue(v))
	}
	if err := onlyKeys(obj, "", "name", "approvers", "min_approvals", "stage"); err != nil {
		return approval.PolicyRequirement{}, err
	}
	req := approval.PolicyRequirement{MinApprovals: 1}
	name, ok := obj["name"]
	if !ok {
		return req, errors.New("missing name")
	}
	if req.Name, ok = name.(string); !ok {
		return req, fmt.Errorf("name: expected a string, found %s", describeValue(name))
	}
	if raw, ok := obj["approvers"]; ok {
		approvers, err := parseApprovers(raw)
		if err != nil {
			return req, err
		}
		req.Approvers = approvers
	}
	if raw, ok := obj["min_approvals"]; ok {
		n, ok := raw.(json.Number)
		f, err := n.Float64()
		if !ok || err != nil || f != math.Trunc(f) || f > math.MaxInt32 {
			return req, fmt.Errorf("min_approvals: expected an integer, found %s", describeValue(raw))
		}
		if f < 1 {
			return req, fmt.Errorf("min_approvals: must be at least 1, found %s", n)
		}
		req.MinApprovals = int(f)
	}
	if raw, ok := obj["stage"]; ok {
		s, ok := raw.(string)
		if !ok {
			return req, fmt.Errorf("stage: expected a string, found %s", describeValue(raw))
		}
		req.Stage = approval.Stage(s)
	}
	return req, nil
}

func parseApprovers(raw any) (approval.Approvers, error) {
	var out approval.Approvers
	a, ok := raw.(map[string]any)
	if !ok {
		return out, fmt.Errorf("approvers: expected an object, found %s", describeValue(raw))
	}
	if err := onlyKeys(a, "approvers.", "users", "groups", "roles"); err != nil {
		return out, err
	}
	users, err := stringList(a, "users")
	if err != nil {
		return out, err
	}
	groups, err := stringList(a, "groups")
	if err != nil {
		return out, err
	}
	roles, err := stringList(a, "roles")
	if err != nil {
		return out, err
	}
	for _, u := range users {
		out.Users = append(out.Users, approval.UserID(u))
	}
	out.Groups = groups
	for _, r := range roles {
		out.Roles = append(out.Roles, approval.Role(r))
	}
	return out, nil
}

// onlyKeys refuses fields other than the known ones (a misspelt
// min_approvals must not silently become the default).
func onlyKeys(obj map[string]any, prefix string, known ...string) error {
	var unknown []string
	for k := range obj {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("%s%s: unknown field (known: %s)", prefix, unknown[0], strings.Join(known, ", "))
}

// stringList reads an optional array (or set) of strings.
func stringList(obj map[string]any, key string) ([]string, error) {
	raw, ok := obj[key]
	if !ok {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("approvers.%s: expected an array of strings, found %s", key, describeValue(raw))
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("approvers.%s: expected an array of strings, found an element %s", key, describeValue(item))
		}
		out = append(out, s)
	}
	return out, nil
}

// describeValue names a value's type and shows it, shortened.
func describeValue(v any) string {
	var kind string
	switch v.(type) {
	case nil:
		return "null"
	case string:
		kind = "string"
	case json.Number:
		kind = "number"
	case bool:
		kind = "boolean"
	case []any:
		kind = "array"
	case map[string]any:
		kind = "object"
	default:
		kind = fmt.Sprintf("%T", v)
	}
	b, _ := json.Marshal(v) // maps marshal with sorted keys
	text := string(b)
	if len(text) > 80 {
		text = text[:77] + "..."
	}
	return kind + " " + text
}

// printHook sends a policy's print() output to the worker log, redacted
// like its messages.
type printHook struct {
	logger *zap.Logger
	redact *redactor
}

func (h printHook) Print(ctx print.Context, msg string) error {
	fields := []zap.Field{zap.String("output", h.redact.text(msg))}
	if ctx.Location != nil {
		fields = append(fields, zap.Int("line", ctx.Location.Row))
	}
	h.logger.Info("policy print", fields...)
	return nil
}

// sensitiveMark replaces a sensitive value in a message.
const sensitiveMark = "(sensitive)"

// minSensitiveLen is the shortest sensitive string redacted: shorter ones
// ("a", "on", "eu") occur in every message, and hiding them would hide what
// the message says while protecting little.
const minSensitiveLen = 4

// redactor replaces the plan's sensitive values in what Gatehouse keeps of
// a policy's output. A policy that sprintf's an attribute into a denial
// must not carry a secret into workflow history, which everyone who can see
// the run can read; Terraform marks which values are secret.
type redactor struct {
	strs    *strings.Replacer // nil when the plan has no sensitive string
	numbers []string          // renderings of sensitive numbers
}

// newRedactor collects the plan's sensitive values: those the change,
// drift, output, planned and prior values mark sensitive, and the values of
// variables the configuration declares sensitive.
func newRedactor(plan map[string]any) *redactor {
	s := sensitives{strs: map[string]bool{}, numbers: map[string]bool{}}
	for _, key := range []string{"resource_changes", "resource_drift"} {
		for _, rc := range asList(plan[key]) {
			s.change(asObject(rc)["change"])
		}
	}
	for _, oc := range asObject(plan["output_changes"]) {
		s.change(oc)
	}
	s.values(asObject(plan["planned_values"]))
	s.values(asObject(asObject(plan["prior_state"])["values"]))
	s.variables(plan)

	r := &redactor{numbers: sortedKeys(s.numbers)}
	if strs := sortedKeys(s.strs); len(strs) > 0 {
		// Longest first: a value that contains another is replaced whole.
		slices.SortStableFunc(strs, func(a, b string) int { return len(b) - len(a) })
		pairs := make([]string, 0, 2*len(strs))
		for _, v := range strs {
			pairs = append(pairs, v, sensitiveMark)
		}
		r.strs = strings.NewReplacer(pairs...)
	}
	return r
}

// text replaces every sensitive value in s.
func (r *redactor) text(s string) string {
	if r.strs != nil {
		s = r.strs.Replace(s)
	}
	for _, n := range r.numbers {
		s = replaceNumber(s, n)
	}
	return s
}

// value redacts a value shown in an error message.
func (r *redactor) value(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	if red := r.text(string(b)); red != string(b) {
		return red
	}
	return v
}

// replaceNumber replaces the renderings of the number n in s that are not
// part of a longer number: a sensitive 42 is hidden in "port 42", not in
// "aws_instance.web[142]" or "1.42".
func replaceNumber(s, n string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, n)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + len(n)
		if partOfNumber(s, i, j) {
			b.WriteString(s[:j])
		} else {
			b.WriteString(s[:i])
			b.WriteString(sensitiveMark)
		}
		s = s[j:]
	}
}

func partOfNumber(s string, i, j int) bool {
	digit := func(k int) bool { return k >= 0 && k < len(s) && s[k] >= '0' && s[k] <= '9' }
	return digit(i-1) || (i >= 1 && s[i-1] == '.' && digit(i-2)) ||
		digit(j) || (j < len(s) && s[j] == '.' && digit(j+1))
}

// sensitives collects sensitive values as a message could render them.
type sensitives struct {
	strs, numbers map[string]bool
}

// change collects a change's before and after values that its
// before_sensitive and after_sensitive mark.
func (s *sensitives) change(c any) {
	obj := asObject(c)
	s.marked(obj["before"], obj["before_sensitive"])
	s.marked(obj["after"], obj["after_sensitive"])
}

// marked collects the leaves of v that marks says are sensitive: true (all
// of v), or an object or array of marks mirroring v.
func (s *sensitives) marked(v, marks any) {
	switch m := marks.(type) {
	case bool:
		if m {
			s.all(v)
		}
	case map[string]any:
		obj := asObject(v)
		for k, mk := range m {
			s.marked(obj[k], mk)
		}
	case []any:
		list := asList(v)
		for i, mk := range m {
			if i < len(list) {
				s.marked(list[i], mk)
			}
		}
	}
}

// values collects a state or planned values document's sensitive outputs
// and resource values, in every module.
func (s *sensitives) values(doc map[string]any) {
	for _, out := range asObject(doc["outputs"]) {
		o := asObject(out)
		if o["sensitive"] == true {
			s.all(o["value"])
		}
	}
	s.module(asObject(doc["root_module"]))
}

func (s *sensitives) module(m map[string]any) {
	for _, r := range asList(m["resources"]) {
		res := asObject(r)
		s.marked(res["values"], res["sensitive_values"])
	}
	for _, child := range asList(m["child_modules"]) {
		s.module(asObject(child))
	}
}

// variables collects the values of the root module's variables the
// configuration declares sensitive (the plan's variables do not say).
func (s *sensitives) variables(plan map[string]any) {
	declared := asObject(asObject(asObject(plan["configuration"])["root_module"])["variables"])
	values := asObject(plan["variables"])
	for name, decl := range declared {
		if asObject(decl)["sensitive"] == true {
			s.all(asObject(values[name])["value"])
		}
	}
}

// all collects every string and number in v.
func (s *sensitives) all(v any) {
	switch x := v.(type) {
	case string:
		s.str(x)
	case json.Number:
		s.number(x)
	case map[string]any:
		for _, e := range x {
			s.all(e)
		}
	case []any:
		for _, e := range x {
			s.all(e)
		}
	}
}

func (s *sensitives) str(v string) {
	if len(v) < minSensitiveLen {
		return
	}
	s.strs[v] = true
	// As sprintf("%v") shows it inside an array or object: JSON-escaped.
	if b, err := json.Marshal(v); err == nil {
		s.strs[string(b[1:len(b)-1])] = true
	}
}

// number collects the renderings a message could show of n.
func (s *sensitives) number(n json.Number) {
	s.numbers[n.String()] = true
	f, err := n.Float64()
	if err != nil {
		return
	}
	s.numbers[strconv.FormatFloat(f, 'f', -1, 64)] = true
	s.numbers[strconv.FormatFloat(f, 'g', -1, 64)] = true
}

func asObject(v any) map[string]any { m, _ := v.(map[string]any); return m }
func asList(v any) []any            { l, _ := v.([]any); return l }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
