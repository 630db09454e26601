package compression

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// realPayload is a plan written by OpenTofu (plan/testdata, from a public
// repository) as the default converter encodes it.
func realPayload(t testing.TB) *commonpb.Payload {
	t.Helper()
	raw, err := os.ReadFile("../plan/testdata/opentofu-requires-replace.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTripShrinksAndRestoresExactly(t *testing.T) {
	var c Codec
	in := realPayload(t)
	enc, err := c.Encode([]*commonpb.Payload{in})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(enc[0].GetMetadata()[converter.MetadataEncoding]); got != EncodingDict {
		t.Fatalf("encoding %q; want %q", got, EncodingDict)
	}
	if plain, packed := proto.Size(in), proto.Size(enc[0]); packed*2 > plain {
		t.Errorf("compressed to %d of %d bytes; want at most half", packed, plain)
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(dec[0], in) {
		t.Error("decoded payload differs from the original")
	}
}

// Ours reads what the SDK's zlib codec wrote (and what Gatehouse wrote
// before its dictionary); the SDK's, which has no dictionary, leaves ours
// as it found them, under an encoding of their own, rather than failing
// mid-stream on a "binary/zlib" it cannot read.
func TestInteroperatesWithTheSDKsZlibCodec(t *testing.T) {
	var ours Codec
	sdk := converter.NewZlibCodec(converter.ZlibCodecOptions{})
	in := realPayload(t)

	mine, err := ours.Encode([]*commonpb.Payload{in})
	if err != nil {
		t.Fatal(err)
	}
	back, err := sdk.Decode(mine)
	if err != nil || back[0] != mine[0] {
		t.Errorf("the SDK's codec changed a payload it cannot read (err %v)", err)
	}
	theirs, err := sdk.Encode([]*commonpb.Payload{in})
	if err != nil {
		t.Fatal(err)
	}
	back, err = ours.Decode(theirs)
	if err != nil || !proto.Equal(back[0], in) {
		t.Errorf("ours decoded the SDK's to a different payload (err %v)", err)
	}
}

func TestSmallAndIncompressiblePayloadsPassThrough(t *testing.T) {
	var c Codec
	small, _ := converter.GetDefaultDataConverter().ToPayload("approve")
	random := &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte("binary/plain")},
		Data:     bytes.Repeat([]byte{0}, 0),
	}
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(i*7919 + i*i*104729>>3)
	}
	random.Data = noise
	out, err := c.Encode([]*commonpb.Payload{small, random})
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != small {
		t.Error("a payload below MinSize was compressed")
	}
	if string(out[1].GetMetadata()[converter.MetadataEncoding]) == Encoding && proto.Size(out[1]) >= proto.Size(random) {
		t.Error("a payload that did not shrink was replaced by a larger one")
	}
	// Payloads of other encodings (older, uncompressed history) decode as
	// they are.
	dec, err := c.Decode([]*commonpb.Payload{small})
	if err != nil || dec[0] != small {
		t.Errorf("an uncompressed payload did not pass through Decode: %v", err)
	}
}

func TestDecodeOnlyWritesPlainButReadsCompressed(t *testing.T) {
	writer, reader := Codec{}, Codec{DecodeOnly: true}
	in := realPayload(t)
	out, err := reader.Encode([]*commonpb.Payload{in})
	if err != nil || out[0] != in {
		t.Fatalf("DecodeOnly compressed a payload (err %v)", err)
	}
	enc, _ := writer.Encode([]*commonpb.Payload{in})
	dec, err := reader.Decode(enc)
	if err != nil || !proto.Equal(dec[0], in) {
		t.Errorf("DecodeOnly could not read a compressed payload: %v", err)
	}
}

