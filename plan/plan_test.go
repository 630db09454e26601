package plan_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/plan"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseCountsLikeTerraform(t *testing.T) {
	data := readFile(t, "../examples/plans/prod-network.json")
	got, err := plan.Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	// create + replace are adds; delete + replace are destroys; the no-op and
	// the data source read are not counted at all.
	want := approval.PlanSummary{
		SHA256: plan.Hash(data), Adds: 2, Changes: 1, Destroys: 2, Replaces: 1,
		Resources: []approval.Resource{
			{Address: "aws_vpc.main", Type: "aws_vpc", Provider: "registry.terraform.io/hashicorp/aws", Actions: []approval.Action{"update"}},
			{Address: `aws_subnet.public["a"]`, Type: "aws_subnet", Provider: "registry.terraform.io/hashicorp/aws", Actions: []approval.Action{"create"}},
			{Address: "aws_security_group.legacy", Type: "aws_security_group", Provider: "registry.terraform.io/hashicorp/aws", Actions: []approval.Action{"delete"}},
			{Address: "aws_nat_gateway.main", Type: "aws_nat_gateway", Provider: "registry.terraform.io/hashicorp/aws", Actions: []approval.Action{"replace"}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summary mismatch (-want +got):\n%s", diff)
	}
	if strings.Contains(string(mustJSON(t, got)), "10.0.1.0/24") {
		t.Error("summary carries an attribute value; it must not")
	}
}

func TestParseEmptyPlan(t *testing.T) {
	got, err := plan.Parse(readFile(t, "testdata/empty.json"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got.Adds+got.Changes+got.Destroys+got.Replaces != 0 || len(got.Resources) != 0 {
		t.Errorf("got %+v; want an empty summary", got)
	}
}

func TestParseRefusesBadPlans(t *testing.T) {
	for _, tc := range []struct {
		file, want string
	}{
		{"testdata/errored.json", "errored"},
		{"testdata/future-format.json", "unsupported plan format version"},
		{"testdata/no-format.json", "format version is missing"},
		{"testdata/truncated.json", "decode plan"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := plan.Parse(readFile(t, tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v; want one containing %q", err, tc.want)
			}
		})
	}
	for _, raw := range []string{``, `[]`, `"plan"`, `null`} {
		if _, err := plan.Parse([]byte(raw)); err == nil {
			t.Errorf("Parse(%q) = nil error; want one", raw)
		}
	}
}

func TestStoreRoundTripAndTamper(t *testing.T) {
	dir := t.TempDir()
	s, err := plan.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := readFile(t, "../examples/plans/add-only.json")
	sha, err := s.Put(data)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if sha != plan.Hash(data) {
		t.Errorf("Put returned %s; want %s", sha, plan.Hash(data))
	}
	if again, err := s.Put(data); err != nil || again != sha {
		t.Errorf("second Put = %s, %v; want %s, nil", again, err, sha)
	}
	got, err := s.Get(sha)
	if err != nil || string(got) != string(data) {
		t.Fatalf("Get = %d bytes, %v; want the stored bytes", len(got), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("store holds %d files; want 1 (no temporary leftovers)", len(entries))
	}

	if err := os.WriteFile(filepath.Join(dir, sha+".json"), []byte(`{"tampered":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(sha); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Errorf("Get of a tampered plan = %v; want an 'altered' error", err)
	}
	if _, err := s.Get(strings.Repeat("0", 64)); !errors.Is(err, plan.ErrNotFound) {
		t.Errorf("Get of an unknown hash = %v; want ErrNotFound", err)
	}
	if _, err := s.Get("../../etc/passwd"); err == nil {
		t.Error("Get accepted a path as a hash")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
