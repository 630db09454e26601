package gateway

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// SignedApproval is the document a pipeline gets for an approved run and
// checks before it applies (gate-only workspaces apply outside Gatehouse):
// which plan was approved, in which workspace, by whom, signed with the
// gateway's Ed25519 approval key.
//
// The signed message is the document's canonical encoding: compact JSON
// (Go's encoding/json, HTML characters not escaped) with the fields in the
// order below and without "signature". The document as issued is that
// same encoding with "signature" (base64 of the 64-byte Ed25519 signature)
// as its last field. VerifyApproval insists on that exact form, so what a
// pipeline reads from the file is byte for byte what was signed: a field
// added, re-ordered, duplicated or re-cased is refused, not ignored.
type SignedApproval struct {
	Run       string `json:"run"`
	Workspace string `json:"workspace"`
	// PlanSHA256 is the hex SHA-256 of the plan JSON as submitted.
	PlanSHA256 string `json:"plan_sha256"`
	// PlanFileSHA256 is the hex SHA-256 of the binary plan (plan -out),
	// when the run has one: the file the pipeline should apply.
	PlanFileSHA256 string `json:"plan_file_sha256,omitempty"`
	// Approvers are the approvals that stand (revoked ones are left out).
	Approvers  []SignedApprover `json:"approvers"`
	ApprovedAt time.Time        `json:"approved_at"`
	IssuedAt   time.Time        `json:"issued_at"`
	// KeyID names the signing key: the first 8 bytes of the SHA-256 of its
	// public key, in hex.
	KeyID     string `json:"key_id"`
	Signature string `json:"signature,omitempty"`
}

// SignedApprover is one standing approval of a reason.
type SignedApprover struct {
	UserID   approval.UserID `json:"user_id"`
	Email    string          `json:"email,omitempty"`
	ReasonID string          `json:"reason_id"`
	At       time.Time       `json:"at"`
	// Bypassed marks the approvals an admin's bypass gave.
	Bypassed bool `json:"bypassed,omitempty"`
}

// Verification failures, told apart so a pipeline can say which it was.
var (
	ErrBadSignature = errors.New("approval signature is not valid for this public key")
	ErrPlanMismatch = errors.New("plan is not the approved plan")
)

// signable lists the statuses in which a run has been approved and stays
// so: approved (and, in a gate-only workspace, done), queued for the apply
// lock, applying, applied, and awaiting sign-off after apply.
var signable = []approval.Status{
	approval.StatusApproved, approval.StatusQueued, approval.StatusApplying,
	approval.StatusApplied, approval.StatusAwaitingSignoff,
}

// KeyID names an approval key by its public half.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// NewSignedApproval issues the signed approval of run at now. It refuses
// (409) a run that is not, or no longer, approved.
func NewSignedApproval(run approval.Run, key ed25519.PrivateKey, now time.Time) (SignedApproval, error) {
	if !slices.Contains(signable, run.Status) {
		return SignedApproval{}, approval.Errorf(approval.CodeConflict, "run %s is %s: only approved runs have a signed approval", run.ID, run.Status)
	}
	doc := SignedApproval{
		Run: run.ID, Workspace: run.Workspace, PlanSHA256: run.Plan.SHA256,
		Approvers: standingApprovals(run), ApprovedAt: approvedAt(run).UTC(), IssuedAt: now.UTC(),
		KeyID: KeyID(key.Public().(ed25519.PublicKey)),
	}
	if run.Origin != nil {
		doc.PlanFileSHA256 = run.Origin.PlanFileSHA256
	}
	msg, err := doc.message()
	if err != nil {
		return SignedApproval{}, err
	}
	doc.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg))
	return doc, nil
}

// standingApprovals lists every approval not revoked, reason by reason.
func standingApprovals(run approval.Run) []SignedApprover {
	out := []SignedApprover{}
	for _, reason := range run.Reasons {
		for _, a := range reason.Approvals {
			if a.RevokedAt == nil {
				out = append(out, SignedApprover{UserID: a.UserID, Email: a.Email, ReasonID: reason.ID, At: a.At.UTC(), Bypassed: a.Bypassed})
			}
		}
	}
	return out
}

// approvedAt is when the last approval the apply waited for was given: the
// run's creation (or its policy evaluation) when nothing before apply
// needed anyone.
func approvedAt(run approval.Run) time.Time {
	at := run.CreatedAt
	if run.Policy != nil && run.Policy.EvaluatedAt.After(at) {
		at = run.Policy.EvaluatedAt
	}
	for _, reason := range run.Reasons {
		if reason.Stage == approval.StagePostApply {
			continue
		}
		for _, a := range reason.Approvals {
			if a.RevokedAt == nil && a.At.After(at) {
				at = a.At
			}
		}
	}
	return at
}

// message is the canonical encoding the signature covers: the document
// without its signature.
func (d SignedApproval) message() ([]byte, error) {
	d.Signature = ""
	return d.encode()
}

