package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehouse/cli"
)

// TestStartSaysARunStartedButUnread: a gateway whose workers are down
// answers a create 202 with the run's id and why it could not be read (the
// REST API's documented body). `gatehouse start` says the run started,
// where it is and why its status is not known yet, and exits 0: the run
// exists, and submitting it again would start a second one. Before, it
// printed an empty status and nothing else.
func TestStartSaysARunStartedButUnread(t *testing.T) {
	const detail = "the run started, but no Gatehouse worker is polling its task queue to read it: GET its Location for its state; do not submit it again"
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/workspaces/prod-network/runs" {
			http.Error(w, `{"error": "unexpected request"}`, http.StatusNotFound)
			return
		}
		got, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/api/v1/workspaces/prod-network/runs/run-0123abcd")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"id": "run-0123abcd", "workspace": "prod-network", "detail": detail})
	}))
	t.Cleanup(srv.Close)
	planPath := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(planPath, []byte(`{"format_version": "1.2", "resource_changes": []}`), 0o600); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (int, string) {
		root := cli.NewRoot()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append(args, "--url", srv.URL, "--token", "t-alice"))
		code, msg := cli.Exit(root.ExecuteContext(context.Background()))
		return code, out.String() + errOut.String() + msg
	}

	code, out := run("start", "-w", "prod-network", planPath)
	if code != 0 || !strings.Contains(out, "run:    run-0123abcd\n") || !strings.Contains(out, "status: not read yet\n") ||
		!strings.Contains(out, "note:   "+detail+"\n") || !strings.Contains(out, srv.URL+"/api/v1/workspaces/prod-network/runs/run-0123abcd") {
		t.Errorf("start answered 202: exit %d\n%s\nwant exit 0, the run's id and URL, and why its status is not known", code, out)
	}
	if !bytes.Contains(got, []byte(`"format_version": "1.2"`)) {
		t.Errorf("the gateway got %s; want the plan byte for byte", got)
	}

	code, out = run("start", "-w", "prod-network", "--json", planPath)
	var view struct{ ID, Workspace, Status, Detail string }
	if err := json.Unmarshal([]byte(out), &view); code != 0 || err != nil || view.ID != "run-0123abcd" || view.Status != "" || view.Detail != detail {
		t.Errorf("start --json answered 202: exit %d, %+v (%v)\n%s\nwant the id and the detail", code, view, err, out)
	}
}
