package control_test

import (
	"testing"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/wire"
)

// A router that holds a version of this store that the store no longer
// has makes the store publish past it; any other report changes nothing.
func TestFastForwardPastARouterAhead(t *testing.T) {
	for _, tt := range []struct {
		name     string
		report   func(st *control.State) wire.Report
		wantMove uint64 // versions published past the current one; 0: none
		wantErr  bool   // refused: the version cannot be judged
	}{
		{"behind", func(st *control.State) wire.Report {
			return wire.Report{Router: "r", SnapshotVersion: st.Version - 1, StoreID: st.StoreID}
		}, 0, false},
		{"current", func(st *control.State) wire.Report {
			return wire.Report{Router: "r", SnapshotVersion: st.Version, StoreID: st.StoreID}
		}, 0, false},
		{"another store ahead", func(st *control.State) wire.Report {
			return wire.Report{Router: "r", SnapshotVersion: st.Version + 5, StoreID: "another"}
		}, 0, false},
		{"no store id ahead", func(st *control.State) wire.Report {
			return wire.Report{Router: "r", SnapshotVersion: st.Version + 5}
		}, 0, true},
		{"implausibly far ahead", func(st *control.State) wire.Report {
			return wire.Report{Router: "r", SnapshotVersion: st.Version + 2_000_000, StoreID: st.StoreID}
		}, 0, true},
		{"current version of another history", func(st *control.State) wire.Report {
			return wire.Report{Router: "r", SnapshotVersion: st.Version, StoreID: st.StoreID, Refused: st.Version}
		}, 1, false},
		{"ahead", func(st *control.State) wire.Report {
			return wire.Report{Router: "r", SnapshotVersion: st.Version + 5, StoreID: st.StoreID}
		}, 6, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.migration(t, "m")
			e.partner(t, "a")
			before := e.svc.State()
			entries := len(e.auditLog(t))
			_, err := e.svc.IngestReport(ctx, tt.report(before))
			if (err != nil) != tt.wantErr {
				t.Fatalf("IngestReport = %v, want an error: %v", err, tt.wantErr)
			}
			after := e.svc.State()
			n, last := e.svc.Regressions()
			if tt.wantMove == 0 {
				e.unchanged(t, before.Version, entries)
				if n != 0 {
					t.Errorf("Regressions() = %d, want 0", n)
				}
				return
			}
			if got, want := after.Version, before.Version+tt.wantMove; got != want {
				t.Errorf("version after the report = %d, want %d", got, want)
			}
			if n != 1 || last.Router != "r" || last.Store != before.Version || last.MovedTo != after.Version {
				t.Errorf("Regressions() = %d, %+v", n, last)
			}
			log := e.auditLog(t)
			if got := log[len(log)-1]; got.Action != "snapshot.fastforward" || got.Actor != "control" || got.Reason == "" {
				t.Errorf("last audit entry = %s by %s (%q), want snapshot.fastforward by control with a reason", got.Action, got.Actor, got.Reason)
			}
			if len(after.Partners) != len(before.Partners) || after.Migrations["m"] == nil {
				t.Errorf("the state published past the router is not the store's")
			}
			if after.Audit.Seq != log[len(log)-1].Seq {
				t.Errorf("published audit head seq %d, want the fast-forward's %d", after.Audit.Seq, log[len(log)-1].Seq)
			}
		})
	}
}

// A router token may claim any version: the control service moves past
// routers at most once per interval, so a rogue router cannot flood the
// audit log and every router with versions.
func TestFastForwardIsRateLimited(t *testing.T) {
	e := newEnv(t, nil)
	e.migration(t, "m")
	for range 3 {
		st := e.svc.State()
		r := wire.Report{Router: "rogue", SnapshotVersion: st.Version, StoreID: st.StoreID, Refused: st.Version}
		if _, err := e.svc.IngestReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := e.svc.Regressions(); n != 1 {
		t.Errorf("fast-forwards after 3 reports in a row = %d, want 1", n)
	}
}
