// Package cost reads Infracost estimates (`infracost breakdown --format json`
// or `infracost diff --format json`) into the monthly totals Gatehouse's
// approval rules compare. The submitted bytes are kept as they are, addressed
// by their SHA-256 like plans, so policies can read the full document.
package cost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// SupportedMajorVersion is the major version of Infracost's JSON output
// format this package reads.
const SupportedMajorVersion = "0"

var (
	// decimalPattern is how Infracost prints amounts: a plain decimal, no
	// exponent, no sign but a leading minus (diffs may be negative).
	decimalPattern  = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// Parse validates an Infracost JSON estimate and returns its monthly totals.
// version, currency, totalMonthlyCost and projects are required;
// pastTotalMonthlyCost defaults to 0 and diffTotalMonthlyCost to the total
// minus the past total. A field that is null counts as absent. Errors name the
// field, as in `cost: totalMonthlyCost: not a number: "abc"`.
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
	if total == nil {
		return approval.CostSummary{}, fmt.Errorf("cost: totalMonthlyCost: missing")
	}
	past, err := amount(doc, "pastTotalMonthlyCost")
	if err != nil {
		return approval.CostSummary{}, err
	}
	if past == nil {
		past = new(big.Rat)
	}
	diff, err := amount(doc, "diffTotalMonthlyCost")
	if err != nil {
		return approval.CostSummary{}, err
	}
	if diff == nil {
		diff = new(big.Rat).Sub(total, past)
	}
	if err := projects(doc); err != nil {
		return approval.CostSummary{}, err
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
	return r, nil
}

// projects checks that projects is an array of objects (possibly empty).
func projects(doc map[string]json.RawMessage) error {
	raw := present(doc, "projects")
	if raw == nil {
		return fmt.Errorf("cost: projects: missing")
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("cost: projects: expected an array, got %s", kind(raw))
	}
	for i, p := range list {
		if k := kind(p); k != "object" {
			return fmt.Errorf("cost: projects[%d]: expected an object, got %s", i, k)
		}
	}
	return nil
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
