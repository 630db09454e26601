package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/encryption"
)

// TestPayloadsAreEncryptedAtRest: with payload keys set, a whole run (start,
// approvals with comments, apply, notices) leaves only ciphertext in
// Temporal's history - read here with a client that has no keys - and an
// admin can still read it through the gateway's /codec, as the Temporal Web
// UI does.
func TestPayloadsAreEncryptedAtRest(t *testing.T) {
	key, err := encryption.Generate("test-1")
	if err != nil {
		t.Fatal(err)
	}
	codec, err := encryption.Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, stackOptions{codec: codec, workspaces: "temporal_ui_url: http://127.0.0.1:8233\n"})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "approve", "t-bob", map[string]string{"comment": "checked the NAT gateway swap"}, http.StatusOK)
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
	s.trail(run, "t-victor", approval.AuditApplied)

	// The raw history, through a client without the keys.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	iter := s.temporal.GetDefaultClient().GetWorkflowHistory(ctx, run.ID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var input *commonpb.Payload
	encrypted := 0
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := proto.Marshal(e)
		for _, secret := range []string{"checked the NAT gateway swap", "alice@example.com", "bob@example.com", run.Plan.SHA256} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("history event %d (%s) holds %q in the clear", e.EventId, e.EventType, secret)
			}
		}
		if a := e.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			input = a.GetInput().GetPayloads()[0]
		}
		for _, p := range append(e.GetActivityTaskScheduledEventAttributes().GetInput().GetPayloads(),
			e.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetInput().GetArgs().GetPayloads()...) {
			if string(p.Metadata["encoding"]) == encryption.MetadataEncoding {
				encrypted++
			} else {
				t.Errorf("event %d (%s) has a payload encoded %q", e.EventId, e.EventType, p.Metadata["encoding"])
			}
		}
	}
	if input == nil || string(input.Metadata["encoding"]) != encryption.MetadataEncoding || encrypted < 4 {
		t.Fatalf("start input %v, %d encrypted activity and Update payloads; want all encrypted", input, encrypted)
	}

	// The codec endpoint: admins only, from the Web UI's origin.
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{input}})
	r := s.call("POST", "/codec/decode", "t-erin", body, "Origin", "http://127.0.0.1:8233")
	if r.status != http.StatusOK {
		t.Fatalf("decode as erin: %d %s", r.status, r.body)
	}
	var out commonpb.Payloads
	if err := protojson.Unmarshal(r.body, &out); err != nil || len(out.Payloads) != 1 {
		t.Fatalf("decode answer %s: %v", r.body, err)
	}
	var in struct {
		Workspace struct {
			Name string `json:"name"`
		} `json:"workspace"`
		RequestedBy approval.Identity `json:"requested_by"`
	}
	if err := json.Unmarshal(out.Payloads[0].Data, &in); err != nil || in.Workspace.Name != "prod-network" || in.RequestedBy.ID != "alice" {
		t.Errorf("decoded start input %s: %v", out.Payloads[0].Data, err)
	}
	if r.header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
		t.Errorf("CORS: Allow-Origin %q; want the Web UI's origin", r.header.Get("Access-Control-Allow-Origin"))
	}
	for token, want := range map[string]int{"t-bob": http.StatusForbidden, "": http.StatusUnauthorized} {
		if r := s.call("POST", "/codec/decode", token, body); r.status != want {
			t.Errorf("decode as %q: %d; want %d", token, r.status, want)
		}
	}
	if r := s.call("POST", "/codec/decode", "t-erin", []byte(`{"payloads": 7}`)); r.status != http.StatusBadRequest || !strings.HasPrefix(r.errorMessage(t), "body") {
		t.Errorf("a malformed body: %d %s; want 400 naming the body", r.status, r.body)
	}
	other, _ := encryption.Generate("other")
	foreign, _ := encryption.Parse(other)
	alien, _ := foreign.Encode([]*commonpb.Payload{{Data: []byte("x")}})
	alienBody, _ := protojson.Marshal(&commonpb.Payloads{Payloads: alien})
	if r := s.call("POST", "/codec/decode", "t-erin", alienBody); r.status != http.StatusUnprocessableEntity {
		t.Errorf("a payload of an unknown key: %d %s; want 422", r.status, r.body)
	}
	pre := s.call("OPTIONS", "/codec/decode", "", nil, "Origin", "http://127.0.0.1:8233", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type,x-namespace")
	if pre.status >= 300 || pre.header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
		t.Errorf("preflight: %d, Allow-Origin %q", pre.status, pre.header.Get("Access-Control-Allow-Origin"))
	}
	if evil := s.call("OPTIONS", "/codec/decode", "", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST"); evil.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin is allowed: %q", evil.header.Get("Access-Control-Allow-Origin"))
	}
}
