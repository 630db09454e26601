package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Policy is a Rego policy a workspace's runs are checked against.
type Policy struct {
	// Name is the policy's path as the configuration writes it: what
	// approval.Workspace.Policies, runs and reasons call it.
	Name string
	// Path is the file it was read from. Load resolves a relative path
	// against the config file's directory and stores the absolute path;
	// Parse reads it relative to the current directory and keeps it as
	// written.
	Path string
	// Source is the file's contents as read when the configuration loaded:
	// evaluate this, not the file, so that a run is checked against the
	// policy its configuration's Version covers.
	Source string
}

// PolicyPackage is the package every policy declares: Gatehouse queries
// data.gatehouse of each policy file, on its own.
const PolicyPackage = "gatehouse"

// PolicyRule is what Gatehouse reads a rule of package gatehouse as.
type PolicyRule int

const (
	// PolicyHelper is any rule Gatehouse does not read: the policy's own
	// business.
	PolicyHelper PolicyRule = iota
	// PolicyDeny rules (deny, deny_*, violation, violation_*) are sets of
	// messages that fail the run.
	PolicyDeny
	// PolicyWarn rules (warn, warn_*) are sets of messages shown with it.
	PolicyWarn
	// PolicyRequire (require_approval) is a set of approvals it needs.
	PolicyRequire
)

// The names conftest reads, exactly as it matches them, so that a conftest
// policy means in Gatehouse what it means there.
var (
	denyName = regexp.MustCompile(`^(deny|violation)(_[a-zA-Z0-9]+)*$`)
	warnName = regexp.MustCompile(`^warn(_[a-zA-Z0-9]+)*$`)
)

// requireName is Gatehouse's own rule: conftest has no such thing.
const requireName = "require_approval"

// PolicyRuleOf says how Gatehouse reads the rule called name.
func PolicyRuleOf(name string) PolicyRule {
	switch {
	case name == requireName:
		return PolicyRequire
	case denyName.MatchString(name):
		return PolicyDeny
	case warnName.MatchString(name):
		return PolicyWarn
	}
	return PolicyHelper
}

// PreparePolicy parses and compiles one policy on its own, and prepares the
// query of its package, exactly as the worker evaluates it: config
// validation and the evaluator share it so that they cannot disagree on what
// a valid policy is. The policy must parse as Rego v1, declare package
// gatehouse and define every rule Gatehouse reads as a set. Built-in errors
// are strict (a type error fails instead of being undefined) and print()
// statements are kept: pass rego.EvalPrintHook when evaluating.
//
// The error says what is wrong, located by line, without naming the policy;
// callers prefix it with where the policy is listed.
func PreparePolicy(ctx context.Context, p Policy) (rego.PreparedEvalQuery, error) {
	mod, err := ast.ParseModuleWithOpts(p.Name, p.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return rego.PreparedEvalQuery{}, fmt.Errorf("not valid Rego v1: %s", regoError(err))
	}
	if mod == nil { // only comments
		return rego.PreparedEvalQuery{}, errors.New("not valid Rego v1: rego_parse_error: empty module")
	}
	if err := checkPolicyModule(mod); err != nil {
		return rego.PreparedEvalQuery{}, err
	}
	q, err := rego.New(
		rego.Query("data."+PolicyPackage),
		rego.ParsedModule(mod),
		rego.SetRegoVersion(ast.RegoV1),
		rego.StrictBuiltinErrors(true),
		rego.EnablePrintStatements(true),
	).PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, fmt.Errorf("does not compile: %s", regoError(err))
	}
	return q, nil
}

// checkPolicyModule checks that a parsed policy declares package gatehouse
// and defines the rules Gatehouse reads as sets: a complete `deny := ...`
// would otherwise only fail at run time, in production.
func checkPolicyModule(mod *ast.Module) error {
	if pkg := strings.TrimPrefix(mod.Package.Path.String(), "data."); pkg != PolicyPackage {
		return fmt.Errorf("declares package %s: Gatehouse reads data.%s, so want package %s", pkg, PolicyPackage, PolicyPackage)
	}
	for _, r := range mod.Rules {
		ref := r.Head.Ref()
		name := ref[0].Value.String()
		if PolicyRuleOf(name) == PolicyHelper {
			continue
		}
		if len(ref) != 1 || len(r.Head.Args) > 0 || r.Head.RuleKind() != ast.MultiValue {
			return fmt.Errorf("line %d: %s must be a set: write %q", r.Location.Row, name, name+" contains ... if { ... }")
		}
	}
	return nil
}

// policies reads and checks the policy files a workspace lists at p, resolving
// relative paths against baseDir ("" for the current directory). Each must
// prepare on its own (see PreparePolicy), as it is evaluated.
func (v *validator) policies(p string, names []string, baseDir string) []Policy {
	var out []Policy
	files := map[string]string{} // cleaned file path → the problem path of its entry
	for j, name := range names {
		pp := indexPath(p, j)
		if strings.TrimSpace(name) == "" {
			v.add(pp, "must not be empty: give the path of a .rego file")
			continue
		}
		file := name
		if baseDir != "" && !filepath.IsAbs(file) {
			file = filepath.Join(baseDir, file)
		}
		if other, dup := files[filepath.Clean(file)]; dup {
			v.add(pp, "duplicate policy %q (also %s)", name, other)
			continue
		}
		files[filepath.Clean(file)] = pp
		data, err := os.ReadFile(file)
		if err != nil {
			v.add(pp, "cannot read the policy: %v", err)
			continue
		}
		pol := Policy{Name: name, Path: file, Source: string(data)}
		// Loading has no context to honour; compiling one file is quick.
		if _, err := PreparePolicy(context.Background(), pol); err != nil {
			v.add(pp, "%v", err)
			continue
		}
		out = append(out, pol)
	}
	return out
}

// regoError condenses OPA's error to its first message, as "line N: code:
// message", saying how many more there are.
func regoError(err error) string {
	var errs ast.Errors
	var one *ast.Error
	switch {
	case errors.As(err, &errs) && len(errs) > 0:
	case errors.As(err, &one):
		errs = ast.Errors{one}
	default:
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return msg
	}
	e := errs[0]
	msg, _, _ := strings.Cut(e.Code+": "+e.Message, "\n")
	if e.Location != nil && e.Location.Row > 0 {
		msg = fmt.Sprintf("line %d: %s", e.Location.Row, msg)
	}
	if n := len(errs) - 1; n == 1 {
		msg += " (and 1 more error)"
	} else if n > 1 {
		msg += fmt.Sprintf(" (and %d more errors)", n)
	}
	return msg
}
