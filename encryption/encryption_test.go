package encryption

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func newCodec(t *testing.T, ids ...string) (*Codec, []string) {
	t.Helper()
	var keys []string
	for _, id := range ids {
		k, err := Generate(id)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	c, err := Parse(strings.Join(keys, ","))
	if err != nil {
		t.Fatal(err)
	}
	return c, keys
}

func TestRoundTripHidesThePlaintext(t *testing.T) {
	c, _ := newCodec(t, "k1")
	p, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"comment": "checked the NAT swap", "user": "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc[0].Data, []byte("NAT swap")) || bytes.Contains(enc[0].Data, []byte("bob@")) {
		t.Fatal("the ciphertext contains the plaintext")
	}
	if string(enc[0].Metadata["encoding"]) != MetadataEncoding || string(enc[0].Metadata[MetadataKeyID]) != "k1" {
		t.Fatalf("metadata %v", enc[0].Metadata)
	}
	again, _ := c.Encode([]*commonpb.Payload{p})
	if bytes.Equal(again[0].Data, enc[0].Data) {
		t.Error("two encryptions of one payload are equal: the nonce is not fresh")
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := converter.GetDefaultDataConverter().FromPayload(dec[0], &got); err != nil || got["comment"] != "checked the NAT swap" {
		t.Fatalf("decoded %v, %v", got, err)
	}
}

func TestRotationAndRefusals(t *testing.T) {
	old, oldKeys := newCodec(t, "2026-01")
	p, _ := converter.GetDefaultDataConverter().ToPayload("run input")
	byOld, _ := old.Encode([]*commonpb.Payload{p})

	// A new key first, the old one after it: new payloads use the new key,
	// old ones still decrypt.
	newKey, _ := Generate("2026-06")
	rotated, err := Parse(newKey + "," + oldKeys[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Decode(byOld); err != nil {
		t.Errorf("the rotated codec cannot read the old key's payload: %v", err)
	}
	byNew, _ := rotated.Encode([]*commonpb.Payload{p})
	if string(byNew[0].Metadata[MetadataKeyID]) != "2026-06" {
		t.Errorf("rotated codec encrypts with %s", byNew[0].Metadata[MetadataKeyID])
	}
	if _, err := old.Decode(byNew); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("a codec without the new key: %v; want ErrUnknownKey", err)
	}

	tampered := []*commonpb.Payload{{Metadata: byOld[0].Metadata, Data: append([]byte{}, byOld[0].Data...)}}
	tampered[0].Data[len(tampered[0].Data)-1] ^= 1
	if _, err := old.Decode(tampered); err == nil {
		t.Error("a tampered ciphertext decrypted")
	}
	// Relabelled as another key's: the id is authenticated.
	_, otherKeys := newCodec(t, "x")
	both, _ := Parse(otherKeys[0] + "," + oldKeys[0])
	relabelled := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte(MetadataEncoding), MetadataKeyID: []byte("x"), metadataCipher: []byte(cipherName)}, Data: byOld[0].Data}}
	if _, err := both.Decode(relabelled); err == nil {
		t.Error("a payload relabelled with another key id decrypted")
	}
	if _, err := old.Decode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte(MetadataEncoding), MetadataKeyID: []byte("2026-01"), metadataCipher: []byte(cipherName)}, Data: []byte("short")}}); err == nil {
		t.Error("a too-short ciphertext decrypted")
	}
	// Plain payloads (written before encryption) pass through.
	if got, err := old.Decode([]*commonpb.Payload{p}); err != nil || got[0] != p {
		t.Errorf("plain payload: %v %v", got, err)
	}
}

func TestParseRefusesBadKeys(t *testing.T) {
	good, _ := Generate("a")
	for _, list := range []string{"", " , ", "nokey", ":" + strings.SplitN(good, ":", 2)[1], "a:bm90LTMyLWJ5dGVz", "a:!!!", good + "," + good} {
		if _, err := Parse(list); err == nil {
			t.Errorf("Parse(%q) took it", list)
		}
	}
}
