package cost_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/cost"
	"github.com/gatehouse-dev/gatehouse/plan"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// near compares amounts that went through float64.
func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestParseFiles(t *testing.T) {
	tests := []struct {
		file               string
		currency           string
		total, past, delta float64
	}{
		{"breakdown.json", "USD", 97.586, 34.368, 63.218},
		{"breakdown-expensive.json", "USD", 1158.13, 34.368, 1123.762},
		// infracost breakdown of a directory has no past: nulls default.
		{"breakdown-no-past.json", "USD", 97.586, 0, 97.586},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := read(t, tt.file)
			got, err := cost.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if got.SHA256 != plan.Hash(data) || len(got.SHA256) != 64 {
				t.Errorf("SHA256 = %q; want the hash of the bytes %q", got.SHA256, plan.Hash(data))
			}
			if got.Currency != tt.currency || !near(got.MonthlyCost, tt.total) || !near(got.PastMonthlyCost, tt.past) || !near(got.MonthlyCostDelta, tt.delta) {
				t.Errorf("got %+v; want %s total %v past %v delta %v", got, tt.currency, tt.total, tt.past, tt.delta)
			}
		})
	}
}

func TestParseBrokenFiles(t *testing.T) {
	tests := []struct{ file, want string }{
		{"bad-total.json", `cost: totalMonthlyCost: not a number: "abc"`},
		{"no-currency.json", "cost: currency: missing"},
		{"unsupported-version.json", `cost: version: unsupported format version "1.0" (want 0.x)`},
		{"truncated.json", "cost: decode: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := cost.Parse(read(t, tt.file))
			if err == nil {
				t.Fatalf("parsed %+v; want error %q", got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q; want %q", err, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	const base = `"version": "0.2", "currency": "USD", "projects": []`
	tests := []struct {
		name  string
		json  string
		want  approval.CostSummary // SHA256 is checked separately
		error string
	}{
		{
			name: "diff given",
			json: `{` + base + `, "totalMonthlyCost": "1234.5678", "pastTotalMonthlyCost": "1000.5", "diffTotalMonthlyCost": "234.0678"}`,
			want: approval.CostSummary{Currency: "USD", MonthlyCost: 1234.5678, PastMonthlyCost: 1000.5, MonthlyCostDelta: 234.0678},
		},
		{
			name: "diff computed from total and past",
			json: `{` + base + `, "totalMonthlyCost": "1234.5678", "pastTotalMonthlyCost": "1000.1"}`,
			want: approval.CostSummary{Currency: "USD", MonthlyCost: 1234.5678, PastMonthlyCost: 1000.1, MonthlyCostDelta: 234.4678},
		},
		{
			name: "past and diff null",
			json: `{` + base + `, "totalMonthlyCost": "12", "pastTotalMonthlyCost": null, "diffTotalMonthlyCost": null}`,
			want: approval.CostSummary{Currency: "USD", MonthlyCost: 12, MonthlyCostDelta: 12},
		},
		{
			name: "cost goes down",
			json: `{` + base + `, "totalMonthlyCost": "0", "pastTotalMonthlyCost": "32.85", "diffTotalMonthlyCost": "-32.85"}`,
			want: approval.CostSummary{Currency: "USD", PastMonthlyCost: 32.85, MonthlyCostDelta: -32.85},
		},
		{
			name: "other currency and minor version",
			json: `{"version": "0.11", "currency": "EUR", "projects": [{"name": "p"}], "totalMonthlyCost": "7.5"}`,
			want: approval.CostSummary{Currency: "EUR", MonthlyCost: 7.5, MonthlyCostDelta: 7.5},
		},
		{name: "empty", json: ``, error: "cost: expected a JSON object from `infracost breakdown --format json`"},
		{name: "array", json: `[]`, error: "cost: expected a JSON object from `infracost breakdown --format json`"},
		{name: "malformed", json: `{"version": "0.2",}`, error: "cost: decode: invalid character '}' looking for beginning of object key string"},
		{name: "trailing data", json: `{` + base + `, "totalMonthlyCost": "1"} {}`, error: "cost: decode: invalid character '{' after top-level value"},
		{name: "no version", json: `{"currency": "USD", "projects": [], "totalMonthlyCost": "1"}`, error: "cost: version: missing"},
		{name: "null version", json: `{"version": null, "currency": "USD", "projects": [], "totalMonthlyCost": "1"}`, error: "cost: version: missing"},
		{name: "empty version", json: `{"version": "", "currency": "USD", "projects": [], "totalMonthlyCost": "1"}`, error: "cost: version: empty"},
		{name: "numeric version", json: `{"version": 0.2, "currency": "USD", "projects": [], "totalMonthlyCost": "1"}`, error: "cost: version: expected a string, got number"},
		{name: "major version 1", json: `{"version": "1", "currency": "USD", "projects": [], "totalMonthlyCost": "1"}`, error: `cost: version: unsupported format version "1" (want 0.x)`},
		{name: "empty currency", json: `{"version": "0.2", "currency": "", "projects": [], "totalMonthlyCost": "1"}`, error: "cost: currency: empty"},
		{name: "bad currency", json: `{"version": "0.2", "currency": "usd", "projects": [], "totalMonthlyCost": "1"}`, error: `cost: currency: not an ISO 4217 code: "usd"`},
		{name: "total not a number", json: `{` + base + `, "totalMonthlyCost": "abc"}`, error: `cost: totalMonthlyCost: not a number: "abc"`},
		{name: "total empty", json: `{` + base + `, "totalMonthlyCost": ""}`, error: `cost: totalMonthlyCost: not a number: ""`},
		{name: "total with exponent", json: `{` + base + `, "totalMonthlyCost": "1e3"}`, error: `cost: totalMonthlyCost: not a number: "1e3"`},
		{name: "total NaN", json: `{` + base + `, "totalMonthlyCost": "NaN"}`, error: `cost: totalMonthlyCost: not a number: "NaN"`},
		{name: "total as JSON number", json: `{` + base + `, "totalMonthlyCost": 12.5}`, error: "cost: totalMonthlyCost: expected a decimal string, got number"},
		{name: "past not a number", json: `{` + base + `, "totalMonthlyCost": "1", "pastTotalMonthlyCost": "1,5"}`, error: `cost: pastTotalMonthlyCost: not a number: "1,5"`},
		{name: "diff not a number", json: `{` + base + `, "totalMonthlyCost": "1", "diffTotalMonthlyCost": "+1"}`, error: `cost: diffTotalMonthlyCost: not a number: "+1"`},
		{name: "diff wrong type", json: `{` + base + `, "totalMonthlyCost": "1", "diffTotalMonthlyCost": true}`, error: "cost: diffTotalMonthlyCost: expected a decimal string, got boolean"},
		{name: "no projects", json: `{"version": "0.2", "currency": "USD", "totalMonthlyCost": "1"}`, error: "cost: projects: missing"},
		{name: "null projects", json: `{"version": "0.2", "currency": "USD", "projects": null, "totalMonthlyCost": "1"}`, error: "cost: projects: missing"},
		{name: "projects not an array", json: `{"version": "0.2", "currency": "USD", "projects": {}, "totalMonthlyCost": "1"}`, error: "cost: projects: expected an array, got object"},
		{name: "project not an object", json: `{"version": "0.2", "currency": "USD", "projects": [{}, "p"], "totalMonthlyCost": "1"}`, error: "cost: projects[1]: expected an object, got string"},
		{name: "errors not an array", json: `{"version": "0.2", "currency": "USD", "projects": [{"metadata": {"errors": {}}}], "totalMonthlyCost": "1"}`, error: "cost: projects[0].metadata.errors: expected array, got object"},
		{name: "isError not a boolean", json: `{"version": "0.2", "currency": "USD", "projects": [{"metadata": {"errors": [{"message": "m", "isError": "yes"}]}}], "totalMonthlyCost": "1"}`, error: "cost: projects[0].metadata.errors.isError: expected boolean, got string"},
		{name: "metadata not an object", json: `{"version": "0.2", "currency": "USD", "projects": [{"metadata": []}], "totalMonthlyCost": "1"}`, error: "cost: projects[0].metadata: expected object, got array"},
		{name: "errored project with a bad total", json: `{"version": "0.2", "currency": "USD", "projects": [{"metadata": {"errors": [{"message": "m", "isError": true}]}}], "totalMonthlyCost": "x"}`, error: `cost: totalMonthlyCost: not a number: "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cost.Parse([]byte(tt.json))
			if tt.error != "" {
				if err == nil || err.Error() != tt.error {
					t.Fatalf("Parse = %+v, %v; want error %q", got, err, tt.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.SHA256 != plan.Hash([]byte(tt.json)) {
				t.Errorf("SHA256 = %q; want %q", got.SHA256, plan.Hash([]byte(tt.json)))
			}
			if got.Currency != tt.want.Currency || !near(got.MonthlyCost, tt.want.MonthlyCost) ||
				!near(got.PastMonthlyCost, tt.want.PastMonthlyCost) || !near(got.MonthlyCostDelta, tt.want.MonthlyCostDelta) {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

// The hash is of the exact bytes: reformatting the same estimate changes it.
func TestParseHashesExactBytes(t *testing.T) {
	data := read(t, "breakdown.json")
	a, err := cost.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cost.Parse([]byte(strings.TrimSpace(string(data))))
	if err != nil {
		t.Fatal(err)
	}
	if a.SHA256 == b.SHA256 {
		t.Error("same hash for different bytes")
	}
	if a.MonthlyCost != b.MonthlyCost {
		t.Error("different totals for the same estimate")
	}
}

// Real Infracost documents that hold no estimate are failed estimates, not
// $0 ones.
func TestParseFailedEstimates(t *testing.T) {
	tests := []struct {
		file     string
		problems []string
	}{
		{
			// Two of four projects failed to load: Infracost's total
			// (1204.96) covers the other two only.
			file: "infracost-project-error.json",
			problems: []string{
				"2 of 4 projects failed: the total leaves them out",
				"project us1-dev: Error loading Terraform modules: failed to parse file REPLACED_PROJECT_PATH/testdata/breakdown_multi_project_with_error_output_json/us1/mod_with_error.tf diag: REPLACED_PROJECT_PATH/…",
				"project us1-prod: Error loading Terraform modules: failed to parse file REPLACED_PROJECT_PATH/testdata/breakdown_multi_project_with_error_output_json/us1/mod_with_error.tf diag: REPLACED_PROJECT_PATH…",
			},
		},
		{
			// Infracost Cloud refused to price: every total is "0".
			file:     "infracost-quota-exceeded.json",
			problems: []string{"project infracost/infracost/examples: Infracost free monthly run limit exceeded."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := read(t, tt.file)
			got, err := cost.Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v; want a failed estimate, not an error", err)
			}
			assertFailed(t, got, data, tt.problems)
		})
	}
}

// assertFailed checks that got is a failed estimate of data with these
// problems and no figures.
func assertFailed(t *testing.T, got approval.CostSummary, data []byte, problems []string) {
	t.Helper()
	if !got.Failed || got.Usable() {
		t.Errorf("Failed = %v, Usable = %v; want a failed, unusable estimate", got.Failed, got.Usable())
	}
	if got.MonthlyCost != 0 || got.PastMonthlyCost != 0 || got.MonthlyCostDelta != 0 {
		t.Errorf("figures %v %v %v; want zeros", got.MonthlyCost, got.PastMonthlyCost, got.MonthlyCostDelta)
	}
	if got.SHA256 != plan.Hash(data) || got.Currency != "USD" {
		t.Errorf("SHA256 %q currency %q; want the document's hash and USD", got.SHA256, got.Currency)
	}
	if !slices.Equal(got.Problems, problems) {
		t.Errorf("problems:\n%q\nwant:\n%q", got.Problems, problems)
	}
	for _, p := range got.Problems {
		if n := utf8.RuneCountInString(p); n > 200 {
			t.Errorf("problem of %d characters; want at most 200: %q", n, p)
		}
	}
}

// withTopLevel returns a real document with top-level fields replaced.
func withTopLevel(t *testing.T, name string, fields map[string]any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(read(t, name), &doc); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		if v == nil {
			doc[k] = nil
		} else {
			doc[k] = v
		}
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A document whose total is missing or null says nothing about cost: it
// used to be refused; it is a failed estimate, so the run goes on and its
// cost rules fail closed.
func TestParseNoTotalIsFailed(t *testing.T) {
	const problem = "totalMonthlyCost is missing or null: Infracost produced no total"
	nullTotals := withTopLevel(t, "infracost-warnings.json", map[string]any{"totalMonthlyCost": nil, "pastTotalMonthlyCost": nil, "diffTotalMonthlyCost": nil})
	const base = `"version": "0.2", "currency": "USD", "projects": []`
	for name, data := range map[string][]byte{
		"real document, null totals": nullTotals,
		"no total":                   []byte(`{` + base + `}`),
		"null total":                 []byte(`{` + base + `, "totalMonthlyCost": null}`),
		"null total with a past":     []byte(`{` + base + `, "totalMonthlyCost": null, "pastTotalMonthlyCost": "10"}`),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := cost.Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v; want a failed estimate, not an error", err)
			}
			assertFailed(t, got, data, []string{problem})
		})
	}
}

// Diagnostics without isError are warnings: the estimate stands.
func TestParseWarningsAreNotFailures(t *testing.T) {
	got, err := cost.Parse(read(t, "infracost-warnings.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Failed || len(got.Problems) != 0 || !got.Usable() {
		t.Errorf("got %+v; want a usable estimate", got)
	}
}

func TestParseBoundsProblems(t *testing.T) {
	long := strings.Repeat("é", 300) // multi-byte: cut on characters, not bytes
	var projects []string
	for i := range 7 {
		projects = append(projects, fmt.Sprintf(`{"name": "p%d", "metadata": {"errors": [{"code": 102, "message": %q, "data": null, "isError": true}]}}`, i, long))
	}
	data := []byte(`{"version": "0.2", "currency": "USD", "totalMonthlyCost": "0", "projects": [` + strings.Join(projects, ",") + `]}`)
	got, err := cost.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Problems) != 5 || got.Problems[4] != "and 3 more" {
		t.Fatalf("problems %q; want 4 and \"and 3 more\"", got.Problems)
	}
	for _, p := range got.Problems[:4] {
		if !utf8.ValidString(p) || utf8.RuneCountInString(p) != 200 || !strings.HasSuffix(p, "…") {
			t.Errorf("problem %q: want 200 valid characters ending in an ellipsis", p)
		}
	}
}
