package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/boltfile"
)

// journalOf writes n events to a new journal file and returns its path.
func journalOf(t *testing.T, n int) string {
	t.Helper()
	path := tempPath(t)
	j := open(t, path, Options{})
	var batch []Event
	for i := range n {
		batch = append(batch, event("acme", fmt.Sprintf("d-%05d", i), t0.Add(time.Duration(i)*time.Second)))
	}
	appendOK(t, j, batch...)
	closeAndCheck(t, j)
	return path
}

// overwritePages writes seeded random bytes over n pages past the two
// meta pages.
func overwritePages(t *testing.T, path string, seed uint64, n int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	rnd := rand.New(rand.NewPCG(seed*0x9E3779B97F4A7C15, seed))
	for range n {
		p := 2 + rnd.IntN(len(data)/page-2)
		for i := p * page; i < (p+1)*page; i++ {
			data[i] = byte(rnd.Uint32())
		}
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func exportLines(t *testing.T, path string) ([]Event, Exported) {
	t.Helper()
	var out bytes.Buffer
	res, err := Export(path, &out)
	if err != nil {
		t.Fatalf("Export = %v", err)
	}
	var events []Event
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Bytes(), err)
		}
		events = append(events, e)
	}
	return events, res
}

func TestExportWritesEveryEventOfASoundJournal(t *testing.T) {
	const n = 2000
	events, res := exportLines(t, journalOf(t, n))
	if got, want := res, (Exported{Written: n}); got != want {
		t.Errorf("Export = %+v, want %+v", got, want)
	}
	for i, e := range events {
		if e.Seq != uint64(i+1) || e.DeliveryID != fmt.Sprintf("d-%05d", i) {
			t.Fatalf("line %d = seq %d delivery %q, want seq %d delivery d-%05d", i, e.Seq, e.DeliveryID, i+1, i)
		}
	}
}

func TestOpenRefusesADamagedJournalAndExportSalvagesIt(t *testing.T) {
	const n = 2000
	for seed := uint64(1); seed <= 10; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			path := journalOf(t, n)
			overwritePages(t, path, seed, 2)
			if j, err := Open(path, Options{}); err == nil {
				j.Close()
				// Only free pages were hit.
				return
			} else if !errors.Is(err, boltfile.ErrDamaged) {
				t.Fatalf("Open(damaged) = %v, want ErrDamaged", err)
			}
			events, res := exportLines(t, path)
			for _, e := range events {
				if want := fmt.Sprintf("d-%05d", e.Seq-1); e.DeliveryID != want {
					t.Errorf("exported seq %d has delivery %q, want %q", e.Seq, e.DeliveryID, want)
				}
			}
			if res.Written != len(events) {
				t.Errorf("Written = %d, but %d lines", res.Written, len(events))
			}
			if res.Written < n && res.Lost == 0 && res.Skipped == 0 {
				t.Errorf("Export = %+v: %d events missing and no loss reported", res, n-res.Written)
			}
			if res.Written+res.Lost > n {
				t.Errorf("Export = %+v: more than the %d events journaled", res, n)
			}
			t.Logf("seed %d: %+v", seed, res)
		})
	}
}
