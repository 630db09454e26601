package plan_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// hex64 is what every SHA-256 Gatehouse writes looks like; hex24 is a
// fingerprint (approval's, a SHA-256 cut to 12 bytes).
var (
	hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hex24 = regexp.MustCompile(`^[0-9a-f]{24}$`)
)

// fuzzSeeds adds every JSON file matching the globs as a seed. The fixtures
// are real `show -json` output (see testdata/SOURCES.md and the examples),
// so the fuzzer starts from what Terraform and OpenTofu actually print.
func fuzzSeeds(f *testing.F, globs ...string) {
	f.Helper()
	n := 0
	for _, g := range globs {
		files, err := filepath.Glob(g)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			n++
		}
	}
	if n == 0 {
		// A moved fixture directory would otherwise leave the fuzzer
		// with nothing but its own corpus, silently.
		f.Fatalf("no seed files match %v", globs)
	}
}

// FuzzParse: plan.Parse never panics on any bytes, and what it accepts is a
// summary Gatehouse can trust: valid JSON, hashed exactly as submitted,
// counts that are what its own resource list implies, and the same result
// for the same bytes (an approval is matched to a plan by that result).
func FuzzParse(f *testing.F) {
	fuzzSeeds(f, "testdata/*.json", "../examples/plans/*.json", "../tests/testdata/plans/*.json")
	// Hand-written shapes the fixtures lack: every action list the
	// classifier knows or refuses, deferrals, invocations, a move.
	for _, s := range []string{
		`{"format_version":"1.2","resource_changes":[{"address":"a.b","mode":"managed","type":"a","change":{"actions":["create","forget"]}}]}`,
		`{"format_version":"1.2","resource_changes":[{"address":"a.b","mode":"managed","type":"a","change":{"actions":["forget","create"]}}]}`,
		`{"format_version":"1.2","resource_changes":[{"address":"a.b","mode":"managed","type":"a","change":{"actions":["update","delete"]}}]}`,
		`{"format_version":"1.2","resource_changes":[{"address":"a.b","previous_address":"a.c","mode":"managed","type":"a","change":{"actions":["no-op"],"importing":{"id":"x"}}}]}`,
		`{"format_version":"1.2","resource_changes":[{"address":"d.b","mode":"data","type":"d","change":{"actions":["read"]}}]}`,
		`{"format_version":"1.2","deferred_changes":[{"reason":"x"}]}`,
		`{"format_version":"1.2","action_invocations":[{"address":"action.a.b","type":"a","config_values":{"n":1.10}}]}`,
		`{"format_version":"1.2","errored":true}`,
		`{"format_version":"1.2","resource_changes":[{"address":"a.b","mode":"managed","change":null}]}`,
		` {"format_version":"1.2"} `,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := plan.Parse(data)
		p2, err2 := plan.Parse(data)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("not deterministic: %v, then %v", err, err2)
		}
		if err != nil {
			if !reflect.DeepEqual(p, approval.Plan{}) {
				t.Fatalf("error %v comes with a plan: %+v", err, p)
			}
			return
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("not deterministic:\n%+v\n%+v", p, p2)
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		sum := sha256.Sum256(data)
		if p.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("SHA256 %s is not of the submitted bytes", p.SHA256)
		}
		checkCounts(t, p)
		// Summarize is what the worker recomputes from the stored list:
		// it must come back to the same summary, digest included.
		if again := approval.Summarize(p.SHA256, p.ResourceChanges); !reflect.DeepEqual(again, p) {
			t.Fatalf("Summarize of the parsed changes differs:\n%+v\n%+v", again, p)
		}
	})
}

// checkCounts recounts the summary from the resource list, independently of
// approval.Summarize, and checks every listed change is one Gatehouse can
// name and tell apart.
func checkCounts(t *testing.T, p approval.Plan) {
	t.Helper()
	var want approval.PlanSummary
	for _, r := range p.ResourceChanges {
		if r.Address == "" {
			t.Fatalf("a change without an address: %+v", r)
		}
		if len(r.Actions) == 0 {
			// A listed change that counts for nothing is one no rule
			// would ask about.
			t.Fatalf("%s: listed without actions", r.Address)
		}
		if !hex64.MatchString(r.Digest) {
			t.Fatalf("%s: digest %q is not a SHA-256", r.Address, r.Digest)
		}
		for _, a := range r.Actions {
			switch a {
			case approval.ActionCreate:
				want.Adds++
			case approval.ActionUpdate:
				want.Changes++
			case approval.ActionDelete:
				want.Destroys++
			case approval.ActionReplace:
				want.Replaces++
				want.Adds++
				want.Destroys++
			case approval.ActionForget:
				want.Forgets++
			case approval.ActionImport:
				want.Imports++
			case approval.ActionMove:
				want.Moves++
			case approval.ActionInvoke:
				want.Invocations++
			default:
				t.Fatalf("%s: unknown action %q", r.Address, a)
			}
		}
	}
	got := p.PlanSummary
	want.SHA256, want.ResourceCount, want.ChangesDigest = got.SHA256, len(p.ResourceChanges), got.ChangesDigest
	if got != want {
		t.Fatalf("counts %+v, the changes imply %+v", got, want)
	}
	if !hex24.MatchString(got.ChangesDigest) {
		t.Fatalf("changes digest %q is not a fingerprint", got.ChangesDigest)
	}
}
