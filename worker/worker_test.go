package worker

import (
	"runtime/debug"
	"testing"
)

// TestBuildIDNamesTheCode: a release names its tasks by its version, a
// build from a checkout by its commit, and a binary that knows neither
// leaves the SDK's checksum.
func TestBuildIDNamesTheCode(t *testing.T) {
	checkout := func(version, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: version}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "9251202c0ffee5d4a1b2c3d4e5f60718293a4b5c"},
			{Key: "vcs.modified", Value: modified},
		}}
	}
	for name, c := range map[string]struct {
		info *debug.BuildInfo
		want string
	}{
		"release": {&debug.BuildInfo{Main: debug.Module{Version: "v0.5.0"}}, "v0.5.0"},
		// Go 1.24 and later derive the main module's version from the
		// checkout: a pseudo-version, or the tag of a tagged commit.
		"checkout":      {checkout("v0.0.0-20261204201953-9251202c0ffe", "false"), "9251202c0ffe"},
		"local changes": {checkout("v0.0.0-20261204201953-9251202c0ffe+dirty", "true"), "9251202c0ffe-dirty"},
		"tagged commit": {checkout("v0.5.0", "false"), "v0.5.0"},
		"older Go":      {checkout("(devel)", "false"), "9251202c0ffe"},
		"by commit":     {&debug.BuildInfo{Main: debug.Module{Version: "v0.4.1-0.20261204201953-9251202c0ffe"}}, "9251202c0ffe"},
		"test binary":   {&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, ""},
		"no build info": {nil, ""},
	} {
		if got := BuildID(c.info); got != c.want {
			t.Errorf("%s: BuildID = %q; want %q", name, got, c.want)
		}
	}
}
