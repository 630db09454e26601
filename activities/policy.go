package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/print"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
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

// policyTimeout bounds one evaluation. An activity deadline sooner than
// that bounds it too, with a margin so the activity can still report the
// timeout as the policies' failure instead of timing out itself.
const policyTimeout = 10 * time.Second

// The rules of package gatehouse that Gatehouse reads; any other rule is the
// policies' own business.
const (
	ruleDeny    = "deny"
	ruleWarn    = "warn"
	ruleRequire = "require_approval"
)

// readRules are the rules Gatehouse reads, in the order it reads them.
var readRules = []string{ruleDeny, ruleWarn, ruleRequire}

// hiddenRule names the private copy, in the module of policy i, of that
// module's definitions of rule: what it alone contributes, so the result
// can say which policy asked for an approval or returned a bad value.
func hiddenRule(rule string, i int) string {
	return "__gatehouse_" + rule + "_" + strconv.Itoa(i)
}

// hiddenRulePattern finds hidden copies' names in OPA's messages, to show
// the rule's own name instead.
var hiddenRulePattern = regexp.MustCompile(`__gatehouse_(deny|warn|require_approval)_[0-9]+`)

// EvaluatePolicy evaluates the workspace's Rego policies (from the worker's
// config, never from workflow input) on the run's plan and cost estimate.
//
// All the workspace's modules are compiled together (each must be
// `package gatehouse`, Rego v1) and data.gatehouse is queried with this
// input:
//
//	{"plan": <plan JSON>, "cost": <Infracost JSON or null>,
//	 "run": {"id", "workspace", "environment", "requested_by", "message"},
//	 "workspace": {"name", "environment", "tags"}}
//
// Gatehouse reads three rules: deny and warn (sets of strings) and
// require_approval (a set of objects {name, approvers: {users, groups,
// roles}, min_approvals (default 1), stage}).
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
	planDoc, err := a.storedJSON(in.PlanSHA256)
	if err != nil {
		return approval.PolicyResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("load plan for policy evaluation: %v", err), "PlanUnavailable", nil)
	}
	var costDoc any
	if in.CostSHA256 != "" {
		if costDoc, err = a.storedJSON(in.CostSHA256); err != nil {
			return approval.PolicyResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("load cost estimate for policy evaluation: %v", err), "CostUnavailable", nil)
		}
	}
	tags := in.Tags
	if tags == nil {
		tags = []string{}
	}
	input := map[string]any{
		"plan": planDoc,
		"cost": costDoc,
		"run": map[string]any{
			"id":           in.RunID,
			"workspace":    in.Workspace,
			"environment":  in.Environment,
			"requested_by": in.RequestedBy,
			"message":      in.Message,
		},
		"workspace": map[string]any{
			"name":        in.Workspace,
			"environment": in.Environment,
			"tags":        tags,
		},
	}

	ev := &policyEval{logger: a.Logger.With(zap.String("run_id", in.RunID), zap.String("workspace", in.Workspace))}
	for _, p := range ws.Policies {
		ev.add(p.Name, p.Source)
	}
	res, err := ev.run(ctx, input)
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

// storedJSON reads a document from the store (which verifies its hash) and
// decodes it, keeping numbers exact.
func (a *Activities) storedJSON(sha string) (any, error) {
	data, err := a.Plans.Get(sha)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", sha, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("decode %s: data after the JSON document", sha)
	}
	return v, nil
}

// policyModule is one configured policy.
type policyModule struct {
	name     string
	filename string // unique: how OPA's errors locate it
	source   string
	module   *ast.Module
}

// policyEval evaluates one workspace's policies once.
type policyEval struct {
	logger  *zap.Logger
	modules []*policyModule
}

// add queues a policy: its source as the configuration loaded it (never the
// file as it is now, which the config's version does not cover).
func (e *policyEval) add(name, source string) {
	m := &policyModule{name: name, filename: name, source: source}
	if slices.ContainsFunc(e.modules, func(o *policyModule) bool { return o.filename == m.filename }) {
		m.filename = fmt.Sprintf("%s#%d", m.filename, len(e.modules)) // the same file twice
	}
	e.modules = append(e.modules, m)
}

func (e *policyEval) names() []string {
	out := make([]string, len(e.modules))
	for i, m := range e.modules {
		out[i] = m.name
	}
	return out
}

