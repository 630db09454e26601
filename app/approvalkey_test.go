package app

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestApprovalKey: the environment's key wins; without it a dev data dir
// gets one key, made once with mode 0600, and nothing is made when create
// is off.
func TestApprovalKey(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvApprovalKey, "")
	if _, err := ApprovalKey(dir, false); !errors.Is(err, errNoApprovalKey) {
		t.Fatalf("no key, create off: %v; want %v", err, errNoApprovalKey)
	}
	if _, err := os.Stat(filepath.Join(dir, approvalKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key file was made with create off: %v", err)
	}
	first, err := ApprovalKey(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, approvalKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", info, err)
	}
	again, err := ApprovalKey(dir, true)
	if err != nil || !first.Equal(again) {
		t.Fatalf("second load: %v; want the same key", err)
	}

	seed := bytes.Repeat([]byte{9}, ed25519.SeedSize)
	t.Setenv(EnvApprovalKey, base64.StdEncoding.EncodeToString(seed))
	fromEnv, err := ApprovalKey(dir, true)
	if err != nil || !fromEnv.Equal(ed25519.NewKeyFromSeed(seed)) {
		t.Fatalf("from the environment: %v; want the seed's key", err)
	}
	t.Setenv(EnvApprovalKey, base64.StdEncoding.EncodeToString(seed[:16]))
	if _, err := ApprovalKey(dir, true); err == nil {
		t.Fatal("a 16-byte seed was accepted")
	}
}
