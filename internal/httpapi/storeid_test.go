package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A router may report a later version of this store than the store has
// (it was restored from a backup), within bounds; without a store id a
// version ahead stays an error, as before store ids.
func TestReportVersionAheadOfTheStore(t *testing.T) {
	f := newFixture(t)
	cur := f.svc.State().Version
	id := f.svc.State().StoreID
	for _, tt := range []struct {
		name string
		body string
		want int
	}{
		{"no store id, ahead", fmt.Sprintf(`{"router":"r1","snapshotVersion":%d}`, cur+1), http.StatusBadRequest},
		{"this store, far ahead", fmt.Sprintf(`{"router":"r1","snapshotVersion":%d,"storeId":%q}`, cur+2_000_000, id), http.StatusBadRequest},
		{"store id too long", fmt.Sprintf(`{"router":"r1","snapshotVersion":1,"storeId":%q}`, strings.Repeat("a", 65)), http.StatusBadRequest},
		{"another store, ahead", fmt.Sprintf(`{"router":"r1","snapshotVersion":%d,"storeId":"other"}`, cur+9), http.StatusAccepted},
		{"this store, ahead", fmt.Sprintf(`{"router":"r1","snapshotVersion":%d,"storeId":%q}`, cur+3, id), http.StatusAccepted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, request{method: http.MethodPost, path: "/v1/reports", as: "router", body: tt.body})
			if res.status != tt.want {
				t.Errorf("POST /v1/reports = %s, want %d", res, tt.want)
			}
		})
	}
	if got, want := f.svc.State().Version, cur+4; got != want {
		t.Errorf("version after a report 3 versions ahead = %d, want %d (published past it)", got, want)
	}
	res := f.do(t, request{method: http.MethodGet, path: "/v1/audit/head", as: "viewer"})
	if res.status != http.StatusOK || !strings.Contains(string(res.body), `"storeId":"`+id+`"`) {
		t.Errorf("GET /v1/audit/head = %s, want 200 with the store id", res)
	}
}

// The stream sends the current snapshot to a subscriber that holds
// another store's, or a version this store does not have now, so that it
// learns the store was reset or went back; "current" to one that holds it.
func TestStreamLastEventIDNamesTheStore(t *testing.T) {
	e := newStreamEnv(t)
	e.addPartner(t, "acme", "x")
	st := e.svc.State()
	for _, tt := range []struct {
		name, lastID string
		wantEvent    string
	}{
		{"this store, current", fmt.Sprintf("%s:%d", st.StoreID, st.Version), "current"},
		{"this store, older", fmt.Sprintf("%s:%d", st.StoreID, st.Version-1), "snapshot"},
		{"this store, a version it no longer has", fmt.Sprintf("%s:%d", st.StoreID, st.Version+7), "snapshot"},
		{"another store, same version", fmt.Sprintf("other:%d", st.Version), "snapshot"},
		{"a version alone, current", fmt.Sprint(st.Version), "current"},
		{"not a version", "x:y", "snapshot"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := subscribe(t, e, e.viewer, tt.lastID).next(t)
			if ev.event != tt.wantEvent {
				t.Errorf("first event %q, want %q", ev.event, tt.wantEvent)
			}
		})
	}
}
