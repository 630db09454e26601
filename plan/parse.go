// Package plan reads Terraform/OpenTofu JSON plans (`show -json` output) into
// Gatehouse's plan summary and keeps the submitted bytes, addressed by their
// SHA-256, so the apply step can run exactly the plan that was approved.
package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	tfjson "github.com/hashicorp/terraform-json"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// Hash returns the hex SHA-256 of data: a plan's identity.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Parse validates a JSON plan and summarizes what it does to managed
// resources. Attribute values are never copied into the summary. A plan that
// Terraform marked as errored, or whose format version this library does not
// know, is refused.
func Parse(data []byte) (approval.Plan, error) {
	if trimmed := bytes.TrimSpace(data); len(trimmed) == 0 || trimmed[0] != '{' {
		return approval.Plan{}, errors.New("expected a JSON object from `terraform show -json`")
	}
	// terraform-json does not model "errored"; Terraform sets it on plans that
	// failed part-way, and such a plan must never be approved.
	var head struct {
		Errored bool `json:"errored"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return approval.Plan{}, fmt.Errorf("decode plan: %w", err)
	}
	if head.Errored {
		return approval.Plan{}, errors.New("the plan is marked errored: fix the plan before asking for approval")
	}
	var p tfjson.Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return approval.Plan{}, fmt.Errorf("decode plan: %w", err)
	}
	var resources []approval.Resource
	for i, rc := range p.ResourceChanges {
		if rc == nil || rc.Mode == tfjson.DataResourceMode {
			continue
		}
		if rc.Change == nil {
			return approval.Plan{}, fmt.Errorf("resource_changes[%d] (%s): missing change", i, rc.Address)
		}
		action, ok := classify(rc.Change.Actions)
		if !ok {
			continue // no-op, read or forget: nothing to approve
		}
		resources = append(resources, approval.Resource{
			Address:  rc.Address,
			Type:     rc.Type,
			Provider: rc.ProviderName,
			Actions:  []approval.Action{action},
		})
	}
	return approval.Summarize(Hash(data), resources), nil
}

// classify maps Terraform's action list to the one action Gatehouse counts.
func classify(a tfjson.Actions) (approval.Action, bool) {
	switch {
	case a.Replace():
		return approval.ActionReplace, true
	case a.Create():
		return approval.ActionCreate, true
	case a.Update():
		return approval.ActionUpdate, true
	case a.Delete():
		return approval.ActionDelete, true
	}
	return "", false
}
