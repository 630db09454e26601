// Package plan reads Terraform/OpenTofu JSON plans (`show -json` output) into
// Gatehouse's plan summary and keeps the submitted bytes, addressed by their
// SHA-256, so the apply step can run exactly the plan that was approved.
//
// Parse fails closed: a change whose actions it cannot classify is an error,
// never a silent no-op, because a change Gatehouse does not count is a change
// no rule asks anyone about.
package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// Hash returns the hex SHA-256 of data: a plan's identity.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// document is the part of a plan Parse reads. Changes are kept raw and only
// long enough to be classified and digested: their values never leave Parse.
// The rest of the plan
// (planned_values, prior_state, configuration) is checked for JSON syntax but
// not decoded, which keeps a 50,000-resource plan fast to read.
type document struct {
	FormatVersion string `json:"format_version"`
	// terraform-json does not model "errored"; Terraform sets it on plans
	// that failed part-way, and such a plan must never be approved.
	Errored         bool              `json:"errored"`
	ResourceChanges []resourceChange  `json:"resource_changes"`
	DeferredChanges []json.RawMessage `json:"deferred_changes"`
	// Each invocation is decoded twice: for what it is, and for its digest.
	ActionInvocations []json.RawMessage `json:"action_invocations"`
}

type resourceChange struct {
	Address         string              `json:"address"`
	PreviousAddress string              `json:"previous_address"`
	Mode            tfjson.ResourceMode `json:"mode"`
	Type            string              `json:"type"`
	ProviderName    string              `json:"provider_name"`
	// Change is decoded on its own, keeping numbers as written, for its
	// digest (see change).
	Change json.RawMessage `json:"change"`
}

// change is what a resource change's digest covers, and how the digest
// encodes it: a JSON object whose fields come out in this order and whose
// values' maps come out with sorted keys. Numbers are kept as written.
type change struct {
	// Actions are kept as listed: a delete-then-create is another change
	// than a create-then-delete.
	Actions         []string `json:"actions"`
	Before          any      `json:"before"`
	After           any      `json:"after"`
	AfterUnknown    any      `json:"after_unknown"`
	BeforeSensitive any      `json:"before_sensitive"`
	AfterSensitive  any      `json:"after_sensitive"`
	Importing       any      `json:"importing"`
	// The identities (Terraform 1.12+) say which remote object the change
	// is about; another object is another change.
	BeforeIdentity any `json:"before_identity"`
	AfterIdentity  any `json:"after_identity"`
	// PreviousAddress is not part of the change object in the plan; it is
	// copied in from the resource change.
	PreviousAddress string `json:"previous_address"`
}

// invocation is what Gatehouse lists of one of action_invocations
// (Terraform 1.14 actions; terraform-json's ActionInvocation).
type invocation struct {
	Address      string `json:"address"`
	Type         string `json:"type"`
	ProviderName string `json:"provider_name"`
}

// invocationValues is what an invocation's digest covers: its configuration
// and what triggers it.
type invocationValues struct {
	ConfigValues           any `json:"config_values"`
	ConfigSensitive        any `json:"config_sensitive"`
	ConfigUnknown          any `json:"config_unknown"`
	LifecycleActionTrigger any `json:"lifecycle_action_trigger"`
	InvokeActionTrigger    any `json:"invoke_action_trigger"`
}

// Parse validates a JSON plan and lists what it does: every managed resource
// change and every action invocation, with the Gatehouse actions it implies
// and a digest of its values. Attribute values, sensitive ones included, go
// into the digests and nowhere else.
//
// Refused: a plan Terraform marked errored; a format version terraform-json
// does not support; a change with no, unknown or contradictory actions; and a
// plan with deferred changes (see checkDeferred).
func Parse(data []byte) (approval.Plan, error) {
	if trimmed := bytes.TrimSpace(data); len(trimmed) == 0 || trimmed[0] != '{' {
		return approval.Plan{}, errors.New("expected a JSON object from `terraform show -json`")
	}
	var doc document
	if err := json.Unmarshal(data, &doc); err != nil {
		return approval.Plan{}, fmt.Errorf("decode plan: %w", err)
	}
	if doc.Errored {
		return approval.Plan{}, errors.New("the plan is marked errored: fix the plan before asking for approval")
	}
	// terraform-json owns the list of format versions it can read.
	if err := (&tfjson.Plan{FormatVersion: doc.FormatVersion}).Validate(); err != nil {
		return approval.Plan{}, err
	}
	if err := checkDeferred(doc.DeferredChanges); err != nil {
		return approval.Plan{}, err
	}
	resources, err := resources(doc)
	if err != nil {
		return approval.Plan{}, err
	}
	return approval.Summarize(Hash(data), resources), nil
}

// checkDeferred refuses plans with deferred changes (Terraform's
// -allow-deferral, experimental). Terraform does not apply a deferred change
// with the plan that defers it, so counting it would ask for approval of
// something else than what is applied; leaving it out would approve a plan
// whose real effect needs a second plan that nobody has seen. The JSON of
// deferrals is still experimental too, so Gatehouse fails closed: such a
// plan is a 400 until it can be planned without deferral.
func checkDeferred(deferred []json.RawMessage) error {
	if len(deferred) == 0 {
		return nil
	}
	return fmt.Errorf("the plan defers %d change(s) (deferred_changes): Gatehouse approves only complete plans; plan again without -allow-deferral", len(deferred))
}

