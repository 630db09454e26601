package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	defer srv.Close()
	for url, want := range map[string]int{
		srv.URL + "/healthz": 0,
		srv.URL + "/readyz":  1,
		gone.URL + "/":       1,
		"not a url":          1,
	} {
		if code, _, errOut := run(t, "healthcheck", "--timeout", "5s", url); code != want {
			t.Errorf("healthcheck %s: exit %d (%s); want %d", url, code, errOut, want)
		}
	}
}
