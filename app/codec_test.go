package app

import (
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/compression"
	"github.com/gatehouse-dev/gatehouse/encryption"
)

// Every process that loads a config compresses its payloads, under
// encryption when keys are set; GATEHOUSE_PAYLOAD_COMPRESSION=off only
// stops writing them compressed.
func TestPayloadCodecOfAProcess(t *testing.T) {
	load := func(t *testing.T) (*parts, error) {
		return loadParts(Options{ConfigPath: "../examples/gatehouse.yaml", DataDir: t.TempDir(), Logger: zap.NewNop()})
	}
	t.Run("default", func(t *testing.T) {
		p, err := load(t)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.codec) != 1 {
			t.Fatalf("%d codecs; want compression alone", len(p.codec))
		}
		if c, ok := p.codec[0].(*compression.Codec); !ok || c.DecodeOnly {
			t.Errorf("codec %#v; want compression that writes", p.codec[0])
		}
	})
	t.Run("encrypted", func(t *testing.T) {
		key, _ := encryption.Generate("k1")
		t.Setenv(encryption.EnvKeys, key)
		p, err := load(t)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.codec) != 2 {
			t.Fatalf("%d codecs; want encryption, then compression", len(p.codec))
		}
		if _, ok := p.codec[0].(*encryption.Codec); !ok {
			t.Errorf("outermost codec %T; want encryption (ciphertext does not compress)", p.codec[0])
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Setenv(EnvPayloadCompression, "off")
		p, err := load(t)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := p.codec[0].(*compression.Codec); !ok || !c.DecodeOnly {
			t.Errorf("codec %#v; want compression that only reads", p.codec[0])
		}
	})
	t.Run("misspelt", func(t *testing.T) {
		t.Setenv(EnvPayloadCompression, "no")
		if _, err := load(t); err == nil || !strings.Contains(err.Error(), EnvPayloadCompression) {
			t.Errorf("load with %s=no: %v; want an error naming it", EnvPayloadCompression, err)
		}
	})
}

func TestCodecEndpointOfTheEmbeddedUI(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080/codec",
		"0.0.0.0:9090":   "http://127.0.0.1:9090/codec",
		":8080":          "http://127.0.0.1:8080/codec",
		"[::1]:8080":     "http://[::1]:8080/codec",
		"127.0.0.1:0":    "", // picked when the gateway listens
		"":               "",
	} {
		if got := codecEndpoint(addr); got != want {
			t.Errorf("codecEndpoint(%q) = %q; want %q", addr, got, want)
		}
	}
}
