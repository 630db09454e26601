// Package compression is a Temporal payload codec that deflates what
// Gatehouse hands Temporal: run inputs, activity inputs and results, Update
// arguments, the run's result. They are JSON, repeat themselves (a run's
// context in each audit entry, the plan summary in the input and the
// result) and shrink to about a third, and every byte of them is written to
// the history, read back by every replay and held in the server's caches.
//
// Compressed payloads are zlib streams primed with a preset dictionary,
// Gatehouse's vocabulary (vocabulary.jsonl), and marked EncodingDict. Most
// payloads are small JSON documents whose bytes are mostly field names and
// enum values that a stream of their own has no earlier copy of: primed,
// a recorded two-approval run's payloads take a quarter less than in plain
// zlib streams (TestDictionaryShrinksARealRunsPayloads), and the small ones
// (Update results, local activity markers) shrink at all. Payloads the Go
// SDK's converter.NewZlibCodec wrote, and Gatehouse before the dictionary,
// are plain zlib marked Encoding; Decode reads both. Payloads below MinSize, and those that
// would not shrink, are left as they are, readable in the Temporal Web UI
// without a codec server.
package compression

import (
	"bytes"
	"compress/zlib"
	_ "embed"
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"io"
	"strings"
	"sync"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Encoding is the metadata encoding of a plain zlib payload: the SDK's,
// and what Gatehouse wrote before its dictionary. It is read, not written.
const Encoding = "binary/zlib"

// EncodingDict is the metadata encoding of a payload compressed with a
// preset dictionary; the stream's header names the dictionary by its
// Adler-32 (RFC 1950's DICTID), so a later dictionary can be added beside
// this one without renaming the encoding.
const EncodingDict = "binary/zlib-dict"

// MinSize is the smallest encoded payload worth compressing: below it the
// zlib header and the metadata that names the encoding eat the gain.
const MinSize = 64

// MaxSize bounds what a payload may inflate to, so that a crafted one
// posted to the gateway's /codec/decode cannot exhaust its memory.
// Temporal refuses payloads larger than its blob limit (2 MiB by default)
// before compression is anyone's concern; 64 MiB leaves room for plans
// that compress well above that limit.
const MaxSize = 64 << 20

// level is the deflate level. Go's BestSpeed ignores a preset dictionary;
// the default level costs tens of microseconds on payloads of a few KiB.
const level = zlib.DefaultCompression

// vocabulary is the JSON of two recorded runs' payloads (the start input,
// notices, decisions, the apply's result, the run's result, local activity
// markers) with every name, id, time and number blanked: what stays is
// Gatehouse's field names and enum values. It is frozen: payloads written
// with it name it, and every later Gatehouse must still read them.
//
//go:embed vocabulary.jsonl
var vocabulary string

// dictionary is the vocabulary as the preset dictionary: each document as
// the serialized payload the JSON converter makes of it, so that the
// payload a stream holds matches it from its first byte. The bytes are
// written field by field in protobuf's wire format (Payload: metadata = 1,
// a map entry of key = 1 and value = 2; data = 2), not by proto.Marshal,
// whose output a later protobuf release may order differently: the
// dictionary must stay byte for byte what older payloads were primed with.
func dictionary() []byte {
	var dict []byte
	for _, doc := range strings.Split(strings.TrimSpace(vocabulary), "\n") {
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, converter.MetadataEncoding)
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendString(entry, converter.MetadataEncodingJSON)
		dict = protowire.AppendTag(dict, 1, protowire.BytesType)
		dict = protowire.AppendBytes(dict, entry)
		dict = protowire.AppendTag(dict, 2, protowire.BytesType)
		dict = protowire.AppendString(dict, doc)
	}
	return dict
}

// Codec compresses payloads. Its zero value is ready to use; it is safe for
// concurrent use. Writers and readers are pooled: a zlib writer allocates
// its whole compression state (hundreds of KiB) when it is made, which,
// made afresh for every payload, cost more CPU than the bytes saved.
type Codec struct {
	// DecodeOnly makes Encode pass payloads through: for the step of a
	// rolling upgrade in which some processes cannot read compressed
	// payloads yet. Decode works either way.
	DecodeOnly bool

	dictOnce sync.Once
	dict     []byte
	dictID   uint32

	writers sync.Pool // *zlib.Writer primed with dict
	readers sync.Pool // io.ReadCloser that is a zlib.Resetter
}

