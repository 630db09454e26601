package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// FuzzParse: a configuration is operator input, but it arrives by hand, by
// pull request and by templating, so the parser must treat it as hostile:
// never panic, refuse with a *ValidationError that says what is wrong, and
// when it accepts, give the document a Version (a SHA-256) that the same
// bytes always get again, since runs record it as the policy they were
// evaluated against.
//
// It fuzzes parse with the tests' fixed environment (testGetenv) rather
// than Parse, so that a secret_env the fuzzer writes resolves the same on
// every machine; only the bytes vary. Policy paths are read relative to
// this directory, as Parse reads them relative to the current one.
func FuzzParse(f *testing.F) {
	const hangAfter = 5 * time.Second
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed configs in testdata (%v)", err)
	}
	files = append(files, "../examples/gatehouse.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		// The example names its policies relative to itself: point them
		// at a real one from here, so the seed reaches a valid config.
		data = bytes.ReplaceAll(data, []byte("policies/production.rego"), []byte("../examples/policies/production.rego"))
		f.Add(data)
	}
	for _, s := range []string{
		// Policies (which full.yaml leaves out) through the policy tests'
		// own builder, one that compiles and one that does not.
		policies("testdata/policies/deny-deletes.rego", "testdata/policies/warn-large.rego"),
		policies("testdata/policies/syntax-error.rego"),
		"users: []\n---\nusers: []\n",
		"[1, 2]\n",
		"a: &a [*a]\n",
		"users: {id: 1}\n",
		"",
	} {
		f.Add([]byte(s))
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		// A policy path names a file to read: one under /dev or /proc
		// could block or never end. An operator who writes that gets
		// what they asked for; a fuzzer that stumbles on it would only
		// hang the run.
		for _, dir := range []string{"/dev/", "/proc/", "/sys/"} {
			if bytes.Contains(data, []byte(dir)) {
				t.Skip("names a special file")
			}
		}
		// The fuzzer has no timeout per input and reports a hang as
		// nothing at all: crash instead, so that it keeps the input.
		hang := time.AfterFunc(hangAfter, func() { panic(fmt.Sprintf("parse took over %v", hangAfter)) })
		c, err := parse(data, "", testGetenv)
		hang.Stop()
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("refused with %T, not a *ValidationError: %v", err, err)
			}
			if len(ve.Problems) == 0 || ve.Error() == "" {
				t.Fatalf("a ValidationError that names no problem: %#v", ve)
			}
			if c != nil {
				t.Fatal("an error comes with a config")
			}
			return
		}
		if !hex64.MatchString(c.Version) {
			t.Fatalf("Version %q is not a hex SHA-256", c.Version)
		}
		again, err := parse(data, "", testGetenv)
		if err != nil {
			t.Fatalf("accepted once, then refused: %v", err)
		}
		if again.Version != c.Version {
			t.Fatalf("Version %s, then %s", c.Version, again.Version)
		}
		// Version is documented to be of the canonical form, which must
		// itself be stable.
		if v, err := canonicalVersion(c); err != nil || v != c.Version {
			t.Fatalf("canonicalVersion: %s, %v; parse gave %s", v, err, c.Version)
		}
	})
}