// run evaluates the queued policies. The error is for the activity's own
// cancellation only; everything the policies got wrong is in the result.
func (e *policyEval) run(ctx context.Context, input map[string]any) (approval.PolicyResult, error) {
	res := approval.PolicyResult{Policies: e.names()}
	if len(e.modules) == 0 {
		return res, nil
	}
	opts := []func(*rego.Rego){
		rego.Query("data." + config.PolicyPackage),
		rego.Input(input),
		rego.SetRegoVersion(ast.RegoV1),
		rego.StrictBuiltinErrors(true),
		rego.EnablePrintStatements(true),
		rego.PrintHook(printHook{e}),
	}
	for _, m := range e.modules {
		if err := e.parse(m); err != "" {
			res.Error = err
			return res, nil
		}
		opts = append(opts, rego.ParsedModule(m.module))
	}

	limit := policyTimeout
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); left-left/10 < limit {
			limit = left - left/10
		}
	}
	evalCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	rs, err := rego.New(opts...).Eval(evalCtx)
	if err != nil {
		if ctx.Err() != nil {
			return approval.PolicyResult{}, fmt.Errorf("evaluate policies: %w", ctx.Err())
		}
		if evalCtx.Err() != nil {
			res.Error = fmt.Sprintf("policies %s: evaluation did not finish within %v", quoteAll(e.names()), limit.Round(time.Millisecond))
			return res, nil
		}
		res.Error = e.describe(err)
		return res, nil
	}
	doc := map[string]any{}
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		if d, ok := rs[0].Expressions[0].Value.(map[string]any); ok {
			doc = d
		}
	}
	if err := e.read(doc, &res); err != nil {
		res.Denials, res.Warnings, res.Requirements = nil, nil, nil
		res.Error = err.Error()
	}
	return res, nil
}

// parse parses a module, checks its package and adds the hidden copies of
// its deny, warn and require_approval rules. It returns what is wrong, or
// "".
func (e *policyEval) parse(m *policyModule) string {
	mod, err := ast.ParseModuleWithOpts(m.filename, m.source, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return e.describe(err)
	}
	if mod == nil {
		return fmt.Sprintf("policy %q: empty module", m.name)
	}
	if want := (ast.Ref{ast.DefaultRootDocument, ast.StringTerm(config.PolicyPackage)}); !mod.Package.Path.Equal(want) {
		return fmt.Sprintf("policy %q: declares package %s: want package %s",
			m.name, strings.TrimPrefix(mod.Package.Path.String(), "data."), config.PolicyPackage)
	}
	i := slices.Index(e.modules, m)
	var copies []*ast.Rule
	for _, r := range mod.Rules {
		name := ruleName(r)
		if !slices.Contains(readRules, name) {
			continue
		}
		hidden := ast.Var(hiddenRule(name, i))
		c := r.Copy()
		for x := c; x != nil; x = x.Else {
			ref := x.Head.Ref().Copy()
			ref[0] = ast.VarTerm(string(hidden))
			x.Head.Name = hidden
			x.Head.SetRef(ref)
		}
		// The copy must not print what the rule prints a second time.
		ast.WalkExprs(c, func(x *ast.Expr) bool {
			if x.IsCall() && x.Operator().Equal(ast.Print.Ref()) {
				t := ast.NewExpr(ast.BooleanTerm(true))
				t.Location, t.Index = x.Location, x.Index
				*x = *t
			}
			return false
		})
		copies = append(copies, c)
	}
	mod.Rules = append(mod.Rules, copies...)
	m.module = mod
	return ""
}

// ruleName is the first name of a rule's head: "deny" for deny, deny[x] or
// deny.a.b.
func ruleName(r *ast.Rule) string {
	ref := r.Head.Ref()
	if len(ref) == 0 {
		return ""
	}
	if v, ok := ref[0].Value.(ast.Var); ok {
		return string(v)
	}
	return ""
}

// definers lists the policies that define a rule.
func (e *policyEval) definers(rule string) []string {
	var out []string
	for _, m := range e.modules {
		if m.module != nil && slices.ContainsFunc(m.module.Rules, func(r *ast.Rule) bool { return ruleName(r) == rule }) {
			out = append(out, m.name)
		}
	}
	return out
}

// describe renders OPA's (first) error as "policy <name>: line <n>: <code>:
// <message's first line>", naming the policy the error is located in, or
// all of them when OPA gives no location.
func (e *policyEval) describe(err error) string {
	var (
		loc   *ast.Location
		msg   string
		aErrs ast.Errors
		aErr  *ast.Error
		tErr  *topdown.Error
	)
	switch {
	case errors.As(err, &aErrs) && len(aErrs) > 0:
		sorted := slices.Clone(aErrs)
		sorted.Sort()
		loc, msg = sorted[0].Location, sorted[0].Code+": "+sorted[0].Message
	case errors.As(err, &aErr):
		loc, msg = aErr.Location, aErr.Code+": "+aErr.Message
	case errors.As(err, &tErr):
		loc, msg = tErr.Location, tErr.Code+": "+tErr.Message
	default:
		msg = err.Error()
	}
	msg, _, _ = strings.Cut(msg, "\n")
	msg = hiddenRulePattern.ReplaceAllString(msg, "$1")
	m := e.at(loc)
	if m == nil {
		return fmt.Sprintf("policies %s: %s", quoteAll(e.names()), msg)
	}
	if loc.Row > 0 {
		msg = fmt.Sprintf("line %d: %s", loc.Row, msg)
	}
	return fmt.Sprintf("policy %q: %s", m.name, msg)
}

