package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// policies builds a config whose only workspace lists the given policies.
func policies(paths ...string) string {
	return ws("    policies: [" + strings.Join(paths, ", ") + "]\n")
}

func TestPolicies(t *testing.T) {
	const (
		denyDeletes = "testdata/policies/deny-deletes.rego"
		warnLarge   = "testdata/policies/warn-large.rego"
	)

	t.Run("Parse reads them relative to the current directory", func(t *testing.T) {
		c := mustParse(t, policies(denyDeletes, warnLarge))
		w := c.Workspaces[0]
		want := []Policy{
			{Name: denyDeletes, Path: denyDeletes, Source: readFile(t, denyDeletes)},
			{Name: warnLarge, Path: warnLarge, Source: readFile(t, warnLarge)},
		}
		if !reflect.DeepEqual(w.Policies, want) {
			t.Errorf("got policies %+v; want %+v", w.Policies, want)
		}
		if got, want := w.Workspace.Policies, []string{denyDeletes, warnLarge}; !reflect.DeepEqual(got, want) {
			t.Errorf("got domain policies %q; want %q", got, want)
		}
	})

	t.Run("none", func(t *testing.T) {
		for _, src := range []string{ws(""), policies()} {
			w := mustParse(t, src).Workspaces[0]
			if w.Policies != nil || w.Workspace.Policies != nil {
				t.Errorf("got policies %+v and %q; want none", w.Policies, w.Workspace.Policies)
			}
		}
	})

	t.Run("Load resolves them against the config file's directory", func(t *testing.T) {
		dir := t.TempDir()
		src := readFile(t, denyDeletes)
		writeFile(t, filepath.Join(dir, "policies", "deny.rego"), src)
		writeFile(t, filepath.Join(dir, "gatehouse.yaml"), policies("policies/deny.rego"))
		// Started from elsewhere: the current directory does not matter.
		c, err := Load(filepath.Join(dir, "gatehouse.yaml"))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		want := []Policy{{Name: "policies/deny.rego", Path: filepath.Join(dir, "policies", "deny.rego"), Source: src}}
		if got := c.Workspaces[0].Policies; !reflect.DeepEqual(got, want) {
			t.Errorf("got policies %+v; want %+v", got, want)
		}
		if got, want := c.Workspaces[0].Workspace.Policies, []string{"policies/deny.rego"}; !reflect.DeepEqual(got, want) {
			t.Errorf("got domain policies %q; want %q", got, want)
		}

		// An absolute path is kept.
		abs, err := filepath.Abs(denyDeletes)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "gatehouse.yaml"), policies(abs))
		if c, err = Load(filepath.Join(dir, "gatehouse.yaml")); err != nil {
			t.Fatalf("Load: %v", err)
		}
		if got := c.Workspaces[0].Policies[0]; got.Name != abs || got.Path != abs {
			t.Errorf("got policy name %q, path %q; want both %q", got.Name, got.Path, abs)
		}

		// A path that resolves only against the current directory does not.
		writeFile(t, filepath.Join(dir, "gatehouse.yaml"), policies(denyDeletes))
		_, err = Load(filepath.Join(dir, "gatehouse.yaml"))
		if err == nil || !strings.Contains(err.Error(), "workspaces[0].policies[0]: cannot read the policy: open "+filepath.Join(dir, denyDeletes)) {
			t.Errorf("Load: got error %v; want policies[0] not found in %s", err, dir)
		}
	})

	tests := []struct {
		name  string
		paths []string
		want  []Problem
	}{
		{"missing file", []string{"testdata/policies/missing.rego"},
			[]Problem{{"workspaces[0].policies[0]", "cannot read the policy: open testdata/policies/missing.rego: no such file or directory"}}},
		{"a directory", []string{"testdata/policies"},
			[]Problem{{"workspaces[0].policies[0]", "cannot read the policy"}}},
		{"empty path", []string{denyDeletes, `""`}, []Problem{{"workspaces[0].policies[1]", "must not be empty"}}},
		{"syntax error", []string{"testdata/policies/syntax-error.rego"},
			[]Problem{{"workspaces[0].policies[0]", "not valid Rego v1: line 4: rego_parse_error: non-terminated string"}}},
		{"Rego v0", []string{"testdata/policies/rego-v0.rego"},
			[]Problem{{"workspaces[0].policies[0]", "not valid Rego v1: line 4: rego_parse_error: `if` keyword is required before rule body"}}},
		{"empty file", []string{"testdata/policies/empty.rego"},
			[]Problem{{"workspaces[0].policies[0]", "not valid Rego v1: rego_parse_error: empty module"}}},
		{"wrong package", []string{denyDeletes, "testdata/policies/wrong-package.rego"},
			[]Problem{{"workspaces[0].policies[1]", "declares package terraform.policies: Gatehouse reads data.gatehouse, so want package gatehouse"}}},
		{"deny not a set", []string{"testdata/policies/not-a-set.rego"},
			[]Problem{{"workspaces[0].policies[0]", `line 3: deny must be a set: write "deny contains ... if { ... }"`}}},
		{"does not compile", []string{warnLarge, "testdata/policies/unsafe.rego"},
			[]Problem{{"workspaces[0].policies[1]", "does not compile: line 5: rego_unsafe_var_error: var x is unsafe"}}},
		{"duplicate", []string{denyDeletes, warnLarge, denyDeletes},
			[]Problem{{"workspaces[0].policies[2]", `duplicate policy "testdata/policies/deny-deletes.rego" (also workspaces[0].policies[0])`}}},
		{"duplicate spelled otherwise", []string{denyDeletes, "./testdata//policies/deny-deletes.rego"},
			[]Problem{{"workspaces[0].policies[1]", `duplicate policy "./testdata//policies/deny-deletes.rego" (also workspaces[0].policies[0])`}}},
		{"every problem", []string{"testdata/policies/missing.rego", "testdata/policies/wrong-package.rego", "testdata/policies/unsafe.rego"},
			[]Problem{
				{"workspaces[0].policies[0]", "cannot read the policy"},
				{"workspaces[0].policies[1]", "declares package terraform.policies"},
				{"workspaces[0].policies[2]", "does not compile"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, problemsOf(t, policies(tt.paths...)), tt.want)
		})
	}

	// Each file is compiled on its own, as it is evaluated: two files that
	// both define a default compile, and a file calling another's function
	// does not.
	t.Run("each file compiles on its own", func(t *testing.T) {
		mustParse(t, policies("testdata/policies/default-a.rego", "testdata/policies/default-b.rego"))

		dir := t.TempDir()
		helper := filepath.Join(dir, "helper.rego")
		user := filepath.Join(dir, "user.rego")
		writeFile(t, helper, "package gatehouse\n\nbig(plan) if count(plan.resource_changes) > 10\n\nwarn contains \"big\" if big(input)\n")
		writeFile(t, user, "package gatehouse\n\ndeny contains \"too big\" if big(input)\n")
		checkProblems(t, problemsOf(t, policies(helper, user)),
			[]Problem{{"workspaces[0].policies[1]", "does not compile: line 3: rego_type_error: undefined function big"}})
	})

	t.Run("not a list", func(t *testing.T) {
		checkProblems(t, problemsOf(t, ws("    policies: "+denyDeletes+"\n")),
			[]Problem{{"workspaces[0].policies", "expected a list"}})
	})
}