// encode is the document's canonical encoding, signature included when set.
func (d SignedApproval) encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("encode approval: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// MarshalCanonical is the document as issued: its canonical encoding.
func (d SignedApproval) MarshalCanonical() ([]byte, error) { return d.encode() }

// VerifyApproval checks a signed approval document (as issued) against the
// approval key's public half and the plan JSON a pipeline is about to
// apply: the signature must be valid (ErrBadSignature otherwise) and the
// SHA-256 of the plan, with surrounding whitespace trimmed as `gatehouse
// start` submits it, must be the approved one (ErrPlanMismatch). It
// returns the verified document.
func VerifyApproval(doc, planJSON []byte, pub ed25519.PublicKey) (SignedApproval, error) {
	d, err := verifySignature(doc, pub)
	if err != nil {
		return SignedApproval{}, err
	}
	if got := plan.Hash(bytes.TrimSpace(planJSON)); got != d.PlanSHA256 {
		return d, fmt.Errorf("%w: its sha256 is %s; run %s approved %s", ErrPlanMismatch, got, d.Run, d.PlanSHA256)
	}
	return d, nil
}

// CheckPlanFile reports whether data, a binary plan about to be applied,
// is the one the verified approval names (ErrPlanMismatch otherwise).
func (d SignedApproval) CheckPlanFile(data []byte) error {
	if d.PlanFileSHA256 == "" {
		return fmt.Errorf("%w: run %s was approved without a binary plan", ErrPlanMismatch, d.Run)
	}
	if got := plan.Hash(data); got != d.PlanFileSHA256 {
		return fmt.Errorf("%w: the plan file's sha256 is %s; run %s approved %s", ErrPlanMismatch, got, d.Run, d.PlanFileSHA256)
	}
	return nil
}

// verifySignature decodes doc and checks that it is in canonical form and
// signed by pub.
func verifySignature(doc []byte, pub ed25519.PublicKey) (SignedApproval, error) {
	if len(pub) != ed25519.PublicKeySize {
		return SignedApproval{}, fmt.Errorf("public key: %d bytes; want %d", len(pub), ed25519.PublicKeySize)
	}
	raw := bytes.TrimSpace(doc)
	var d SignedApproval
	if err := json.Unmarshal(raw, &d); err != nil {
		return SignedApproval{}, fmt.Errorf("%w: not an approval document: %v", ErrBadSignature, err)
	}
	if want := KeyID(pub); d.KeyID != want {
		return SignedApproval{}, fmt.Errorf("%w: signed by key %s; the public key given is %s", ErrBadSignature, d.KeyID, want)
	}
	sig, err := base64.StdEncoding.DecodeString(d.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return SignedApproval{}, fmt.Errorf("%w: signature is not base64 of %d bytes", ErrBadSignature, ed25519.SignatureSize)
	}
	issued, err := d.encode()
	if err != nil {
		return SignedApproval{}, err
	}
	if !bytes.Equal(issued, raw) {
		return SignedApproval{}, fmt.Errorf("%w: document is not as issued (re-formatted, or fields added or changed)", ErrBadSignature)
	}
	msg, err := d.message()
	if err != nil {
		return SignedApproval{}, err
	}
	if !ed25519.Verify(pub, msg, sig) {
		return SignedApproval{}, ErrBadSignature
	}
	return d, nil
}

// ApprovalKeyInfo is what GET /api/v1/approval-key answers: the public half
// of the approval key, for `gatehouse verify --url`.
type ApprovalKeyInfo struct {
	Algorithm string `json:"algorithm"` // always "ed25519"
	KeyID     string `json:"key_id"`
	// PublicKey is base64 (standard, padded) of the 32-byte public key.
	PublicKey string `json:"public_key"`
}

// errNoApprovalKey answers when the gateway was started without a key.
func errNoApprovalKey() error {
	return echo.NewHTTPError(http.StatusServiceUnavailable,
		"signed approvals are not configured on this gateway: set GATEHOUSE_APPROVAL_KEY")
}

// getApproval issues the signed approval of an approved run to those who
// may read it.
func (s *server) getApproval(c echo.Context) error {
	if s.ApprovalKey == nil {
		return errNoApprovalKey()
	}
	run, err := s.readRun(c)
	if err != nil {
		return err
	}
	doc, err := NewSignedApproval(run, s.ApprovalKey, time.Now())
	if err != nil {
		return err
	}
	data, err := doc.MarshalCanonical()
	if err != nil {
		return err
	}
	// Served byte for byte as signed, so the file a client saves verifies.
	return c.JSONBlob(http.StatusOK, data)
}

// getApprovalKey serves the approval key's public half. It needs no token:
// a public key is public, and verifiers may have none.
func (s *server) getApprovalKey(c echo.Context) error {
	if s.ApprovalKey == nil {
		return errNoApprovalKey()
	}
	pub := s.ApprovalKey.Public().(ed25519.PublicKey)
	return c.JSON(http.StatusOK, ApprovalKeyInfo{Algorithm: "ed25519", KeyID: KeyID(pub), PublicKey: base64.StdEncoding.EncodeToString(pub)})
}
