// Package compression is a Temporal payload codec that deflates what
// Gatehouse hands Temporal: run inputs, activity inputs and results, Update
// arguments, the run's result. They are JSON, repeat themselves (a run's
// context in each audit entry, the plan summary in the input and the
// result) and shrink to about a third, and every byte of them is written to
// the history, read back by every replay and held in the server's caches.
//
// Compressed payloads are zlib streams marked "binary/zlib", the format of
// the Go SDK's converter.NewZlibCodec, so any Temporal client with that
// codec (a script, `temporal` behind a codec server) reads them. Payloads
// below MinSize, and those that would not shrink, are left as they are,
// readable in the Temporal Web UI without a codec server.
package compression

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"sync"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Encoding is the metadata encoding of a compressed payload: the SDK's.
const Encoding = "binary/zlib"

// MinSize is the smallest encoded payload worth compressing: below it the
// zlib header and the metadata that names the encoding eat the gain.
const MinSize = 256

// MaxSize bounds what a payload may inflate to, so that a crafted one
// posted to the gateway's /codec/decode cannot exhaust its memory.
// Temporal refuses payloads larger than its blob limit (2 MiB by default)
// before compression is anyone's concern; 64 MiB leaves room for plans
// that compress well above that limit.
const MaxSize = 64 << 20

// Codec compresses payloads. Its zero value is ready to use; it is safe for
// concurrent use. Writers and readers are pooled: a zlib writer allocates
// its whole compression state (hundreds of KiB) when it is made, which,
// made afresh for every payload, cost more CPU than the bytes saved.
type Codec struct {
	// DecodeOnly makes Encode pass payloads through: for the step of a
	// rolling upgrade in which some processes cannot read compressed
	// payloads yet. Decode works either way.
	DecodeOnly bool

	writers sync.Pool // *zlib.Writer
	readers sync.Pool // io.ReadCloser that is a zlib.Resetter
}

var _ converter.PayloadCodec = (*Codec)(nil)

// Encode compresses each payload that is at least MinSize bytes encoded and
// shrinks; the others pass through.
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
		if len(packed) >= len(plain) {
			out[i] = p
			continue
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding)},
			Data:     packed,
		}
	}
	return out, nil
}

func (c *Codec) deflate(plain []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(plain) / 2)
	w, _ := c.writers.Get().(*zlib.Writer)
	if w == nil {
		var err error
		// BestSpeed: JSON shrinks nearly as much as at the default level,
		// for a fraction of the time.
		if w, err = zlib.NewWriterLevel(&buf, zlib.BestSpeed); err != nil {
			return nil, err
		}
	} else {
		w.Reset(&buf)
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
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		plain, err := c.inflate(p.GetData())
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

func (c *Codec) inflate(data []byte) ([]byte, error) {
	src := bytes.NewReader(data)
	r, _ := c.readers.Get().(io.ReadCloser)
	if r == nil {
		var err error
		if r, err = zlib.NewReader(src); err != nil {
			return nil, err
		}
	} else if err := r.(zlib.Resetter).Reset(src, nil); err != nil {
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