// at returns the policy a location is in, or nil.
func (e *policyEval) at(loc *ast.Location) *policyModule {
	if loc == nil {
		return nil
	}
	for _, m := range e.modules {
		if m.filename == loc.File {
			return m
		}
	}
	return nil
}

// policyError is a policy returning something Gatehouse cannot use.
type policyError struct {
	policies []string
	msg      string
}

func (p *policyError) Error() string {
	if len(p.policies) == 1 {
		return fmt.Sprintf("policy %q: %s", p.policies[0], p.msg)
	}
	return fmt.Sprintf("policies %s: %s", quoteAll(p.policies), p.msg)
}

// read fills the result from data.gatehouse, checking every type.
func (e *policyEval) read(doc map[string]any, res *approval.PolicyResult) error {
	var err error
	if res.Denials, err = e.strings(doc, ruleDeny); err != nil {
		return err
	}
	if res.Warnings, err = e.strings(doc, ruleWarn); err != nil {
		return err
	}
	v, ok := doc[ruleRequire]
	if !ok {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		return &policyError{e.origin(doc, ruleRequire, v), fmt.Sprintf("%s: expected a set of objects, found %s", ruleRequire, describeValue(v))}
	}
	for i, item := range list {
		who := e.origin(doc, ruleRequire, item)
		req, err := parseRequirement(item)
		if err != nil {
			where := fmt.Sprintf("%s[%d]", ruleRequire, i)
			if obj, ok := item.(map[string]any); ok {
				if name, ok := obj["name"].(string); ok && name != "" {
					where += " (" + name + ")"
				}
			}
			return &policyError{who, where + ": " + err.Error()}
		}
		if len(who) == 1 {
			req.Policy = who[0]
		}
		res.Requirements = append(res.Requirements, req)
	}
	slices.SortStableFunc(res.Requirements, func(a, b approval.PolicyRequirement) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Policy, b.Policy)
	})
	return nil
}

// origin names the policy that contributed v to rule (an element of its
// set, or its whole value), from the hidden copies: the first in the
// workspace's order when several did. Failing that, it names every policy
// defining the rule.
func (e *policyEval) origin(doc map[string]any, rule string, v any) []string {
	want := canonical(v)
	for i, m := range e.modules {
		hidden, ok := doc[hiddenRule(rule, i)]
		if !ok {
			continue
		}
		if canonical(hidden) == want {
			return []string{m.name}
		}
		if list, ok := hidden.([]any); ok && slices.ContainsFunc(list, func(x any) bool { return canonical(x) == want }) {
			return []string{m.name}
		}
	}
	return e.definers(rule)
}

func canonical(v any) string {
	b, _ := json.Marshal(v) // maps marshal with sorted keys
	return string(b)
}

// strings reads a set of strings, sorted; nil when the rule is undefined.
func (e *policyEval) strings(doc map[string]any, rule string) ([]string, error) {
	v, ok := doc[rule]
	if !ok {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, &policyError{e.origin(doc, rule, v), fmt.Sprintf("%s: expected a set of strings, found %s", rule, describeValue(v))}
	}
	var out []string
	for _, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, &policyError{e.origin(doc, rule, item), fmt.Sprintf("%s: expected a set of strings, found an element %s", rule, describeValue(item))}
		}
		out = append(out, s)
	}
	slices.Sort(out)
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
		a, ok := raw.(map[string]any)
		if !ok {
			return req, fmt.Errorf("approvers: expected an object, found %s", describeValue(raw))
		}
		if err := onlyKeys(a, "approvers.", "users", "groups", "roles"); err != nil {
			return req, err
		}
		users, err := stringList(a, "users")
		if err != nil {
			return req, err
		}
		groups, err := stringList(a, "groups")
		if err != nil {
			return req, err
		}
		roles, err := stringList(a, "roles")
		if err != nil {
			return req, err
		}
		for _, u := range users {
			req.Approvers.Users = append(req.Approvers.Users, approval.UserID(u))
		}
		req.Approvers.Groups = groups
		for _, r := range roles {
			req.Approvers.Roles = append(req.Approvers.Roles, approval.Role(r))
		}
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
	text := canonical(v)
	if len(text) > 80 {
		text = text[:77] + "..."
	}
	return kind + " " + text
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// printHook sends the policies' print() output to the worker log.
type printHook struct{ e *policyEval }

func (h printHook) Print(ctx print.Context, msg string) error {
	fields := []zap.Field{zap.String("output", msg)}
	if m := h.e.at(ctx.Location); m != nil {
		fields = append(fields, zap.String("policy", m.name), zap.Int("line", ctx.Location.Row))
	}
	h.e.logger.Info("policy print", fields...)
	return nil
}
