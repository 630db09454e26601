package itsm

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The callbacks decide runs, so their parsers must never panic on what an
// outside system (or someone pretending to be one) posts, and must never
// turn a body into a verdict it does not state. The signature and token
// checks in front of them must never accept what was not signed with the
// secret, or is not the token.

// fuzzSecret is the callback secret the signature targets sign with.
const fuzzSecret = "callback-secret"

// hexHMAC is the header a ServiceNow business rule or a Jira webhook sends.
func hexHMAC(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func addFiles(f *testing.F, files ...string) {
	f.Helper()
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// knownVerdict reports whether v is one of the verdicts a run understands.
func knownVerdict(v Verdict) bool {
	switch v {
	case VerdictNone, VerdictApproved, VerdictRejected, VerdictCancelled:
		return true
	}
	return false
}

func FuzzParseServiceNow(f *testing.F) {
	for _, s := range []string{
		`{"sys_id":"9d385017c611228701d22104cc95c371","number":"CHG0030001","correlation_id":"r-1","approval":"approved","state":"-1","sys_updated_by":"cab","comments":"ok"}`,
		`{"sys_id":"9d38","correlation_id":"r-1","approval":"rejected","state":"4"}`,
		`{"sys_id":"9d38","correlation_id":"r-1","approval":"requested","state":"-4"}`,
		`{"sys_id":"9d38","correlation_id":"r-1","state":"4","approval":"not requested"}`,
		`{"sys_id":"9d38"}`,
		`{"sys_id":1}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, st, err := ParseServiceNow(body)
		cb2, st2, err2 := ParseServiceNow(body)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(cb, cb2) || !reflect.DeepEqual(st, st2) {
			t.Fatalf("not deterministic: %v, then %v", err, err2)
		}
		if err != nil {
			if st != (State{}) {
				t.Fatalf("error %v comes with a state %+v", err, st)
			}
			return
		}
		if cb.SysID == "" || cb.CorrelationID == "" {
			t.Fatalf("accepted a callback no run can be matched to: %+v", cb)
		}
		if !knownVerdict(st.Verdict) {
			t.Fatalf("verdict %q", st.Verdict)
		}
		// The verdict is what the record's own fields say, nothing else.
		if st.Verdict != MapServiceNow(cb.Approval, cb.State) || st.Actor != cb.SysUpdatedBy || st.Comment != cb.Comments {
			t.Fatalf("state %+v does not follow from %+v", st, cb)
		}
	})
}

func FuzzParseJira(f *testing.F) {
	addFiles(f, "testdata/jira-issue-updated.json", "testdata/jira-issue-changelog.json")
	for _, s := range []string{
		`{"webhookEvent":"jira:issue_updated","timestamp":1733150000000,"issue":{"key":"CHG-1","fields":{"labels":["gatehouse-r-1"],"status":{"name":"Approved"}}},"changelog":{"items":[{"field":"status","fromString":"Open"}]}}`,
		`{"issue":{"key":"CHG-1"},"timestamp":-1}`,
		`{"issue":{"key":"CHG-1"},"timestamp":9223372036854775807}`,
		`{"issue":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := ParseJira(body)
		cb2, err2 := ParseJira(body)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(cb, cb2) {
			t.Fatalf("not deterministic: %v, then %v", err, err2)
		}
		if err != nil {
			return
		}
		if cb.IssueKey == "" {
			t.Fatal("accepted a delivery without an issue key")
		}
		// Only a change of status can decide: without one there is no
		// status to map to a verdict.
		if !cb.StatusChange && (cb.From != "" || cb.To != "") {
			t.Fatalf("from %q to %q without a status change", cb.From, cb.To)
		}
		if !cb.Timestamp.IsZero() && cb.Timestamp.Location() != time.UTC {
			t.Fatalf("timestamp %v is not UTC", cb.Timestamp)
		}
	})
}

func FuzzParseWebhookCallback(f *testing.F) {
	for _, s := range []string{
		`{"decision":"approved","actor":"cab@acme.example","comment":"Window 22:00","decided_at":"2026-12-02T15:04:05+01:00"}`,
		`{"decision":"rejected"}`,
		`{"decision":"Approved"}`,
		`{"decision":"approved","decided_at":"today"}`,
		`{"decision":"approved","decided_at":"9999-12-31T23:59:59-23:59"}`,
		`{"decision":["approved"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, st, err := ParseWebhookCallback(body)
		cb2, st2, err2 := ParseWebhookCallback(body)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(cb, cb2) || !reflect.DeepEqual(st, st2) {
			t.Fatalf("not deterministic: %v, then %v", err, err2)
		}
		if err != nil {
			if st != (State{}) {
				t.Fatalf("error %v comes with a state %+v", err, st)
			}
			return
		}
		// Only the two words decide, and each means what it says.
		switch {
		case cb.Decision == "approved" && st.Verdict == VerdictApproved:
		case cb.Decision == "rejected" && st.Verdict == VerdictRejected:
		default:
			t.Fatalf("decision %q became verdict %q", cb.Decision, st.Verdict)
		}
		if !st.DecidedAt.Equal(cb.DecidedAt) || (!cb.DecidedAt.IsZero() && cb.DecidedAt.Location() != time.UTC) {
			t.Fatalf("decided_at %v / %v", cb.DecidedAt, st.DecidedAt)
		}
	})
}

// FuzzVerifyHexHMAC: only the HMAC of these very bytes under this very
// secret verifies. The fuzzer varies the body, a second body and the
// header; the right signature must verify, and no signature of the other
// body, under another secret or any header that is not the right digest.
func FuzzVerifyHexHMAC(f *testing.F) {
	// A real Jira delivery, and the same with its last byte cut: the
	// smallest change of body a signature must notice.
	jira, err := os.ReadFile("testdata/jira-issue-updated.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(jira, jira[:len(jira)-1], hexHMAC(fuzzSecret, jira[:len(jira)-1]))
	f.Add([]byte(`{"sys_id":"9d38","correlation_id":"r-1","approval":"approved"}`), []byte(`{"sys_id":"9d38","correlation_id":"r-1","approval":"rejected"}`), "sha256=00")
	f.Add([]byte(""), []byte(" "), "")
	f.Add([]byte("x"), []byte("x"), "  sha256="+strings.Repeat("A", 64))
	f.Fuzz(func(t *testing.T, body, other []byte, header string) {
		good := hexHMAC(fuzzSecret, body)
		if !VerifyHexHMAC(fuzzSecret, body, good) {
			t.Fatal("the right signature does not verify")
		}
		if VerifyHexHMAC("", body, hexHMAC("", body)) {
			t.Fatal("an empty secret verifies")
		}
		if VerifyHexHMAC("another-secret", body, good) {
			t.Fatal("a signature verifies under another secret")
		}
		if string(other) != string(body) && VerifyHexHMAC(fuzzSecret, body, hexHMAC(fuzzSecret, other)) {
			t.Fatalf("the signature of %q verifies %q", other, body)
		}
		// Whatever header verifies must be the right digest, as hex in
		// either case (hex.DecodeString takes both), around spaces.
		if VerifyHexHMAC(fuzzSecret, body, header) {
			h := strings.TrimSpace(header)
			if !strings.HasPrefix(h, "sha256=") || !strings.EqualFold(h, good) {
				t.Fatalf("header %q verifies; the signature is %q", header, good)
			}
		}
	})
}

// FuzzTokenMatches: a token matches its own digest and no other token's,
// and nothing but its own digest.
func FuzzTokenMatches(f *testing.F) {
	f.Add("tG2v1Zo0yq3S7kYd8Rr0b3zQw1v5gX2nH7uJ9pL4aMc", "tG2v1Zo0yq3S7kYd8Rr0b3zQw1v5gX2nH7uJ9pL4aMd", "")
	f.Add("", "", TokenSHA256(""))
	f.Add("a", "b", strings.ToUpper(TokenSHA256("a")))
	f.Fuzz(func(t *testing.T, token, other, wantHex string) {
		digest := TokenSHA256(token)
		if !TokenMatches(token, digest) {
			t.Fatal("a token does not match its own digest")
		}
		if other != token && TokenMatches(other, digest) {
			t.Fatalf("%q matches the digest of %q", other, token)
		}
		if TokenMatches(token, wantHex) && wantHex != digest {
			t.Fatalf("%q matches %q, not its digest %s", token, wantHex, digest)
		}
	})
}
