package tests

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/compression"
)

// TestPayloadsAreCompressedInHistory: a whole run (start, two approvals,
// apply, notices) leaves its large payloads compressed in Temporal's
// history, read here raw with a client that has no codec; the finished
// run still reads whole from its result, and an admin reads any payload
// through the gateway's /codec, as the Temporal Web UI does.
func TestPayloadsAreCompressedInHistory(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "approve", "t-bob", map[string]string{"comment": "checked the NAT gateway swap"}, http.StatusOK)
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
	s.trail(run, "t-victor", approval.AuditApplied)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	iter := s.temporal.GetDefaultClient().GetWorkflowHistory(ctx, run.ID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var input, result *commonpb.Payload
	stored, plain, compressed := 0, 0, 0
	var codec compression.Codec
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if raw, _ := proto.Marshal(e); bytes.Contains(raw, []byte("checked the NAT gateway swap")) {
			t.Errorf("history event %d (%s) holds the comment uncompressed", e.EventId, e.EventType)
		}
		if a := e.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			input = a.GetInput().GetPayloads()[0]
		}
		if a := e.GetWorkflowExecutionCompletedEventAttributes(); a != nil {
			result = a.GetResult().GetPayloads()[0]
		}
		for _, p := range append(e.GetActivityTaskScheduledEventAttributes().GetInput().GetPayloads(),
			e.GetWorkflowExecutionCompletedEventAttributes().GetResult().GetPayloads()...) {
			if string(p.Metadata["encoding"]) != compression.EncodingDict {
				// Small payloads that do not shrink stay readable.
				if proto.Size(p) >= 256 {
					t.Errorf("event %d (%s) has a payload of %d bytes encoded %q", e.EventId, e.EventType, proto.Size(p), p.Metadata["encoding"])
				}
				continue
			}
			compressed++
			stored += proto.Size(p)
			inner, err := codec.Decode([]*commonpb.Payload{p})
			if err != nil {
				t.Fatalf("event %d: %v", e.EventId, err)
			}
			plain += proto.Size(inner[0])
		}
	}
	if input == nil || string(input.Metadata["encoding"]) != compression.EncodingDict || result == nil || compressed < 3 {
		t.Fatalf("start input encoded %q, a result: %v, %d compressed activity inputs and results; want the input, the result and both decisions' notices compressed",
			input.GetMetadata()["encoding"], result != nil, compressed)
	}
	if stored*2 > plain {
		t.Errorf("activity inputs and the result take %d bytes compressed, %d plain; want at most half", stored, plain)
	}

	// The finished run reads from its compressed result.
	if got := s.get(run); got.Status != approval.StatusApplied || len(got.Decisions) != 2 || got.Decisions[0].Comment != "checked the NAT gateway swap" {
		t.Errorf("finished run read back as %s with decisions %+v", got.Status, got.Decisions)
	}

	// The codec endpoint decodes for admins, without any payload keys.
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{input}})
	r := s.call("POST", "/codec/decode", "t-erin", body)
	if r.status != http.StatusOK {
		t.Fatalf("decode as erin: %d %s", r.status, r.body)
	}
	var out commonpb.Payloads
	if err := protojson.Unmarshal(r.body, &out); err != nil || len(out.Payloads) != 1 {
		t.Fatalf("decode answer %s: %v", r.body, err)
	}
	var in struct {
		RequestedBy approval.Identity `json:"requested_by"`
	}
	if err := json.Unmarshal(out.Payloads[0].Data, &in); err != nil || in.RequestedBy.ID != "alice" {
		t.Errorf("decoded start input %s: %v", out.Payloads[0].Data, err)
	}
	if r := s.call("POST", "/codec/decode", "t-bob", body); r.status != http.StatusForbidden {
		t.Errorf("decode as bob (no admin): %d; want 403", r.status)
	}
	// A crafted stream that inflates past the codec's bound is refused as
	// bad input, not read into the gateway's memory.
	var bomb bytes.Buffer
	w, _ := zlib.NewWriterLevel(&bomb, zlib.BestCompression)
	zeros := make([]byte, 1<<20)
	for range compression.MaxSize>>20 + 1 {
		w.Write(zeros)
	}
	w.Close()
	bombBody, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{{
		Metadata: map[string][]byte{"encoding": []byte(compression.Encoding)}, Data: bomb.Bytes()}}})
	if r := s.call("POST", "/codec/decode", "t-erin", bombBody); r.status != http.StatusUnprocessableEntity {
		t.Errorf("a payload inflating past %d MiB: %d %s; want 422", compression.MaxSize>>20, r.status, r.body)
	}
}
