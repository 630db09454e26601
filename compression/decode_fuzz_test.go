package compression

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// FuzzDecode feeds Decode what anyone may post to the gateway's
// /codec/decode: any bytes under either compressed encoding. It must
// never panic nor read past MaxSize, and whatever it does decode must
// survive a round trip through Encode unchanged.
func FuzzDecode(f *testing.F) {
	var c Codec
	for _, p := range []*commonpb.Payload{realPayload(f), {
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)},
		Data:     []byte(`{"decision_id":"d-1","status":"approved"}`),
	}} {
		enc, err := c.Encode([]*commonpb.Payload{p})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(true, enc[0].GetData())
		f.Add(true, enc[0].GetData()[:len(enc[0].GetData())/2])
		b, _ := proto.Marshal(p)
		f.Add(false, deflated(f, b))
	}
	f.Add(true, []byte{0x78, 0xbb, 0x1f, 0xfd, 0x81, 0xfb})
	f.Add(false, []byte("not zlib at all"))
	f.Fuzz(func(t *testing.T, primed bool, data []byte) {
		encoding := Encoding
		if primed {
			encoding = EncodingDict
		}
		in := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(encoding)}, Data: data}
		out, err := c.Decode([]*commonpb.Payload{in})
		if err != nil {
			return
		}
		if proto.Size(out[0]) > MaxSize+16 {
			t.Fatalf("decoded %d bytes, past MaxSize", proto.Size(out[0]))
		}
		again, err := c.Encode(out)
		if err != nil {
			t.Fatalf("re-encode of a decoded payload: %v", err)
		}
		back, err := c.Decode(again)
		if err != nil || !proto.Equal(back[0], out[0]) {
			t.Fatalf("round trip of a decoded payload changed it (err %v)", err)
		}
	})
}
