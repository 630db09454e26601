package signing

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSignVerifyAndRotate(t *testing.T) {
	oldKey, newKey := strings.Repeat("a", 32), strings.Repeat("b", 40)
	old, err := Parse(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := Parse(newKey + ", " + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("approve run-1 by bob")
	sigOld := old.Sign(payload)
	if err := rotated.Verify(payload, sigOld); err != nil {
		t.Errorf("a signature by the old key must verify during rotation: %v", err)
	}
	sigNew := rotated.Sign(payload)
	if err := old.Verify(payload, sigNew); !errors.Is(err, ErrBadSignature) {
		t.Errorf("old-only worker verifying a new-key signature: got %v; want ErrBadSignature", err)
	}
	if err := rotated.Verify([]byte("approve run-1 by mallory"), sigNew); !errors.Is(err, ErrBadSignature) {
		t.Errorf("altered payload: got %v; want ErrBadSignature", err)
	}
	if err := rotated.Verify(payload, ""); !errors.Is(err, ErrUnsigned) {
		t.Errorf("no signature: got %v; want ErrUnsigned", err)
	}
	for _, bad := range []string{"v1:zz:00", "v2:" + sigNew[3:], "v1", sigNew + "00"} {
		if err := rotated.Verify(payload, bad); err == nil {
			t.Errorf("Verify(%q) = nil; want an error", bad)
		}
	}
}

func TestParseRefusesWeakOrMissingKeys(t *testing.T) {
	for _, in := range []string{"", " , ", "short"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = nil error; want one", in)
		}
	}
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(k); err != nil {
		t.Errorf("a generated key must parse: %v", err)
	}
}

func TestDeriveIsStablePerPurposeAndKey(t *testing.T) {
	a, _ := Parse("0123456789abcdef0123456789abcdef")
	b, _ := Parse("0123456789abcdef0123456789abcdef,fedcba9876543210fedcba9876543210")
	c, _ := Parse("fedcba9876543210fedcba9876543210")
	if !bytes.Equal(a.Derive("session"), b.Derive("session")) {
		t.Error("the same signing key derives different session keys")
	}
	if bytes.Equal(a.Derive("session"), a.Derive("other")) || bytes.Equal(a.Derive("session"), c.Derive("session")) {
		t.Error("derived keys do not depend on purpose and key")
	}
	if bytes.Contains(a.Derive("session"), []byte("0123456789abcdef")) || len(a.Derive("session")) != 32 {
		t.Error("a derived key is not a 32-byte MAC")
	}
}
