package gateway

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// testApprovalKey is a fixed key, so failures are reproducible.
func testApprovalKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

const testPlan = `{"format_version": "1.2", "resource_changes": []}`

// testPlanFile stands for the binary plan of plan -out.
const testPlanFile = "binary plan\n"

// approvedRun is a run approved by bob and by an admin's bypass, with
// carol's approval revoked and a sign-off after apply still to come.
func approvedRun(status approval.Status) approval.Run {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	revoked := t0.Add(3 * time.Minute)
	return approval.Run{
		ID: "run-1", Workspace: "prod-network", Status: status, CreatedAt: t0,
		Origin: &approval.Origin{PlanFileSHA256: plan.Hash([]byte(testPlanFile))},
		Plan:   approval.PlanSummary{SHA256: plan.Hash([]byte(testPlan))},
		Reasons: []approval.Reason{
			{ID: "rule:two", Stage: approval.StagePostPlan, Approvals: []approval.Approval{
				{UserID: "bob", Email: "bob@example.com", At: t0.Add(time.Minute)},
				{UserID: "carol", Email: "carol@example.com", At: t0.Add(2 * time.Minute), RevokedAt: &revoked},
				{UserID: "erin", Email: "erin@example.com", At: t0.Add(4 * time.Minute), Bypassed: true},
			}},
			{ID: "step:signoff", Stage: approval.StagePostApply},
		},
	}
}