// primed returns the preset dictionary and its id, made on first use so
// that the zero Codec is ready to use.
func (c *Codec) primed() ([]byte, uint32) {
	c.dictOnce.Do(func() {
		c.dict = dictionary()
		c.dictID = adler32.Checksum(c.dict)
	})
	return c.dict, c.dictID
}

var _ converter.PayloadCodec = (*Codec)(nil)

// Encode compresses each payload that is at least MinSize bytes encoded and
// shrinks, counting the metadata that names its encoding; the others pass
// through.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.DecodeOnly {
		return payloads, nil
	}
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("compress payload: %w", err)
		}
		if len(plain) < MinSize {
			out[i] = p
			continue
		}
		packed, err := c.deflate(plain)
		if err != nil {
			return nil, fmt.Errorf("compress payload: %w", err)
		}
		wrapped := &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(EncodingDict)},
			Data:     packed,
		}
		if proto.Size(wrapped) >= len(plain) {
			out[i] = p
			continue
		}
		out[i] = wrapped
	}
	return out, nil
}

func (c *Codec) deflate(plain []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(plain) / 2)
	w, _ := c.writers.Get().(*zlib.Writer)
	if w == nil {
		dict, _ := c.primed()
		var err error
		if w, err = zlib.NewWriterLevelDict(&buf, level, dict); err != nil {
			return nil, err
		}
	} else {
		w.Reset(&buf) // keeps the level and the dictionary
	}
	_, err := w.Write(plain)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	c.writers.Put(w)
	return buf.Bytes(), nil
}

// Decode inflates the payloads this codec (or the SDK's zlib codec)
// compressed and passes every other one through.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		var dict []byte
		switch string(p.GetMetadata()[converter.MetadataEncoding]) {
		case Encoding:
		case EncodingDict:
			var err error
			if dict, err = c.dictionaryOf(p.GetData()); err != nil {
				return nil, fmt.Errorf("decompress payload: %w", err)
			}
		default:
			out[i] = p
			continue
		}
		plain, err := c.inflate(p.GetData(), dict)
		if err != nil {
			return nil, fmt.Errorf("decompress payload: %w", err)
		}
		var inner commonpb.Payload
		if err := proto.Unmarshal(plain, &inner); err != nil {
			return nil, fmt.Errorf("decompress payload: %w", err)
		}
		out[i] = &inner
	}
	return out, nil
}

// dictionaryOf is the preset dictionary a zlib stream's header names
// (RFC 1950: two header bytes, FDICT set in the second, then DICTID).
func (c *Codec) dictionaryOf(data []byte) ([]byte, error) {
	if len(data) < 6 || data[1]&0x20 == 0 {
		return nil, fmt.Errorf("a %s payload names no dictionary", EncodingDict)
	}
	dict, id := c.primed()
	if got := binary.BigEndian.Uint32(data[2:6]); got != id {
		return nil, fmt.Errorf("the payload's dictionary %08x is not one this Gatehouse knows (%08x)", got, id)
	}
	return dict, nil
}

func (c *Codec) inflate(data, dict []byte) ([]byte, error) {
	src := bytes.NewReader(data)
	r, _ := c.readers.Get().(io.ReadCloser)
	if r == nil {
		var err error
		if r, err = zlib.NewReaderDict(src, dict); err != nil {
			return nil, err
		}
	} else if err := r.(zlib.Resetter).Reset(src, dict); err != nil {
		return nil, err
	}
	plain, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	c.readers.Put(r)
	if len(plain) > MaxSize {
		return nil, fmt.Errorf("inflates to more than %d MiB", MaxSize>>20)
	}
	return plain, nil
}

// Chain is codecs applied as one, the first outermost: an encryption codec
// before this one encrypts what it compressed (ciphertext does not
// compress). It is the order converter.NewCodecDataConverter applies them
// in, so the gateway's /codec decodes what the processes wrote.
type Chain []converter.PayloadCodec

var _ converter.PayloadCodec = Chain(nil)

// Encode encodes with the innermost (last) codec first.
func (ch Chain) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	var err error
	for i := len(ch) - 1; i >= 0; i-- {
		if payloads, err = ch[i].Encode(payloads); err != nil {
			return nil, err
		}
	}
	return payloads, nil
}

// Decode decodes with the outermost (first) codec first.
func (ch Chain) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	var err error
	for _, c := range ch {
		if payloads, err = c.Decode(payloads); err != nil {
			return nil, err
		}
	}
	return payloads, nil
}

// DataConverter is Temporal's default converter with the chain under it.
func (ch Chain) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), ch...)
}
