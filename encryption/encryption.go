// Package encryption encrypts what Gatehouse hands Temporal - run inputs,
// Update arguments and results, activity inputs and results: plan summaries,
// comments, identities - with AES-256-GCM before it leaves the process, so
// Temporal's database holds only ciphertext. It is a Temporal payload codec:
// every client and worker of a deployment uses the same keys, and the
// gateway's /codec endpoint lets authorised operators read payloads in the
// Temporal Web UI.
//
// Search attributes are not payloads a codec sees: the workspace, status,
// requester and pending approvers stay readable by Temporal's visibility,
// which lists runs by them.
package encryption

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// EnvKeys names the environment variable holding the keys:
// comma-separated id:base64 pairs of 32-byte keys, the one that encrypts
// first. Older keys after it still decrypt, so a key rotates by putting a
// new one first and dropping the old one once no payload needs it.
const EnvKeys = "GATEHOUSE_PAYLOAD_KEYS"

// The metadata an encrypted payload carries.
const (
	// MetadataEncoding marks a payload this codec encrypted.
	MetadataEncoding = "binary/encrypted"
	// MetadataKeyID names the key that encrypted it.
	MetadataKeyID = "encryption-key-id"
	// metadataCipher names the cipher, so it can change.
	metadataCipher = "encryption-cipher"
	cipherName     = "AES-256-GCM"
)

// ErrUnknownKey is a payload encrypted with a key this process lacks.
var ErrUnknownKey = errors.New("encrypted with a key this process does not have")

// Codec is the payload codec. Its zero value is unusable: use Parse.
type Codec struct {
	ids   []string
	aeads map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// Parse reads keys in EnvKeys's format.
func Parse(list string) (*Codec, error) {
	c := &Codec{aeads: map[string]cipher.AEAD{}}
	for i, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, b64, ok := strings.Cut(item, ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("%s: key %d: want id:base64-of-32-bytes", EnvKeys, i+1)
		}
		if _, dup := c.aeads[id]; dup {
			return nil, fmt.Errorf("%s: key id %q is given twice", EnvKeys, id)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%s: key %q: want the base64 of 32 random bytes (openssl rand -base64 32)", EnvKeys, id)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", EnvKeys, id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", EnvKeys, id, err)
		}
		c.ids = append(c.ids, id)
		c.aeads[id] = aead
	}
	if len(c.ids) == 0 {
		return nil, fmt.Errorf("%s: no key given", EnvKeys)
	}
	return c, nil
}

// Generate returns a new key in EnvKeys's format.
func Generate(id string) (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate payload key: %w", err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}

// DataConverter is Temporal's default converter with this codec under it.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// Encode encrypts each payload, whole (its metadata too), with the first
// key. The key id is bound into the ciphertext as additional data, so a
// payload cannot be passed off as another key's.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	id := c.ids[0]
	aead := c.aeads[id]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("encrypt payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(MetadataEncoding),
				MetadataKeyID:              []byte(id),
				metadataCipher:             []byte(cipherName),
			},
			Data: aead.Seal(nonce, nonce, plain, []byte(id)),
		}
	}
	return out, nil
}

// Decode decrypts the payloads this codec encrypted and passes every other
// one through as it is (payloads written before encryption was turned on).
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != MetadataEncoding {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			return nil, fmt.Errorf("decrypt payload: key %q: %w", id, ErrUnknownKey)
		}
		if alg := string(p.GetMetadata()[metadataCipher]); alg != cipherName {
			return nil, fmt.Errorf("decrypt payload: cipher %q: want %s", alg, cipherName)
		}
		data := p.GetData()
		if len(data) < aead.NonceSize()+aead.Overhead() {
			return nil, errors.New("decrypt payload: too short to be a ciphertext")
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(id))
		if err != nil {
			return nil, fmt.Errorf("decrypt payload with key %q: %w", id, err)
		}
		var decoded commonpb.Payload
		if err := proto.Unmarshal(plain, &decoded); err != nil {
			return nil, fmt.Errorf("decrypt payload: %w", err)
		}
		out[i] = &decoded
	}
	return out, nil
}
