package config

import (
	"fmt"
	"path/filepath"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Temporal is how the worker, the gateway, setup and the CLI verbs reach a
// Temporal cluster beyond its address and namespace (flags): TLS and an
// API key. It is connection detail, not policy, so it is not part of
// Version. Flags and the temporal CLI's environment variables override it
// field by field (package app).
type Temporal struct {
	// TLS is nil when the file has no tls block.
	TLS *TemporalTLS
	// APIKey is the Temporal Cloud API key, read from the variable APIKeyEnv
	// names; "" when none. Never written in the file.
	APIKey    string
	APIKeyEnv string
}

// TemporalTLS is the tls block. Relative paths are the config file's
// directory's. Files are read when a process dials, once: a renewed
// certificate takes a restart.
type TemporalTLS struct {
	// CertFile and KeyFile are the client certificate and its key for
	// mTLS: both or neither.
	CertFile, KeyFile string
	// CAFile holds the PEM CA certificates the server's certificate must
	// chain to; "" trusts the system's roots.
	CAFile string
	// ServerName is the name the server's certificate must carry; "" takes
	// the host of --temporal-addr.
	ServerName string
	// Disabled turns TLS off where an API key would turn it on (a local
	// proxy that terminates TLS).
	Disabled bool
}

type rawTemporal struct {
	TLS *rawTemporalTLS `yaml:"tls"`
	// The API key is a secret: only the name of its variable.
	APIKeyEnv string `yaml:"api_key_env"`
}

type rawTemporalTLS struct {
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
	Disabled   bool   `yaml:"disabled"`
}

// temporal validates the temporal block.
func (v *validator) temporal(rt *rawTemporal, baseDir string) *Temporal {
	if rt == nil {
		return nil
	}
	t := &Temporal{APIKeyEnv: rt.APIKeyEnv}
	if rt.APIKeyEnv != "" {
		t.APIKey, _ = v.secret("temporal", "api_key", "", rt.APIKeyEnv)
	}
	if rt.TLS == nil {
		return t
	}
	rel := func(p string) string {
		if p != "" && baseDir != "" && !filepath.IsAbs(p) {
			return filepath.Join(baseDir, p)
		}
		return p
	}
	t.TLS = &TemporalTLS{
		CertFile: rel(rt.TLS.CertFile), KeyFile: rel(rt.TLS.KeyFile), CAFile: rel(rt.TLS.CAFile),
		ServerName: rt.TLS.ServerName, Disabled: rt.TLS.Disabled,
	}
	switch {
	case rt.TLS.CertFile != "" && rt.TLS.KeyFile == "":
		v.add("temporal.tls.key_file", "required with cert_file: the client certificate's private key")
	case rt.TLS.KeyFile != "" && rt.TLS.CertFile == "":
		v.add("temporal.tls.cert_file", "required with key_file: the client certificate")
	}
	if rt.TLS.Disabled && (rt.TLS.CertFile != "" || rt.TLS.KeyFile != "" || rt.TLS.CAFile != "" || rt.TLS.ServerName != "") {
		v.add("temporal.tls.disabled", "disabled together with certificate settings: remove one or the other")
	}
	return t
}

// LoadTemporal reads only the temporal block of the config file at path,
// for the commands that talk to Temporal but run nothing else (setup, runs
// --stuck): they must not need the secrets of Slack or GitHub to start. It
// returns nil when the file has no temporal block; problems in the block
// come back as a *ValidationError like Load's.
func LoadTemporal(path string) (*Temporal, error) {
	return loadFile(path, parseTemporal)
}

func parseTemporal(data []byte, baseDir string, getenv func(string) string) (*Temporal, error) {
	v := &validator{getenv: getenv}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	var node *yaml.Node
	if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "temporal" {
				node = root.Content[i+1]
			}
		}
	}
	if node == nil {
		return nil, nil
	}
	checkShape(node, reflect.TypeFor[rawTemporal](), "temporal", v)
	if len(v.problems) > 0 {
		return nil, v.err()
	}
	var rt rawTemporal
	if err := node.Decode(&rt); err != nil {
		v.add("temporal", "%v", err)
		return nil, v.err()
	}
	t := v.temporal(&rt, baseDir)
	if len(v.problems) > 0 {
		return nil, v.err()
	}
	return t, nil
}
