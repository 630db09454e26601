// Package tofutest finds the OpenTofu binary that tests plan and apply
// with. No package ships one: .ci/tofu.sh builds it from its Go module
// source and prints its path.
package tofutest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binary returns the absolute path of the OpenTofu binary: $GATEHOUSE_TOFU,
// else `tofu` on PATH. Without one the test is skipped — except in CI
// (CI=true), where a missing binary is a failure: CI must not pass by
// skipping what it is there to test.
func Binary(tb testing.TB) string {
	tb.Helper()
	if path := os.Getenv("GATEHOUSE_TOFU"); path != "" {
		abs, err := exec.LookPath(path)
		if err != nil {
			tb.Fatalf("GATEHOUSE_TOFU=%s: %v", path, err)
		}
		if abs, err = filepath.Abs(abs); err != nil {
			tb.Fatal(err)
		}
		return abs
	}
	if path, err := exec.LookPath("tofu"); err == nil {
		if abs, err := filepath.Abs(path); err == nil {
			return abs
		}
	}
	const msg = "no OpenTofu binary: set GATEHOUSE_TOFU or put tofu on PATH; build it with .ci/tofu.sh"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}
