package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTemporal(t *testing.T) {
	getenv := func(name string) string {
		return map[string]string{"GATEHOUSE_TEST_TEMPORAL_KEY": "k-123"}[name]
	}
	dir := t.TempDir()
	src := "temporal:\n  api_key_env: GATEHOUSE_TEST_TEMPORAL_KEY\n  tls: {cert_file: tls/client.pem, key_file: /abs/client.key, ca_file: ca.pem, server_name: ns.acct.tmprl.cloud}\n"
	c, err := parse([]byte(src+ws("")), dir, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := TemporalTLS{
		CertFile: filepath.Join(dir, "tls/client.pem"), KeyFile: "/abs/client.key",
		CAFile: filepath.Join(dir, "ca.pem"), ServerName: "ns.acct.tmprl.cloud",
	}
	if c.Temporal == nil || c.Temporal.TLS == nil || *c.Temporal.TLS != want || c.Temporal.APIKey != "k-123" {
		t.Errorf("temporal %+v; want tls %+v and the key from the environment", c.Temporal, want)
	}
	// Connection settings are not policy: the version stays.
	if plain := mustParse(t, ws("")); plain.Version != c.Version {
		t.Errorf("version %s with a temporal block; want %s, as without", c.Version, plain.Version)
	}
	if c := mustParse(t, ws("")); c.Temporal != nil {
		t.Errorf("no temporal block gives %+v; want nil", c.Temporal)
	}
	// The key's variable is a secret an apply command may not be given.
	problems := problemsOf(t, "temporal: {api_key_env: GATEHOUSE_TEST_TEMPORAL_KEY}\n"+
		ws("    apply: {command: [x], env_from: [GATEHOUSE_TEST_TEMPORAL_KEY]}\n"))
	if len(problems) == 0 {
		t.Error("env_from may name the Temporal API key's variable")
	}
}

func TestParseTemporalRefusesWhatCannotConnect(t *testing.T) {
	for src, want := range map[string]string{
		"temporal: {tls: {cert_file: c.pem}}\n":                "temporal.tls.key_file",
		"temporal: {tls: {key_file: c.key}}\n":                 "temporal.tls.cert_file",
		"temporal: {tls: {disabled: true, ca_file: ca.pem}}\n": "temporal.tls.disabled",
		"temporal: {api_key: plain}\n":                         "temporal.api_key",
		"temporal: {api_key_env: GATEHOUSE_TEST_EMPTY}\n":      "temporal.api_key_env",
		"temporal: {api_key_env: 'not a name'}\n":              "temporal.api_key_env",
		"temporal: {tls: {cert: c.pem}}\n":                     "temporal.tls.cert",
		"temporal: {tls: {disabled: maybe}}\n":                 "temporal.tls.disabled",
		"temporal: {address: x:7233}\n":                        "temporal.address",
		"temporal: [tls]\n":                                    "temporal",
	} {
		wantProblemAt(t, src, want)
	}
}

// LoadTemporal reads the block alone: setup does not need the rest of the
// config to be valid here (its secrets set), only the block.
func TestLoadTemporalReadsOnlyTheBlock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	src := "temporal:\n  tls: {ca_file: ca.pem}\nslack: {bot_token_env: GATEHOUSE_TEST_UNSET}\nworkspaces: []\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	tc, err := LoadTemporal(path)
	if err != nil {
		t.Fatal(err)
	}
	if tc == nil || tc.TLS == nil || tc.TLS.CAFile != filepath.Join(dir, "ca.pem") {
		t.Errorf("LoadTemporal = %+v; want the ca_file relative to the file", tc)
	}
	if err := os.WriteFile(path, []byte("temporal: {tls: {cert_file: c.pem}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var verr *ValidationError
	if _, err := LoadTemporal(path); !errors.As(err, &verr) || !strings.Contains(err.Error(), "temporal.tls.key_file") {
		t.Errorf("LoadTemporal of a cert without key: %v; want a problem at temporal.tls.key_file", err)
	}
	if err := os.WriteFile(path, []byte("users: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tc, err := LoadTemporal(path); tc != nil || err != nil {
		t.Errorf("LoadTemporal without a block = %+v, %v; want nil, nil", tc, err)
	}
}
