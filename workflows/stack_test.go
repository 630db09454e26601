package workflows_test

import (
	"reflect"
	"testing"

	"github.com/gatehouse-dev/gatehouse/workflows"
)

// TestRunKeepsItsFrameSmall checks that the run workflow takes its input
// and returns its result by pointer. The SDK calls Run through reflection,
// and its frames stay on a waiting run's goroutine for as long as the run
// waits: by value, the input and the result kept that goroutine's stack at
// 32 KiB, twice what it needs, for every run in a worker's cache
// (`gatehouse bench --waiting` measures it). The JSON on the wire is the
// same either way.
func TestRunKeepsItsFrameSmall(t *testing.T) {
	run := reflect.TypeOf(workflows.Runner{}.Run)
	if in := run.In(1); in.Kind() != reflect.Pointer || in.Elem() != reflect.TypeOf(workflows.RunInput{}) {
		t.Errorf("Run takes %v; want *workflows.RunInput", in)
	}
	if out := run.Out(0); out.Kind() != reflect.Pointer {
		t.Errorf("Run returns %v; want a pointer", out)
	}
}
