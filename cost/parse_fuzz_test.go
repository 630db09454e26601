package cost_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/cost"
)

// FuzzParse: cost.Parse never panics, gives the same answer for the same
// bytes, and what it accepts is safe to compare in a rule: finite figures
// (a NaN compares false with every threshold, an Inf true with all of them,
// either way a rule would decide on a number nobody wrote), an ISO currency,
// the hash of the exact bytes, and a failed estimate that says why and
// carries no figures.
func FuzzParse(f *testing.F) {
	var files []string
	for _, g := range []string{"testdata/*.json", "../examples/cost/*.json", "../tests/testdata/infracost.json"} {
		m, err := filepath.Glob(g)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		f.Fatal("no seed files: were the fixtures moved?")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Amounts at the edges of what the decimal pattern lets through.
	for _, s := range []string{
		`{"version":"0.2","currency":"USD","projects":[],"totalMonthlyCost":"12.5","pastTotalMonthlyCost":"-3"}`,
		`{"version":"0.2","currency":"USD","projects":[],"totalMonthlyCost":"0.` + strings.Repeat("0", 400) + `1"}`,
		`{"version":"0.2","currency":"EUR","projects":[{"metadata":{"errors":[{"message":"boom","isError":true}]}}],"totalMonthlyCost":null}`,
		`{"version":"0.2","currency":"USD","projects":[{}, 1]}`,
	} {
		f.Add([]byte(s))
	}
	currency := regexp.MustCompile(`^[A-Z]{3}$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := cost.Parse(data)
		c2, err2 := cost.Parse(data)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("not deterministic: %v, then %v", err, err2)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("not deterministic:\n%+v\n%+v", c, c2)
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		sum := sha256.Sum256(data)
		if c.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("SHA256 %s is not of the submitted bytes", c.SHA256)
		}
		if !currency.MatchString(c.Currency) {
			t.Fatalf("currency %q is not an ISO 4217 code", c.Currency)
		}
		for name, v := range map[string]float64{"monthly": c.MonthlyCost, "past": c.PastMonthlyCost, "delta": c.MonthlyCostDelta} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s cost is %v", name, v)
			}
		}
		if !c.Failed {
			if len(c.Problems) > 0 {
				t.Fatalf("a usable estimate with problems: %q", c.Problems)
			}
			return
		}
		if c.MonthlyCost != 0 || c.PastMonthlyCost != 0 || c.MonthlyCostDelta != 0 {
			t.Fatalf("a failed estimate with figures: %+v", c)
		}
		if len(c.Problems) == 0 || len(c.Problems) > 5 {
			t.Fatalf("a failed estimate says why in 1 to 5 problems, not %d", len(c.Problems))
		}
		for _, p := range c.Problems {
			if utf8.RuneCountInString(p) > 200 || p == "" {
				t.Fatalf("problem of %d characters: %q", utf8.RuneCountInString(p), p)
			}
		}
		if c.Usable() {
			t.Fatal("a failed estimate is usable")
		}
	})
}
