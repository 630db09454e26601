package app

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestPprofLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "[::]:6060", "10.0.0.1:6060", "example.com:6060", "6060"} {
		if srv, _, err := startPprof(addr, zap.NewNop()); err == nil {
			srv.Close()
			t.Errorf("%q was accepted", addr)
		}
	}
	if srv, _, err := startPprof("", zap.NewNop()); srv != nil || err != nil {
		t.Errorf("empty address: %v, %v; want nothing served", srv, err)
	}
}

// TestPprofServes: the profiles are served on their own mux, and nothing
// registered on the default mux is.
func TestPprofServes(t *testing.T) {
	http.HandleFunc("/bench-default-mux", func(http.ResponseWriter, *http.Request) {})
	srv, addr, err := startPprof("127.0.0.1:0", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("index: %d; want 200 listing the profiles", code)
	}
	if code, _ := get("/bench-default-mux"); code != http.StatusNotFound {
		t.Errorf("default mux route: %d; want 404", code)
	}
}
