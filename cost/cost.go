// Package cost reads Infracost estimates (`infracost breakdown --format json`
// or `infracost diff --format json`) into the monthly totals Gatehouse's
// approval rules compare. The submitted bytes are kept as they are, addressed
// by their SHA-256 like plans, so policies can read the full document.
//
// A document Infracost wrote but could not fill is no estimate: when a
// project carries an error (metadata.errors with isError true), or the total
// is missing or null, Parse returns a summary marked Failed, with
// Infracost's messages, and zero figures. That is not a parse error: the run
// goes on and its cost conditions fail closed. A partial estimate (some
// projects errored, others not) is failed too: its total covers only part of
// the change. Diagnostics without isError are warnings and change nothing.
//
// A missing or null pastTotalMonthlyCost means Infracost had no baseline (a
// new project, or `infracost breakdown` of a directory): the past total is
// taken as 0, so without a diffTotalMonthlyCost the delta is the whole total.
// That overstates the increase of an existing project priced without a
// baseline, which errs on the side of asking.
package cost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// SupportedMajorVersion is the major version of Infracost's JSON output
// format this package reads.
const SupportedMajorVersion = "0"

// A failed estimate keeps at most maxProblems problems of at most
// maxProblemLen characters each: they are shown on the run and in rule
// notes, and Infracost's messages can quote whole HCL diagnostics.
const (
	maxProblems   = 5
	maxProblemLen = 200
)

