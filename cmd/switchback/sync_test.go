package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchbackhq/switchback/internal/refpipe"
)

// The router embedded in serve knows every change the API has answered:
// a partner's first webhook, sent the moment its creation is answered, is
// accepted, never 404 (a PSA may stop retrying on 404) nor 429.
func TestServeRoutesAPartnerTheMomentItIsCreated(t *testing.T) {
	pipe := httptest.NewServer(refpipe.New("legacy", refpipe.Faults{}, 1))
	defer pipe.Close()
	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir())
	setupMigration(t, s.url, crashAdmin, pipe.URL)
	for i := range 150 {
		id := fmt.Sprintf("partner-%d", i)
		if got := call(t, "PUT", s.url+"/v1/partners/"+id, crashAdmin, map[string]any{"name": id, "psa": "generic", "secret": crashSecret}, nil); got != http.StatusCreated {
			t.Fatalf("PUT partner %s = %d", id, got)
		}
		if got := sendHook(t, s.url, id, "evt-"+id); got != http.StatusAccepted {
			t.Fatalf("iteration %d: first webhook of a partner just created = %d, want 202", i, got)
		}
	}
}
