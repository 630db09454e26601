package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// applyConfig is a config with one workspace applying with env_from, and a
// second whose webhook reads its secret from HOOK_SECRET.
func applyConfig(envFrom string) string {
	src := `workspaces:
  - name: hooked
    notify: {webhook: {url: "https://hooks.example.com/x", secret_env: HOOK_SECRET}}
  - name: ws
    apply:
      command: [./apply.sh]
`
	if envFrom != "" {
		src += "      env_from: " + envFrom + "\n"
	}
	return src
}

func applyGetenv(name string) string {
	if name == "HOOK_SECRET" {
		return "s3cret"
	}
	return ""
}

func TestApplyEnvFromIsKept(t *testing.T) {
	c, err := parse([]byte(applyConfig("[AWS_PROFILE, TF_IN_AUTOMATION]")), "", applyGetenv)
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := c.Workspace("ws")
	if got, want := ws.Apply.EnvFrom, []string{"AWS_PROFILE", "TF_IN_AUTOMATION"}; !slices.Equal(got, want) {
		t.Errorf("env_from %v; want %v", got, want)
	}
}

func TestApplyEnvFromRefusesSecrets(t *testing.T) {
	for _, tc := range []struct {
		envFrom, path, message string
	}{
		{"[GATEHOUSE_SIGNING_KEYS]", "workspaces[1].apply.env_from[0]", "signing keys"},
		{"[AWS_PROFILE, GATEHOUSE_TOKEN]", "workspaces[1].apply.env_from[1]", "starting with GATEHOUSE_"},
		{"[gatehouse_apply_log]", "workspaces[1].apply.env_from[0]", "starting with GATEHOUSE_"},
		{"[HOOK_SECRET]", "workspaces[1].apply.env_from[0]", "webhook's secret_env"},
		{"[AWS-PROFILE]", "workspaces[1].apply.env_from[0]", "not an environment variable name"},
		{"[AWS_PROFILE, AWS_PROFILE]", "workspaces[1].apply.env_from[1]", "duplicate variable"},
		{`[""]`, "workspaces[1].apply.env_from[0]", "must not be empty"},
	} {
		_, err := parse([]byte(applyConfig(tc.envFrom)), "", applyGetenv)
		var verr *ValidationError
		if !errors.As(err, &verr) {
			t.Errorf("env_from %s: %v; want a validation error", tc.envFrom, err)
			continue
		}
		if len(verr.Problems) != 1 || verr.Problems[0].Path != tc.path || !strings.Contains(verr.Problems[0].Message, tc.message) {
			t.Errorf("env_from %s: %v; want one problem at %s saying %q", tc.envFrom, verr.Problems, tc.path, tc.message)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("env_from %s: the message quotes the secret", tc.envFrom)
		}
	}
}

// TestApplyEnvFromInVersion: env_from changes what an apply can see, so it
// is part of the version; configs without it keep the version they had.
func TestApplyEnvFromInVersion(t *testing.T) {
	version := func(envFrom string) (string, string) {
		t.Helper()
		c, err := parse([]byte(applyConfig(envFrom)), "", applyGetenv)
		if err != nil {
			t.Fatal(err)
		}
		canon, err := canonicalJSON(c)
		if err != nil {
			t.Fatal(err)
		}
		return c.Version, string(canon)
	}
	none, canon := version("")
	empty, _ := version("[]")
	one, _ := version("[AWS_PROFILE]")
	if strings.Contains(canon, "env_from") {
		t.Errorf("canonical form without env_from mentions it: %s", canon)
	}
	if none != empty {
		t.Error("env_from: [] changed the version; want it to mean none")
	}
	if one == none {
		t.Error("env_from did not change the version")
	}
}