func TestVersionCoversPolicySources(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policies", "p.rego")
	config := filepath.Join(dir, "gatehouse.yaml")
	writeFile(t, config, policies("policies/p.rego"))
	load := func() string {
		t.Helper()
		c, err := Load(config)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return c.Version
	}

	writeFile(t, policy, readFile(t, "testdata/policies/deny-deletes.rego"))
	base := load()
	if again := load(); again != base {
		t.Errorf("got version %s loading the same files again; want %s", again, base)
	}
	// The version covers the source, not where it was read from: Parse
	// reading the same file relative to the current directory agrees.
	t.Chdir(dir)
	if got := mustParse(t, policies("policies/p.rego")).Version; got != base {
		t.Errorf("got version %s with Parse; want %s, as with Load", got, base)
	}

	writeFile(t, policy, strings.Replace(readFile(t, policy), "would be deleted", "would be destroyed", 1))
	if edited := load(); edited == base {
		t.Errorf("got unchanged version %s after editing the policy; want a different one", edited)
	}

	// The name is part of it too: the same source under another name.
	writeFile(t, filepath.Join(dir, "policies", "q.rego"), readFile(t, policy))
	writeFile(t, config, policies("policies/q.rego"))
	renamed := load()
	writeFile(t, config, policies("policies/p.rego"))
	if renamed == load() {
		t.Errorf("got the same version %s for a policy under another name; want a different one", renamed)
	}

	// Without policies, the version is what it was before policies existed:
	// nothing of them is written.
	data, err := canonicalJSON(mustParse(t, ws("")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "polic") {
		t.Errorf("canonical form %s of a config without policies mentions them", data)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Gatehouse reads the rules conftest reads, by the same names, and its own
// require_approval; each must be a set.
func TestPolicyConftestRules(t *testing.T) {
	for name, want := range map[string]PolicyRule{
		"deny": PolicyDeny, "deny_public_bucket": PolicyDeny, "deny_a_b1": PolicyDeny,
		"violation": PolicyDeny, "violation_tags": PolicyDeny,
		"warn": PolicyWarn, "warn_large": PolicyWarn,
		"require_approval": PolicyRequire,
		"denylist":         PolicyHelper, "deny_": PolicyHelper, "deny__x": PolicyHelper, "warning": PolicyHelper,
		"violations": PolicyHelper, "require_approval_x": PolicyHelper, "allow": PolicyHelper, "authz": PolicyHelper,
	} {
		if got := PolicyRuleOf(name); got != want {
			t.Errorf("PolicyRuleOf(%q) = %d; want %d", name, got, want)
		}
	}

	dir := t.TempDir()
	valid := filepath.Join(dir, "conftest.rego")
	writeFile(t, valid, `package gatehouse

denylist := ["google_iam"]

deny_iam contains {"msg": msg, "details": {"type": rc.type}} if {
	some rc in input.resource_changes
	some prefix in denylist
	startswith(rc.type, prefix)
	msg := sprintf("%s is managed elsewhere", [rc.address])
}

violation contains "never" if false

warn_large contains "large plan" if count(input.resource_changes) > 10
`)
	mustParse(t, policies(valid))

	for _, tt := range []struct{ name, rule, line string }{
		{"deny_x complete", `deny_public := "always"`, "line 3: deny_public must be a set"},
		{"violation boolean", `violation if true`, "line 3: violation must be a set"},
		{"warn_x function", `warn_big(x) := x`, "line 3: warn_big must be a set"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := filepath.Join(dir, "bad.rego")
			writeFile(t, bad, "package gatehouse\n\n"+tt.rule+"\n")
			checkProblems(t, problemsOf(t, policies(bad)), []Problem{{"workspaces[0].policies[0]", tt.line}})
		})
	}
}
