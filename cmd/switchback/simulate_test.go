package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/simulate"
)

// TestSimulateDropAndChangeAPI: "simulate --drop --psa-api" drops a share
// of deliveries, serves the partners' change APIs while the run lasts
// with the credentials it writes to --psa-api-out, and saves the dropped
// events to --dropped.
func TestSimulateDropAndChangeAPI(t *testing.T) {
	dir := t.TempDir()
	apiOut, droppedOut := filepath.Join(dir, "psaapi.json"), filepath.Join(dir, "dropped.json")

	// The router stand-in acknowledges everything and, on the first
	// delivery, asks the generic partner's change feed with the psaApi
	// the command wrote.
	var once sync.Once
	feedStatus := make(chan int, 1)
	router := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			feedStatus <- getFeed(t, apiOut)
		})
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"events":[]}`))
	}))
	defer router.Close()

	partners := `[{"id":"acme","psa":"connectwise","secret":"cw-key"},{"id":"hooli","psa":"generic","secret":"whsec_c2VjcmV0LWtleQ=="}]`
	var stdout, stderr strings.Builder
	err := runSimulate(context.Background(), []string{"--router", router.URL, "--partners", partners, "--count", "80", "--rate", "2000",
		"--drop", "0.3", "--psa-api", "127.0.0.1:0", "--psa-api-out", apiOut, "--dropped", droppedOut, "--json"},
		func(string) string { return "" }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, stderr.String())
	}
	if got := <-feedStatus; got != http.StatusOK {
		t.Errorf("the change feed answered %d during the run, want 200", got)
	}
	for _, want := range []string{"change API of acme (connectwise): http://127.0.0.1:", "/psa/acme\n", "change API of hooli (generic): "} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}

	var st struct {
		Sent, Dropped  int
		DroppedEntries int
	}
	if err := json.Unmarshal([]byte(stdout.String()), &st); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout.String())
	}
	if st.Dropped == 0 || st.Sent+st.Dropped != 80 || st.DroppedEntries == 0 {
		t.Errorf("sent %d, dropped %d (%d events); want some of 80 dropped", st.Sent, st.Dropped, st.DroppedEntries)
	}
	var dropped []simulate.DroppedChange
	b, err := os.ReadFile(droppedOut)
	if err != nil || json.Unmarshal(b, &dropped) != nil || len(dropped) != st.DroppedEntries {
		t.Errorf("--dropped holds %d events (%v), want %d", len(dropped), err, st.DroppedEntries)
	}
	if fi, err := os.Stat(apiOut); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("--psa-api-out: %v, mode %v; want 0600", err, fi.Mode())
	}

	// The change API ends with the run.
	if getFeed(t, apiOut) != 0 {
		t.Error("the change API still answers after the run")
	}
}

// getFeed GETs the generic partner's change feed with its psaApi from
// path, and returns the status, 0 when nothing answered.
func getFeed(t *testing.T, path string) int {
	var access map[string]domain.PSAAPI
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &access) != nil {
		t.Errorf("--psa-api-out: %v: %s", err, b)
		return -1
	}
	a := access["hooli"]
	req, _ := http.NewRequest(http.MethodGet, a.BaseURL+"?since=2020-01-01T00:00:00Z", nil)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