// A payload crafted to inflate without bound (posted to /codec/decode,
// say) is refused once it passes MaxSize, not read into memory whole.
func TestRefusesWhatInflatesPastMaxSize(t *testing.T) {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	zeros := make([]byte, 1<<20)
	for range MaxSize>>20 + 1 {
		w.Write(zeros)
	}
	w.Close()
	bomb := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding)}, Data: buf.Bytes()}
	var c Codec
	if _, err := c.Decode([]*commonpb.Payload{bomb}); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("Decode of a %d-byte stream inflating past %d MiB: %v; want refused", buf.Len(), MaxSize>>20, err)
	}
	garbage := &commonpb.Payload{Metadata: bomb.Metadata, Data: []byte("not zlib")}
	if _, err := c.Decode([]*commonpb.Payload{garbage}); err == nil {
		t.Error("Decode of a payload that is not zlib succeeded")
	}
	// The pool is still good after the failures.
	in := realPayload(t)
	enc, _ := c.Encode([]*commonpb.Payload{in})
	if dec, err := c.Decode(enc); err != nil || !proto.Equal(dec[0], in) {
		t.Errorf("round trip after refusals: %v", err)
	}
}

// Pooled writers and readers are shared by every goroutine of a worker.
func TestConcurrentUse(t *testing.T) {
	var c Codec
	in := realPayload(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				enc, err := c.Encode([]*commonpb.Payload{in})
				if err != nil {
					t.Error(err)
					return
				}
				dec, err := c.Decode(enc)
				if err != nil || !proto.Equal(dec[0], in) {
					t.Errorf("round trip: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestChainEncryptsWhatItCompressed(t *testing.T) {
	outer := markCodec("binary/outer")
	chain := Chain{outer, &Codec{}}
	in := realPayload(t)
	enc, err := chain.Encode([]*commonpb.Payload{in})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(enc[0].GetMetadata()[converter.MetadataEncoding]); got != "binary/outer" {
		t.Fatalf("outermost encoding %q; want the first codec's", got)
	}
	dec, err := chain.Decode(enc)
	if err != nil || !proto.Equal(dec[0], in) {
		t.Errorf("chain round trip: %v", err)
	}
	// The same order as the SDK's data converter applies them.
	dc := chain.DataConverter()
	p, err := dc.ToPayload(map[string]string{"comment": strings.Repeat("checked the NAT swap; ", 20)})
	if err != nil || string(p.GetMetadata()[converter.MetadataEncoding]) != "binary/outer" {
		t.Fatalf("data converter: %v %v", p.GetMetadata(), err)
	}
	inner, err := outer.Decode([]*commonpb.Payload{p})
	if err != nil || string(inner[0].GetMetadata()[converter.MetadataEncoding]) != EncodingDict {
		t.Errorf("under the outer codec: %v; want a compressed payload", err)
	}
}

// markCodec wraps payloads whole in one marked with encoding, as an
// encryption codec does.
type markCodec string

func (m markCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		b, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(m)}, Data: b}
	}
	return out, nil
}

func (m markCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != string(m) {
			out[i] = p
			continue
		}
		var inner commonpb.Payload
		if err := proto.Unmarshal(p.GetData(), &inner); err != nil {
			return nil, err
		}
		out[i] = &inner
	}
	return out, nil
}

