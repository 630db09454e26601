package app

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvApprovalKey holds the gateway's approval key: base64 (standard,
// padded) of a 32-byte Ed25519 seed. Like the signing keys it is a secret,
// so it is read from the environment only, never from a flag.
const EnvApprovalKey = "GATEHOUSE_APPROVAL_KEY"

// approvalKeyFile is where gatehouse dev keeps the key it generated.
const approvalKeyFile = "approval.key"

// loadApprovalKey sets the key the gateway signs approvals with: the
// environment's, else, for a dev data dir, the one kept there (made on
// first start). A cluster gateway without the variable signs nothing (its
// approval endpoints answer 503 saying so): generating a key nobody manages
// would give pipelines a key to trust that changes with the volume it
// lives on.
func (p *parts) loadApprovalKey(devDataDir string) error {
	key, err := ApprovalKey(devDataDir, devDataDir != "")
	if errors.Is(err, errNoApprovalKey) {
		return nil
	}
	p.approvalKey = key
	return err
}

// errNoApprovalKey: neither the environment nor the data dir has a key.
var errNoApprovalKey = errors.New("no approval key: set " + EnvApprovalKey + " (base64 of a 32-byte Ed25519 seed) or start gatehouse dev once with this --data-dir")

// ApprovalKey returns the approval key from EnvApprovalKey or, when that
// is unset, from dataDir's approval.key ("" for none), which is made
// (mode 0600) when create is set and the file does not exist yet.
func ApprovalKey(dataDir string, create bool) (ed25519.PrivateKey, error) {
	if v := os.Getenv(EnvApprovalKey); v != "" {
		key, err := parseApprovalKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvApprovalKey, err)
		}
		return key, nil
	}
	if dataDir == "" {
		return nil, errNoApprovalKey
	}
	path := filepath.Join(dataDir, approvalKeyFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, err := parseApprovalKey(string(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return key, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read approval key: %w", err)
	case !create:
		return nil, errNoApprovalKey
	}
	return createApprovalKey(path)
}

// parseApprovalKey reads base64 of an Ed25519 seed.
func parseApprovalKey(s string) (ed25519.PrivateKey, error) {
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%d bytes; want a %d-byte Ed25519 seed", len(seed), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// createApprovalKey writes a new seed to path and returns its key. The seed
// is written to a temporary file first and linked into place, so a reader
// never sees half a key, and of two processes starting at once the second
// reads the first one's key instead of replacing it.
func createApprovalKey(path string) (ed25519.PrivateKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("generate approval key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".approval-key-*")
	if err != nil {
		return nil, fmt.Errorf("write approval key: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600: the seed is never readable by others.
	_, werr := tmp.WriteString(base64.StdEncoding.EncodeToString(seed) + "\n")
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		return nil, fmt.Errorf("write approval key: %w", errors.Join(werr, cerr))
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return ApprovalKey(dir, false)
	} else if err != nil {
		return nil, fmt.Errorf("write approval key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
