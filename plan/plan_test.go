package plan_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

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

// mustParse parses data and fails the test on an error.
func mustParse(t *testing.T, data []byte) approval.Plan {
	t.Helper()
	got, err := plan.Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return got
}

// replaceOnce returns data with old replaced by new, failing the test unless
// old occurs exactly once: a derived fixture must differ from the real one
// only where the test says.
func replaceOnce(t *testing.T, data []byte, old, new string) []byte {
	t.Helper()
	if n := bytes.Count(data, []byte(old)); n != 1 {
		t.Fatalf("%q occurs %d times in the fixture; want 1", old, n)
	}
	return bytes.Replace(data, []byte(old), []byte(new), 1)
}

// replaceFixture is a real OpenTofu replace; withActions gives it another
// action list.
const replaceFixture = "testdata/opentofu-requires-replace.json"

const replaceActions = `"actions": [
                    "delete",
                    "create"
                ]`

func withActions(t *testing.T, actions string) []byte {
	t.Helper()
	return replaceOnce(t, readFile(t, replaceFixture), replaceActions, `"actions": `+actions)
}

// counts are a plan's counts, compared on their own so that fields the
// summary gains do not break these tests.
type counts struct{ Adds, Changes, Destroys, Replaces, Forgets, Imports, Moves, Invocations int }

func countsOf(p approval.Plan) counts {
	return counts{p.Adds, p.Changes, p.Destroys, p.Replaces, p.Forgets, p.Imports, p.Moves, p.Invocations}
}

// ignoreDigest compares resources without their digests, which are checked
// on their own.
var ignoreDigest = cmpopts.IgnoreFields(approval.Resource{}, "Digest")