var (
	// decimalPattern is how Infracost prints amounts: a plain decimal, no
	// exponent, no sign but a leading minus (diffs may be negative).
	decimalPattern  = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// Parse validates an Infracost JSON estimate and returns its monthly totals.
// version, currency and projects are required; pastTotalMonthlyCost defaults
// to 0 and diffTotalMonthlyCost to the total minus the past total. A field
// that is null counts as absent. A malformed document is an error naming the
// field, as in `cost: totalMonthlyCost: not a number: "abc"`; a well-formed
// one that holds no estimate (a project errored, or no total) is a summary
// marked Failed.
func Parse(data []byte) (approval.CostSummary, error) {
	if trimmed := bytes.TrimSpace(data); len(trimmed) == 0 || trimmed[0] != '{' {
		return approval.CostSummary{}, fmt.Errorf("cost: expected a JSON object from `infracost breakdown --format json`")
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return approval.CostSummary{}, fmt.Errorf("cost: decode: %w", err)
	}

	version, err := str(doc, "version")
	if err != nil {
		return approval.CostSummary{}, err
	}
	if major, _, _ := strings.Cut(version, "."); major != SupportedMajorVersion {
		return approval.CostSummary{}, fmt.Errorf("cost: version: unsupported format version %q (want %s.x)", version, SupportedMajorVersion)
	}
	currency, err := str(doc, "currency")
	if err != nil {
		return approval.CostSummary{}, err
	}
	if !currencyPattern.MatchString(currency) {
		return approval.CostSummary{}, fmt.Errorf("cost: currency: not an ISO 4217 code: %q", currency)
	}
	total, err := amount(doc, "totalMonthlyCost")
	if err != nil {
		return approval.CostSummary{}, err
	}
	past, err := amount(doc, "pastTotalMonthlyCost")
	if err != nil {
		return approval.CostSummary{}, err
	}
	diff, err := amount(doc, "diffTotalMonthlyCost")
	if err != nil {
		return approval.CostSummary{}, err
	}
	list, err := projects(doc)
	if err != nil {
		return approval.CostSummary{}, err
	}

	problems := projectProblems(list)
	if total == nil {
		problems = append(problems, "totalMonthlyCost is missing or null: Infracost produced no total")
	}
	if len(problems) > 0 {
		return approval.CostSummary{
			SHA256:   plan.Hash(data),
			Currency: currency,
			Failed:   true,
			Problems: bounded(problems),
		}, nil
	}
	if past == nil {
		past = new(big.Rat) // no baseline: see the package doc
	}
	if diff == nil {
		diff = new(big.Rat).Sub(total, past)
		if !finite(diff) {
			return approval.CostSummary{}, errors.New("cost: diffTotalMonthlyCost: totalMonthlyCost minus pastTotalMonthlyCost is out of range")
		}
	}
	return approval.CostSummary{
		SHA256:           plan.Hash(data),
		Currency:         currency,
		MonthlyCost:      float(total),
		PastMonthlyCost:  float(past),
		MonthlyCostDelta: float(diff),
	}, nil
}

// present returns the raw value of field, or nil when it is absent or null.
func present(doc map[string]json.RawMessage, field string) json.RawMessage {
	raw, ok := doc[field]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	return raw
}

// str reads a required, non-empty string field.
func str(doc map[string]json.RawMessage, field string) (string, error) {
	raw := present(doc, field)
	if raw == nil {
		return "", fmt.Errorf("cost: %s: missing", field)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("cost: %s: expected a string, got %s", field, kind(raw))
	}
	if s == "" {
		return "", fmt.Errorf("cost: %s: empty", field)
	}
	return s, nil
}

// amount reads an optional amount, printed by Infracost as a decimal string;
// nil when the field is absent or null.
func amount(doc map[string]json.RawMessage, field string) (*big.Rat, error) {
	raw := present(doc, field)
	if raw == nil {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("cost: %s: expected a decimal string, got %s", field, kind(raw))
	}
	if !decimalPattern.MatchString(s) {
		return nil, fmt.Errorf("cost: %s: not a number: %q", field, s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("cost: %s: not a number: %q", field, s)
	}
	if !finite(r) {
		// It would become ±Inf, which passes every "above" threshold
		// and no "below" one: a rule would decide on a number nobody
		// wrote.
		return nil, fmt.Errorf("cost: %s: out of range (beyond %g)", field, math.MaxFloat64)
	}
	return r, nil
}

// finite reports whether r is within float64's range, as the summary keeps
// amounts.
func finite(r *big.Rat) bool {
	f, _ := r.Float64()
	return !math.IsInf(f, 0)
}

// project is what Parse reads of an Infracost project: its names and its
// diagnostics (Infracost's schema.ProjectDiag).
type project struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	Metadata    *struct {
		// Errors merges CurrentErrors and PastErrors; all three are read
		// in case a producer fills only some.
		Errors        []diagnostic `json:"errors"`
		CurrentErrors []diagnostic `json:"currentErrors"`
		PastErrors    []diagnostic `json:"pastErrors"`
	} `json:"metadata"`
}

type diagnostic struct {
	Message string `json:"message"`
	// IsError marks a diagnostic that stopped Infracost from pricing the
	// project; without it the diagnostic is a warning.
	IsError bool `json:"isError"`
}

// projects reads projects, an array of objects (possibly empty).
func projects(doc map[string]json.RawMessage) ([]project, error) {
	raw := present(doc, "projects")
	if raw == nil {
		return nil, fmt.Errorf("cost: projects: missing")
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("cost: projects: expected an array, got %s", kind(raw))
	}
	out := make([]project, len(list))
	for i, p := range list {
		if k := kind(p); k != "object" {
			return nil, fmt.Errorf("cost: projects[%d]: expected an object, got %s", i, k)
		}
		if err := json.Unmarshal(p, &out[i]); err != nil {
			return nil, fieldError(fmt.Sprintf("cost: projects[%d]", i), err)
		}
	}
	return out, nil
}

// projectProblems lists the errors Infracost reported on projects, each
// naming its project, led by a note when only some projects failed: the
// total then covers the others only.
func projectProblems(list []project) []string {
	var problems []string
	failed := 0
	for i, p := range list {
		msgs := p.errorMessages()
		if len(msgs) == 0 {
			continue
		}
		failed++
		for _, m := range msgs {
			problems = append(problems, "project "+p.label(i)+": "+m)
		}
	}
	if failed > 0 && failed < len(list) {
		note := fmt.Sprintf("%d of %d projects failed: the total leaves them out", failed, len(list))
		problems = append([]string{note}, problems...)
	}
	return problems
}

// errorMessages returns the project's distinct error messages, in order.
func (p project) errorMessages() []string {
	if p.Metadata == nil {
		return nil
	}
	var out []string
	for _, list := range [][]diagnostic{p.Metadata.Errors, p.Metadata.CurrentErrors, p.Metadata.PastErrors} {
		for _, d := range list {
			msg := strings.TrimSpace(d.Message)
			if msg == "" {
				msg = "error without a message"
			}
			if d.IsError && !slices.Contains(out, msg) {
				out = append(out, msg)
			}
		}
	}
	return out
}

// label names a project as Infracost shows it.
func (p project) label(i int) string {
	switch {
	case p.DisplayName != "":
		return p.DisplayName
	case p.Name != "":
		return p.Name
	}
	return fmt.Sprintf("projects[%d]", i)
}

// bounded keeps at most maxProblems problems of at most maxProblemLen
// characters; the last one kept says how many were left out.
func bounded(problems []string) []string {
	if len(problems) > maxProblems {
		more := len(problems) - (maxProblems - 1)
		problems = append(problems[:maxProblems-1:maxProblems-1], fmt.Sprintf("and %d more", more))
	}
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = shorten(p, maxProblemLen)
	}
	return out
}

// shorten cuts s to at most n characters (runes, never half a one), marking
// the cut with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// fieldError names the field of a decoding error in JSON's terms, not Go's:
// `cost: projects[0].metadata.errors[].isError: expected boolean, got string`.
func fieldError(at string, err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return fmt.Errorf("%s: %w", at, err)
	}
	return fmt.Errorf("%s.%s: expected %s, got %s", at, te.Field, jsonType(te.Type), te.Value)
}

// jsonType names the JSON type a Go type decodes from.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "object"
	}
	return "number"
}

// kind names the JSON type of a raw value, for error messages.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func float(r *big.Rat) float64 {
	f, _ := r.Float64()
	return f
}