func BenchmarkEncodeDecode(b *testing.B) {
	var c Codec
	in := realPayload(b)
	b.ReportAllocs()
	for b.Loop() {
		enc, err := c.Encode([]*commonpb.Payload{in})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSDKZlibEncodeDecode(b *testing.B) {
	c := converter.NewZlibCodec(converter.ZlibCodecOptions{})
	in := realPayload(b)
	b.ReportAllocs()
	for b.Loop() {
		enc, err := c.Encode([]*commonpb.Payload{in})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// The dictionary is frozen: payloads in histories name it by its Adler-32,
// and every later Gatehouse must read them. An edit of vocabulary.jsonl (or
// of how the dictionary is made from it) fails here; a new vocabulary goes
// beside this one, under a new id.
func TestDictionaryIsFrozen(t *testing.T) {
	const want = 0x1ffd81fb
	var c Codec
	dict, id := c.primed()
	if id != want {
		t.Errorf("dictionary id %08x; want %08x", id, want)
	}
	if len(dict) > 32<<10 {
		t.Errorf("dictionary of %d bytes; deflate's window uses only the last 32 KiB", len(dict))
	}
	for _, name := range []string{"alice", "bob", "carol", "example.com", "prod-network", "platform"} {
		if strings.Contains(vocabulary, name) {
			t.Errorf("the vocabulary holds %q, a name from the tests: it is to hold Gatehouse's words only", name)
		}
	}
	// A stream primed with another dictionary, or with none, is refused
	// with an error that says so.
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevelDict(&buf, zlib.DefaultCompression, []byte(`{"other":"dictionary"}`))
	w.Write([]byte(`{"other":"dictionary","payload":true}`))
	w.Close()
	for name, data := range map[string][]byte{"another dictionary": buf.Bytes(), "no dictionary": deflated(t, []byte("plain"))} {
		_, err := c.Decode([]*commonpb.Payload{{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(EncodingDict)}, Data: data}})
		if err == nil || !strings.Contains(err.Error(), "dictionary") {
			t.Errorf("%s: %v; want an error naming the dictionary", name, err)
		}
	}
}

// deflated is b in a plain zlib stream at the default level.
func deflated(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// historyPayloads are the payloads of a recorded run's history, each as the
// JSON converter made it (decoded, if the history was written compressed).
func historyPayloads(t testing.TB, file string) []*commonpb.Payload {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var found []*commonpb.Payload
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		if p, ok := m.Interface().(*commonpb.Payload); ok {
			found = append(found, p)
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					walk(v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message())
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				walk(v.Message())
			}
			return true
		})
	}
	for _, e := range h.Events {
		walk(e.ProtoReflect())
	}
	var c Codec
	decoded, err := c.Decode(found)
	if err != nil {
		t.Fatal(err)
	}
	return decoded
}

// A real run's payloads (a two-approval run that applied, recorded by the
// end-to-end stack and not among the runs the vocabulary was made from)
// take at least a fifth less primed than in plain zlib streams, and small
// ones, which plain zlib could not shrink, shrink too.
func TestDictionaryShrinksARealRunsPayloads(t *testing.T) {
	payloads := historyPayloads(t, "../workflows/testdata/history-lean4-two-approvals-apply.json")
	var c Codec
	plain, zlibbed, primed, small := 0, 0, 0, 0
	for _, p := range payloads {
		b, _ := proto.Marshal(p)
		plain += len(b)
		z := proto.Size(&commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding)}, Data: deflated(t, b)})
		zlibbed += min(z, len(b))
		enc, err := c.Encode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatal(err)
		}
		primed += proto.Size(enc[0])
		if len(b) < 256 && proto.Size(enc[0]) < len(b) {
			small++
		}
		dec, err := c.Decode(enc)
		if err != nil || !proto.Equal(dec[0], p) {
			t.Fatalf("round trip of a %d-byte payload: %v", len(b), err)
		}
	}
	t.Logf("%d payloads: %d bytes plain, %d in zlib streams, %d primed; %d small ones shrank", len(payloads), plain, zlibbed, primed, small)
	if primed*5 > zlibbed*4 {
		t.Errorf("primed %d bytes; want at most 4/5 of plain zlib's %d", primed, zlibbed)
	}
	if small < 4 {
		t.Errorf("%d payloads under 256 bytes shrank; want the markers and Update results to", small)
	}
}

func BenchmarkEncodeDecodeRun(b *testing.B) {
	var c Codec
	payloads := historyPayloads(b, "../workflows/testdata/history-lean4-two-approvals-apply.json")
	b.ReportAllocs()
	for b.Loop() {
		enc, err := c.Encode(payloads)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// The dictionary's documents are framed as the payloads the JSON converter
// makes, byte for byte what proto.Marshal writes for them today.
func TestDictionaryFramesDocumentsAsPayloads(t *testing.T) {
	var want []byte
	for _, doc := range strings.Split(strings.TrimSpace(vocabulary), "\n") {
		p, err := converter.GetDefaultDataConverter().ToPayload(json.RawMessage(doc))
		if err != nil {
			t.Fatal(err)
		}
		b, err := proto.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, b...)
	}
	if got := dictionary(); !bytes.Equal(got, want) {
		t.Errorf("dictionary of %d bytes differs from the %d bytes of its documents as payloads", len(got), len(want))
	}
}
