package webui_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchbackhq/switchback/internal/wire"
)

// A router that holds a later version of this store than the store has
// (it was restored from a backup) shows on the routers page: a banner for
// the store, and the router's row.
func TestRoutersPageShowsAStoreThatWentBack(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	st := f.svc.State()
	held := st.Version + 5
	if _, err := f.svc.IngestReport(ctx, wire.Report{Router: "ingress-2", SnapshotVersion: held, StoreID: st.StoreID}); err != nil {
		t.Fatal(err)
	}
	c := f.client(t)
	c.login("viewer")
	res := c.get("/routers")
	for _, want := range []string{
		"The store went back to an earlier snapshot version",
		fmt.Sprintf("held version %d of this store, which was at version %d", held, st.Version),
		fmt.Sprintf("published again as version %d", held+1),
		fmt.Sprintf("✗ holds version %d of this store, which went back to version %d", held, st.Version),
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("routers page lacks %q", want)
		}
	}
	if strings.Contains(res.body, "✓ current") {
		t.Errorf("routers page shows the router ahead of the store as current")
	}
}
