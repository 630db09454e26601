// Package signing lets the gateway vouch for what it sends the run workflow.
// Anyone who reaches Temporal (its Web UI, its CLI, any SDK client) can start
// a workflow or send an Update with whatever actor they like; the workflow
// therefore counts only what carries a signature made with a key the gateway
// and the worker share. Keys come from the environment, never from workflow
// input or history, and may be rotated: the first key signs, every key
// verifies, so a new key is added in front, rolled out, and the old one
// dropped later.
package signing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// EnvKeys is the environment variable holding the keys: comma-separated,
// the signing key first.
const EnvKeys = "GATEHOUSE_SIGNING_KEYS"

// MinKeyLength is the shortest key accepted: 32 characters, so a key has at
// least as many bits as the HMAC-SHA256 it feeds when it is hex or base64.
const MinKeyLength = 32

// MaxAge is how long a signature is good for. A decision is signed just
// before it is sent; one older than this is a replay or a clock far off.
const MaxAge = 10 * time.Minute

// version prefixes every signature, so the scheme can change.
const version = "v1"

// Keys is a non-empty list of shared keys. The zero value signs and verifies
// nothing.
type Keys struct {
	keys [][]byte
	ids  []string
}

// Parse reads a comma-separated list of keys.
func Parse(list string) (*Keys, error) {
	k := &Keys{}
	for i, raw := range strings.Split(list, ",") {
		key := strings.TrimSpace(raw)
		if key == "" {
			continue
		}
		if len(key) < MinKeyLength {
			return nil, fmt.Errorf("%s: key %d is %d characters: at least %d are required", EnvKeys, i+1, len(key), MinKeyLength)
		}
		k.keys = append(k.keys, []byte(key))
		k.ids = append(k.ids, keyID([]byte(key)))
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("%s: no key given: set it to a random string of at least %d characters (e.g. openssl rand -hex 32)", EnvKeys, MinKeyLength)
	}
	return k, nil
}

// Generate returns a new random key, for a development data dir.
func Generate() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate signing key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// keyID names a key without revealing it.
func keyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("gatehouse-key-id:"), key...))
	return hex.EncodeToString(sum[:4])
}

// Sign returns the signature of payload under the first key.
func (k *Keys) Sign(payload []byte) string {
	return version + ":" + k.ids[0] + ":" + hex.EncodeToString(mac(k.keys[0], payload))
}

// ErrUnsigned and ErrBadSignature are what Verify reports.
var (
	ErrUnsigned     = errors.New("not signed by the gateway")
	ErrBadSignature = errors.New("signature does not verify with any key of this worker")
)

// Verify reports whether sig is a signature of payload under one of the
// keys.
func (k *Keys) Verify(payload []byte, sig string) error {
	if sig == "" {
		return ErrUnsigned
	}
	parts := strings.Split(sig, ":")
	if len(parts) != 3 || parts[0] != version {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(parts[2])
	if err != nil {
		return ErrBadSignature
	}
	for i, key := range k.keys {
		if k.ids[i] == parts[1] && hmac.Equal(got, mac(key, payload)) {
			return nil
		}
	}
	return ErrBadSignature
}

func mac(key, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(payload)
	return h.Sum(nil)
}

// Derive returns a key for another purpose (the web UI's session cookies),
// derived from the signing key: every gateway sharing the signing keys
// derives the same one, and it reveals nothing of the signing key. Rotating
// the signing key rotates it too.
func (k *Keys) Derive(purpose string) []byte {
	return mac(k.keys[0], []byte("gatehouse-derive:"+purpose))
}