func TestSignedApprovalDocument(t *testing.T) {
	key := testApprovalKey(1)
	now := time.Date(2026, 3, 1, 11, 0, 0, 0, time.FixedZone("CET", 3600))
	doc, err := NewSignedApproval(approvedRun(approval.StatusApplied), key, now)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	want := SignedApproval{
		Run: "run-1", Workspace: "prod-network", PlanSHA256: plan.Hash([]byte(testPlan)), PlanFileSHA256: plan.Hash([]byte(testPlanFile)),
		Approvers: []SignedApprover{
			{UserID: "bob", Email: "bob@example.com", ReasonID: "rule:two", At: t0.Add(time.Minute)},
			{UserID: "erin", Email: "erin@example.com", ReasonID: "rule:two", At: t0.Add(4 * time.Minute), Bypassed: true},
		},
		ApprovedAt: t0.Add(4 * time.Minute), IssuedAt: now.UTC(),
		KeyID: KeyID(key.Public().(ed25519.PublicKey)), Signature: doc.Signature,
	}
	gotJSON, _ := json.Marshal(doc)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("document:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	// The signature is Ed25519 over the document without its signature,
	// as documented: checked here with the standard library alone.
	msg, err := doc.message()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(msg, []byte("signature")) || !bytes.HasPrefix(msg, []byte(`{"run":"run-1","workspace":"prod-network",`)) {
		t.Fatalf("signed message %s; want the fields in order without the signature", msg)
	}
	sig, _ := base64.StdEncoding.DecodeString(doc.Signature)
	if !ed25519.Verify(key.Public().(ed25519.PublicKey), msg, sig) {
		t.Fatal("signature does not verify over the canonical message")
	}
}

func TestSignedApprovalOnlyForApprovedRuns(t *testing.T) {
	key := testApprovalKey(1)
	for _, st := range []approval.Status{approval.StatusApproved, approval.StatusQueued, approval.StatusApplying, approval.StatusApplied, approval.StatusAwaitingSignoff} {
		if _, err := NewSignedApproval(approvedRun(st), key, time.Now()); err != nil {
			t.Errorf("%s: %v; want a signed approval", st, err)
		}
	}
	for _, st := range []approval.Status{approval.StatusPendingApproval, approval.StatusRejected, approval.StatusFailed, approval.StatusOutcomeUnknown, approval.StatusCancelled} {
		_, err := NewSignedApproval(approvedRun(st), key, time.Now())
		if approval.ErrorCode(err) != approval.CodeConflict {
			t.Errorf("%s: got %v; want a conflict", st, err)
		}
	}
}

// issue returns a signed approval of an applied run as served.
func issue(t *testing.T, key ed25519.PrivateKey) []byte {
	t.Helper()
	doc, err := NewSignedApproval(approvedRun(approval.StatusApplied), key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	data, err := doc.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestVerifyApproval(t *testing.T) {
	key := testApprovalKey(1)
	pub := key.Public().(ed25519.PublicKey)
	data := issue(t, key)

	// The plan file as the user has it: surrounding whitespace is not part
	// of what was submitted.
	got, err := VerifyApproval(append(data, '\n'), []byte("\n"+testPlan+"\n"), pub)
	if err != nil || got.Run != "run-1" {
		t.Fatalf("VerifyApproval: %+v, %v; want run-1 verified", got, err)
	}
	// The binary plan is compared as it is: no byte of it is whitespace to
	// trim.
	if err := got.CheckPlanFile([]byte(testPlanFile)); err != nil {
		t.Errorf("CheckPlanFile of the approved plan file: %v", err)
	}
	if err := got.CheckPlanFile([]byte(strings.TrimSpace(testPlanFile))); !errors.Is(err, ErrPlanMismatch) {
		t.Errorf("CheckPlanFile of another plan file: %v; want %v", err, ErrPlanMismatch)
	}

	var d SignedApproval
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	reSigned := func(change func(*SignedApproval)) []byte {
		c := d
		change(&c)
		out, err := c.MarshalCanonical()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// A well-formed signature, one bit off: the Ed25519 check itself fails.
	sig, _ := base64.StdEncoding.DecodeString(d.Signature)
	sig[10] ^= 1
	for _, tc := range []struct {
		name string
		doc  []byte
		plan string
		pub  ed25519.PublicKey
		want error
	}{
		{"other plan", data, `{"format_version": "1.2", "resource_changes": [1]}`, pub, ErrPlanMismatch},
		{"other workspace", reSigned(func(c *SignedApproval) { c.Workspace = "staging-app" }), testPlan, pub, ErrBadSignature},
		{"other plan hash", reSigned(func(c *SignedApproval) { c.PlanSHA256 = plan.Hash([]byte("{}")) }), "{}", pub, ErrBadSignature},
		{"plan file hash dropped", reSigned(func(c *SignedApproval) { c.PlanFileSHA256 = "" }), testPlan, pub, ErrBadSignature},
		{"approver dropped", reSigned(func(c *SignedApproval) { c.Approvers = c.Approvers[:1] }), testPlan, pub, ErrBadSignature},
		{"signature altered", reSigned(func(c *SignedApproval) { c.Signature = base64.StdEncoding.EncodeToString(sig) }), testPlan, pub, ErrBadSignature},
		{"other key", data, testPlan, testApprovalKey(2).Public().(ed25519.PublicKey), ErrBadSignature},
		{"field re-cased", bytes.Replace(data, []byte(`"workspace"`), []byte(`"Workspace"`), 1), testPlan, pub, ErrBadSignature},
		{"re-formatted", mustIndent(t, data), testPlan, pub, ErrBadSignature},
		{"not JSON", []byte("nope"), testPlan, pub, ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyApproval(tc.doc, []byte(tc.plan), tc.pub)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v; want %v", err, tc.want)
			}
		})
	}
}

func mustIndent(t *testing.T, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, data, "", "  "); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestApprovalKeyEndpoint: the public key is served without a token; a
// gateway without an approval key says so on both endpoints (before
// Temporal is asked anything).
func TestApprovalKeyEndpoint(t *testing.T) {
	cfg, err := config.Parse([]byte(`
users:
  - {id: alice, email: alice@example.com, roles: [approver], groups: [platform], token: t-alice}
workspaces:
  - name: ws
    rules: [{name: r, approvers: {groups: [platform]}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	key := testApprovalKey(3)
	get := func(h http.Handler, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer t-alice")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	req := httptest.NewRequest(http.MethodGet, "/api/v1/approval-key", nil)
	rec := httptest.NewRecorder()
	New(Options{Config: cfg, Logger: zap.NewNop(), ApprovalKey: key}).ServeHTTP(rec, req)
	var info ApprovalKeyInfo
	if err := json.Unmarshal(rec.Body.Bytes(), &info); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("approval-key: %d %s", rec.Code, rec.Body)
	}
	pub := key.Public().(ed25519.PublicKey)
	if info.PublicKey != base64.StdEncoding.EncodeToString(pub) || info.KeyID != KeyID(pub) || info.Algorithm != "ed25519" {
		t.Errorf("approval-key: got %+v; want key %s", info, KeyID(pub))
	}

	without := New(Options{Config: cfg, Logger: zap.NewNop()})
	for _, path := range []string{"/api/v1/approval-key", "/api/v1/workspaces/ws/runs/run-1/approval"} {
		rec := get(without, path)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "GATEHOUSE_APPROVAL_KEY") {
			t.Errorf("%s without a key: got %d %s; want 503 naming GATEHOUSE_APPROVAL_KEY", path, rec.Code, rec.Body)
		}
	}
}