func TestParseCountsLikeTerraform(t *testing.T) {
	data := readFile(t, "../examples/plans/prod-network.json")
	got := mustParse(t, data)
	// create + replace are adds; delete + replace are destroys; the no-op and
	// the data source read are not counted at all.
	const aws = "registry.terraform.io/hashicorp/aws"
	want := []approval.Resource{
		{Address: "aws_vpc.main", Type: "aws_vpc", Provider: aws, Actions: []approval.Action{"update"}},
		{Address: `aws_subnet.public["a"]`, Type: "aws_subnet", Provider: aws, Actions: []approval.Action{"create"}},
		{Address: "aws_security_group.legacy", Type: "aws_security_group", Provider: aws, Actions: []approval.Action{"delete"}},
		{Address: "aws_nat_gateway.main", Type: "aws_nat_gateway", Provider: aws, Actions: []approval.Action{"replace"}},
	}
	if diff := cmp.Diff(want, got.ResourceChanges, ignoreDigest); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(counts{Adds: 2, Changes: 1, Destroys: 2, Replaces: 1}, countsOf(got)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if got.SHA256 != plan.Hash(data) {
		t.Errorf("SHA256 = %s; want %s", got.SHA256, plan.Hash(data))
	}
	seen := map[string]bool{}
	for _, r := range got.ResourceChanges {
		if len(r.Digest) != 64 || seen[r.Digest] {
			t.Errorf("%s: digest %q; want 64 hex digits, distinct per change", r.Address, r.Digest)
		}
		seen[r.Digest] = true
	}
	if strings.Contains(string(mustJSON(t, got)), "10.0.1.0/24") {
		t.Error("the plan carries an attribute value; it must not")
	}
}

// Terraform 1.7+ prints ["create","forget"] and OpenTofu 1.12+
// ["forget","create"] for a replace that keeps the old object: a new object
// is created, so it is an add, and the old one leaves state, a forget. Both
// used to count as nothing and apply unasked.
func TestParseCreateAndForget(t *testing.T) {
	for _, actions := range []string{`["create", "forget"]`, `["forget", "create"]`} {
		t.Run(actions, func(t *testing.T) {
			got := mustParse(t, withActions(t, actions))
			if diff := cmp.Diff(counts{Adds: 1, Forgets: 1}, countsOf(got)); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			if len(got.ResourceChanges) != 1 {
				t.Fatalf("got %d changes; want 1", len(got.ResourceChanges))
			}
			if diff := cmp.Diff([]approval.Action{"create", "forget"}, got.ResourceChanges[0].Actions); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseClassifiesActionLists(t *testing.T) {
	for _, tc := range []struct {
		actions string
		want    []approval.Action
	}{
		{`["create"]`, []approval.Action{"create"}},
		{`["update"]`, []approval.Action{"update"}},
		{`["delete"]`, []approval.Action{"delete"}},
		{`["forget"]`, []approval.Action{"forget"}},
		{`["delete", "create"]`, []approval.Action{"replace"}},
		{`["create", "delete"]`, []approval.Action{"replace"}},
	} {
		t.Run(tc.actions, func(t *testing.T) {
			got := mustParse(t, withActions(t, tc.actions))
			if len(got.ResourceChanges) != 1 {
				t.Fatalf("got %d changes; want 1", len(got.ResourceChanges))
			}
			if diff := cmp.Diff(tc.want, got.ResourceChanges[0].Actions); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
		})
	}
	for _, actions := range []string{`["no-op"]`, `["read"]`} {
		if got := mustParse(t, withActions(t, actions)); len(got.ResourceChanges) != 0 || countsOf(got) != (counts{}) {
			t.Errorf("%s: got %+v; want nothing to approve", actions, got)
		}
	}
}

func TestParseRefusesUnclassifiableActions(t *testing.T) {
	const at = "resource_changes[0] (test_instance.test): "
	for _, tc := range []struct{ actions, want string }{
		{`["update", "delete"]`, at + `cannot classify actions ["update","delete"]`},
		{`["read", "create"]`, at + `cannot classify actions ["read","create"]`},
		{`["no-op", "create"]`, at + `cannot classify actions ["no-op","create"]`},
		{`["no-op", "delete"]`, at + `cannot classify actions ["no-op","delete"]`},
		{`["delete", "forget"]`, at + `cannot classify actions ["delete","forget"]`},
		{`["create", "create"]`, at + `cannot classify actions ["create","create"]`},
		{`["delete", "create", "forget"]`, at + `cannot classify actions ["delete","create","forget"]`},
		{`["create", "explode"]`, at + `cannot classify actions ["create","explode"]: unknown action "explode"`},
		{`["Create"]`, at + `cannot classify actions ["Create"]: unknown action "Create"`},
		{`[]`, at + `cannot classify actions []: the list is empty`},
		{`null`, at + `cannot classify actions []: the list is empty`},
	} {
		t.Run(tc.actions, func(t *testing.T) {
			got, err := plan.Parse(withActions(t, tc.actions))
			if err == nil || err.Error() != tc.want {
				t.Errorf("Parse = %+v, %v; want error %q", got, err, tc.want)
			}
		})
	}
	// A change with no actions key at all is as unclassifiable.
	noKey := replaceOnce(t, readFile(t, replaceFixture), replaceActions+",", "")
	if _, err := plan.Parse(noKey); err == nil || !strings.Contains(err.Error(), "(test_instance.test): cannot classify actions []") {
		t.Errorf("Parse without actions = %v; want a cannot-classify error", err)
	}
}

func TestParseReplace(t *testing.T) {
	got := mustParse(t, readFile(t, "testdata/tfjson-replace-tainted.json"))
	want := []approval.Resource{{Address: "null_resource.example", Type: "null_resource", Provider: "registry.terraform.io/hashicorp/null", Actions: []approval.Action{"replace"}}}
	if diff := cmp.Diff(want, got.ResourceChanges, ignoreDigest); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(counts{Adds: 1, Destroys: 1, Replaces: 1}, countsOf(got)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestParseImport(t *testing.T) {
	data := readFile(t, "testdata/tfjson-identity-import.json")
	got := mustParse(t, data)
	want := []approval.Resource{{Address: "corner_user_identity.user", Type: "corner_user_identity", Provider: "registry.terraform.io/hashicorp/corner", Actions: []approval.Action{"update", "import"}}}
	if diff := cmp.Diff(want, got.ResourceChanges, ignoreDigest); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(counts{Changes: 1, Imports: 1}, countsOf(got)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}

	// An import that changes nothing else is still an import.
	noop := mustParse(t, replaceOnce(t, data, `"actions":["update"]`, `"actions":["no-op"]`))
	if len(noop.ResourceChanges) != 1 || !cmp.Equal(noop.ResourceChanges[0].Actions, []approval.Action{"import"}) || noop.Imports != 1 {
		t.Errorf("no-op import: got %+v; want one change with actions [import]", noop)
	}
}

func TestParseMove(t *testing.T) {
	got := mustParse(t, readFile(t, "testdata/tfjson-moved-block.json"))
	// The change is a no-op: only the address changes.
	want := []approval.Resource{{Address: "random_id.test2", PreviousAddress: "random_id.test", Type: "random_id", Provider: "registry.terraform.io/hashicorp/random", Actions: []approval.Action{"move"}}}
	if diff := cmp.Diff(want, got.ResourceChanges, ignoreDigest); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(counts{Moves: 1}, countsOf(got)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestParseInvocations(t *testing.T) {
	got := mustParse(t, readFile(t, "testdata/tfjson-actions.json"))
	want := []approval.Resource{{Address: "action.bufo_print.success", Type: "bufo_print", Provider: "registry.terraform.io/austinvalle/bufo", Actions: []approval.Action{"invoke"}}}
	if diff := cmp.Diff(want, got.ResourceChanges, ignoreDigest); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(counts{Invocations: 1}, countsOf(got)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if len(got.ResourceChanges[0].Digest) != 64 {
		t.Errorf("digest %q; want 64 hex digits", got.ResourceChanges[0].Digest)
	}
	// The invocation's configuration is digested.
	other := mustParse(t, replaceOnce(t, readFile(t, "testdata/tfjson-actions.json"), `"bufo-the-builder"`, `"bufo-the-breaker"`))
	if other.ResourceChanges[0].Digest == got.ResourceChanges[0].Digest {
		t.Error("another config_values has the same digest")
	}
}

// digestOf parses data and returns its only change's digest.
func digestOf(t *testing.T, data []byte) string {
	t.Helper()
	got := mustParse(t, data)
	if len(got.ResourceChanges) != 1 {
		t.Fatalf("got %d changes; want 1", len(got.ResourceChanges))
	}
	return got.ResourceChanges[0].Digest
}

// reencode decodes a plan and encodes it again, with keys sorted (Terraform
// prints them in another order) and the given indent.
func reencode(t *testing.T, data []byte, indent string, edit func(map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(doc)
	}
	out, err := json.MarshalIndent(doc, "", indent)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// firstChange returns resource_changes[0].change of a decoded plan.
func firstChange(doc map[string]any) map[string]any {
	return doc["resource_changes"].([]any)[0].(map[string]any)["change"].(map[string]any)
}

func TestParseDigest(t *testing.T) {
	data := readFile(t, replaceFixture)
	base := digestOf(t, data)

	// Key order and whitespace are not part of a change.
	for _, indent := range []string{"", "\t"} {
		again := reencode(t, data, indent, nil)
		if bytes.Equal(again, data) {
			t.Fatal("the re-encoded plan is the same bytes; the test proves nothing")
		}
		if got := digestOf(t, again); got != base {
			t.Errorf("indent %q: digest %s; want %s (the same change, reformatted)", indent, got, base)
		}
	}

	// Any value is.
	for name, edit := range map[string]func(map[string]any){
		"after value":      func(d map[string]any) { firstChange(d)["after"].(map[string]any)["ami"] = "force-replace2" },
		"before value":     func(d map[string]any) { firstChange(d)["before"].(map[string]any)["id"] = "placeholder2" },
		"after unknown":    func(d map[string]any) { firstChange(d)["after_unknown"].(map[string]any)["ami"] = true },
		"after sensitive":  func(d map[string]any) { firstChange(d)["after_sensitive"].(map[string]any)["ami"] = true },
		"before sensitive": func(d map[string]any) { firstChange(d)["before_sensitive"].(map[string]any)["id"] = true },
		"number as written": func(d map[string]any) {
			firstChange(d)["after"].(map[string]any)["size"] = json.Number("1.0")
		},
		"action order": func(d map[string]any) { firstChange(d)["actions"] = []any{"create", "delete"} },
	} {
		t.Run(name, func(t *testing.T) {
			if got := digestOf(t, reencode(t, data, "", edit)); got == base {
				t.Errorf("digest unchanged (%s); want another", got)
			}
		})
	}
	// 1.0 and 1 are written differently: a reformatting tool that rewrites
	// numbers changes the digest, which fails closed (approvals start over).
	one := func(n string) func(map[string]any) {
		return func(d map[string]any) { firstChange(d)["after"].(map[string]any)["size"] = json.Number(n) }
	}
	if digestOf(t, reencode(t, data, "", one("1"))) == digestOf(t, reencode(t, data, "", one("1.0"))) {
		t.Error("1 and 1.0 have the same digest")
	}
}

// An IAM policy is a JSON document inside a string: one character of it is
// another change.
func TestParseDigestCoversPolicyText(t *testing.T) {
	policy := func(action string) []byte {
		return []byte(`{"format_version":"1.2","resource_changes":[{"address":"aws_iam_role_policy.x","mode":"managed","type":"aws_iam_role_policy","change":{"actions":["update"],` +
			`"before":{"policy":"{\"Statement\":[{\"Action\":\"s3:GetObject\"}]}"},"after":{"policy":"{\"Statement\":[{\"Action\":\"` + action + `\"}]}"}}}]}`)
	}
	if digestOf(t, policy("s3:*")) == digestOf(t, policy("s3:GetObject*")) {
		t.Error("two policies have the same digest")
	}
}

// Sensitive values go into the digest and nowhere else.
func TestParseKeepsNoSensitiveValue(t *testing.T) {
	data := readFile(t, "testdata/opentofu-sensitive-values.json")
	got := mustParse(t, data)
	if got.Adds != 1 || len(got.ResourceChanges) != 1 {
		t.Fatalf("got %+v; want one create", got)
	}
	if out := mustJSON(t, got); bytes.Contains(out, []byte("boop")) {
		t.Errorf("the parsed plan carries the sensitive value: %s", out)
	}
	changed := reencode(t, data, "", func(d map[string]any) { firstChange(d)["after"].(map[string]any)["ami"] = "beep" })
	if digestOf(t, changed) == got.ResourceChanges[0].Digest {
		t.Error("another sensitive value has the same digest; it must not")
	}
}

func TestParseSkipsDataSources(t *testing.T) {
	got := mustParse(t, []byte(`{"format_version":"1.2","resource_changes":[{"address":"data.aws_ami.x","mode":"data","type":"aws_ami","change":{"actions":["read"]}}]}`))
	if len(got.ResourceChanges) != 0 {
		t.Errorf("got %+v; want no changes", got.ResourceChanges)
	}
}

// Terraform does not apply deferred changes with the plan that defers them;
// Gatehouse refuses such plans rather than approve half of what happens.
func TestParseRefusesDeferredChanges(t *testing.T) {
	data := []byte(`{"format_version":"1.2","complete":false,"resource_changes":[],"deferred_changes":[{"reason":"provider_config_unknown","resource_change":{"address":"aws_instance.x","mode":"managed","type":"aws_instance","change":{"actions":["create"]}}}]}`)
	_, err := plan.Parse(data)
	if err == nil || !strings.Contains(err.Error(), "defers 1 change(s)") {
		t.Errorf("Parse = %v; want an error about the deferred change", err)
	}
}

func TestParseEmptyPlan(t *testing.T) {
	got := mustParse(t, readFile(t, "testdata/empty.json"))
	if countsOf(got) != (counts{}) || len(got.ResourceChanges) != 0 || got.ResourceChanges == nil {
		t.Errorf("got %+v; want an empty plan with an empty (not null) change list", got)
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
	for _, tc := range []struct{ json, want string }{
		{`{"format_version":"1.2","resource_changes":[{"address":"a.b","mode":"managed"}]}`, "resource_changes[0] (a.b): missing change"},
		{`{"format_version":"1.2","resource_changes":[{"mode":"managed","change":{"actions":["create"]}}]}`, "resource_changes[0] (): missing address"},
		{`{"format_version":"1.2","resource_changes":[{"address":"a.b","change":{"actions":"create"}}]}`, "resource_changes[0] (a.b): decode change"},
		{`{"format_version":"1.2","action_invocations":[{"type":"t"}]}`, "action_invocations[0] (): missing address"},
		{`{"format_version":"1.2"} {}`, "decode plan"},
	} {
		if _, err := plan.Parse([]byte(tc.json)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v; want an error containing %q", tc.json, err, tc.want)
		}
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
