package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
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

// PolicyPackage is the package every policy declares. Gatehouse queries
// data.gatehouse.deny and data.gatehouse.warn (sets of messages) and
// data.gatehouse.require_approval (a set of approval requirements).
const PolicyPackage = "gatehouse"

// policyRules are the rules Gatehouse queries; each must be a set.
var policyRules = []string{"deny", "warn", "require_approval"}

// policies reads and checks the policy files a workspace lists at p, resolving
// relative paths against baseDir ("" for the current directory). Each must
// parse as Rego v1 and declare package gatehouse, and the workspace's
// policies must compile together, as they are evaluated.
func (v *validator) policies(p string, names []string, baseDir string) []Policy {
	var out []Policy
	modules := map[string]*ast.Module{}
	paths := map[string]string{} // module (policy name) → the problem path of its entry
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
		mod, err := ast.ParseModuleWithOpts(name, string(data), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			v.add(pp, "not valid Rego v1: %s", regoError(err))
			continue
		}
		if !v.policyModule(pp, mod) {
			continue
		}
		modules[name] = mod
		paths[name] = pp
		out = append(out, Policy{Name: name, Path: file, Source: string(data)})
	}
	if len(modules) == 0 {
		return out
	}
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	compiler.Compile(modules)
	// Report each policy's first error, in the workspace's order; errors
	// that name no policy at the list.
	byPath := map[string]ast.Errors{}
	for _, e := range compiler.Errors {
		pp := p
		if e.Location != nil {
			if q, ok := paths[e.Location.File]; ok {
				pp = q
			}
		}
		byPath[pp] = append(byPath[pp], e)
	}
	order := make([]string, 0, len(out)+1)
	for _, pol := range out {
		order = append(order, paths[pol.Name])
	}
	for _, pp := range append(order, p) {
		if errs := byPath[pp]; len(errs) > 0 {
			v.add(pp, "does not compile: %s", regoError(errs))
		}
	}
	return out
}

// policyModule checks that a parsed policy declares package gatehouse and
// defines the rules Gatehouse queries as sets.
func (v *validator) policyModule(pp string, mod *ast.Module) bool {
	if pkg := strings.TrimPrefix(mod.Package.Path.String(), "data."); pkg != PolicyPackage {
		v.add(pp, "declares package %s: Gatehouse queries data.%s.deny, .warn and .require_approval, so want package %s",
			pkg, PolicyPackage, PolicyPackage)
		return false
	}
	ok := true
	for _, r := range mod.Rules {
		ref := r.Head.Ref()
		name := ref[0].Value.String()
		if !slices.Contains(policyRules, name) {
			continue
		}
		if len(ref) != 1 || len(r.Head.Args) > 0 || r.Head.RuleKind() != ast.MultiValue {
			v.add(pp, "line %d: %s must be a set: write %q", r.Location.Row, name, name+" contains ... if { ... }")
			ok = false
		}
	}
	return ok
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
	msg := e.Code + ": " + e.Message
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