// resources lists the plan's resource changes, then its action invocations.
func resources(doc document) ([]approval.Resource, error) {
	out := make([]approval.Resource, 0, len(doc.ResourceChanges)+len(doc.ActionInvocations))
	for i := range doc.ResourceChanges {
		r, ok, err := resource(&doc.ResourceChanges[i])
		if err != nil {
			return nil, fmt.Errorf("resource_changes[%d] (%s): %w", i, doc.ResourceChanges[i].Address, err)
		}
		if ok {
			out = append(out, r)
		}
	}
	for i, raw := range doc.ActionInvocations {
		r, err := invoked(raw)
		if err != nil {
			return nil, fmt.Errorf("action_invocations[%d] (%s): %w", i, r.Address, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// resource turns one resource change into what Gatehouse approves; ok is
// false for data sources and for changes that do nothing (no-op or read with
// neither import nor move).
func resource(rc *resourceChange) (r approval.Resource, ok bool, err error) {
	if rc.Mode == tfjson.DataResourceMode {
		return approval.Resource{}, false, nil
	}
	if rc.Address == "" {
		return approval.Resource{}, false, errors.New("missing address")
	}
	if !present(rc.Change) {
		return approval.Resource{}, false, errors.New("missing change")
	}
	var c change
	if err := decodeNumbers(rc.Change, &c); err != nil {
		return approval.Resource{}, false, fmt.Errorf("decode change: %w", err)
	}
	actions, err := classify(c.Actions)
	if err != nil {
		return approval.Resource{}, false, err
	}
	if c.Importing != nil {
		actions = append(actions, approval.ActionImport)
	}
	moved := rc.PreviousAddress != "" && rc.PreviousAddress != rc.Address
	if moved {
		actions = append(actions, approval.ActionMove)
	}
	if len(actions) == 0 {
		return approval.Resource{}, false, nil
	}
	c.PreviousAddress = rc.PreviousAddress
	d, err := digest(c)
	if err != nil {
		return approval.Resource{}, false, err
	}
	r = approval.Resource{Address: rc.Address, Type: rc.Type, Provider: rc.ProviderName, Actions: actions, Digest: d}
	if moved {
		r.PreviousAddress = rc.PreviousAddress
	}
	return r, true, nil
}

// classify maps Terraform's action list to Gatehouse's actions by what the
// list contains, in either order: create with delete is a replace, create
// with forget is both (OpenTofu's forget-then-create as much as Terraform's
// create-then-forget). no-op and read alone need no approval. Anything else
// is refused rather than guessed at.
func classify(actions []string) ([]approval.Action, error) {
	if len(actions) == 0 {
		return nil, errors.New("cannot classify actions []: the list is empty")
	}
	for _, a := range actions {
		if !known(a) {
			return nil, fmt.Errorf("cannot classify actions %s: unknown action %q", quoted(actions), a)
		}
	}
	sorted := slices.Sorted(slices.Values(actions))
	switch strings.Join(sorted, ",") {
	case "no-op", "read":
		return nil, nil
	case "create":
		return []approval.Action{approval.ActionCreate}, nil
	case "update":
		return []approval.Action{approval.ActionUpdate}, nil
	case "delete":
		return []approval.Action{approval.ActionDelete}, nil
	case "forget":
		return []approval.Action{approval.ActionForget}, nil
	case "create,delete":
		return []approval.Action{approval.ActionReplace}, nil
	case "create,forget":
		return []approval.Action{approval.ActionCreate, approval.ActionForget}, nil
	}
	return nil, fmt.Errorf("cannot classify actions %s", quoted(actions))
}

// known reports whether a is an action string of the plan format.
func known(a string) bool {
	switch tfjson.Action(a) {
	case tfjson.ActionNoop, tfjson.ActionCreate, tfjson.ActionRead, tfjson.ActionUpdate, tfjson.ActionDelete, tfjson.ActionForget:
		return true
	}
	return false
}

// quoted prints an action list as the plan does: ["update","delete"].
func quoted(actions []string) string {
	q := make([]string, len(actions))
	for i, a := range actions {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// present reports whether a raw field was given and is not null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// invoked turns an action invocation into what Gatehouse approves.
func invoked(raw json.RawMessage) (approval.Resource, error) {
	var inv invocation
	if err := json.Unmarshal(raw, &inv); err != nil {
		return approval.Resource{}, fmt.Errorf("decode invocation: %w", err)
	}
	r := approval.Resource{Address: inv.Address, Type: inv.Type, Provider: inv.ProviderName, Actions: []approval.Action{approval.ActionInvoke}}
	if inv.Address == "" {
		return r, errors.New("missing address")
	}
	var values invocationValues
	if err := decodeNumbers(raw, &values); err != nil {
		return r, fmt.Errorf("decode invocation: %w", err)
	}
	d, err := digest(values)
	if err != nil {
		return r, err
	}
	r.Digest = d
	return r, nil
}

// decodeNumbers decodes a raw JSON value into v keeping numbers as written
// (json.Number), so that a digest sees 1.10 and 1.1 as the different texts
// they are, and no large integer is rounded into another.
func decodeNumbers(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// digest returns the hex SHA-256 of v encoded as canonical JSON: struct
// fields in their fixed order, map keys sorted, no whitespace, numbers as
// written. Key order and formatting in the plan do not change a digest; any
// value does, down to one character of a policy document. Absent and null
// are the same.
func digest(v any) (string, error) {
	h := sha256.New()
	enc := json.NewEncoder(h)
	// Either escaping is canonical, but it must never change: say which.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
