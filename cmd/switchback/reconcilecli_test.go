package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/controlclient"
	"github.com/switchbackhq/switchback/internal/refpipe"
	"github.com/switchbackhq/switchback/internal/wire"
)

// The verb exits 0 only when nothing is left to do: no gap, or a backfill
// that applied every gap; anything else names what is left.
func TestReconcileOutcome(t *testing.T) {
	done := func(gaps int, bf *wire.BackfillProgress) wire.Reconciliation {
		return wire.Reconciliation{ID: "rec_0123456789abcdef", State: wire.ReconcileDone, GapCount: gaps, Backfill: bf}
	}
	tests := []struct {
		name    string
		job     wire.Reconciliation
		wantErr string // "" for exit 0
	}{
		{"no gap", done(0, nil), ""},
		{"uncertain changes only", wire.Reconciliation{State: wire.ReconcileDone, Uncertain: 3}, ""},
		{"gaps not backfilled", done(2, nil), "2 gaps found and not backfilled: send them with \"switchback reconcile backfill rec_0123456789abcdef\""},
		{"every gap backfilled and applied", done(2, &wire.BackfillProgress{State: wire.ReconcileDone, Events: 2, Journaled: 2, Applied: 2}), ""},
		{"a gap dead-lettered", done(2, &wire.BackfillProgress{State: wire.ReconcileDone, Events: 2, Journaled: 2, Applied: 1, DeadLettered: 1}),
			"left 1 of 2 gaps unapplied: 1 dead-lettered, 0 still pending"},
		{"a gap still pending after the wait", done(2, &wire.BackfillProgress{State: wire.ReconcileDone, Events: 2, Journaled: 2, Applied: 1, Pending: 1}),
			"left 1 of 2 gaps unapplied: 0 dead-lettered, 1 still pending"},
		{"the backfill failed", done(2, &wire.BackfillProgress{State: wire.ReconcileFailed, Error: "journal full"}), "the backfill of rec_0123456789abcdef failed: journal full"},
		{"the reconciliation failed", wire.Reconciliation{ID: "rec_1", State: wire.ReconcileFailed, Error: "acme: PSA answered 401"}, "reconciliation rec_1 failed: acme: PSA answered 401"},
		{"an error with an escape sequence", wire.Reconciliation{ID: "rec_1", State: wire.ReconcileFailed, Error: "\x1b[2J"}, `failed: "\x1b[2J"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := reconcileOutcome(tt.job)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("outcome = %v, want exit 0", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("outcome = %v, want an error with %q", err, tt.wantErr)
			}
			if exitCode(err) != 1 {
				t.Errorf("exit code = %d, want 1", exitCode(err))
			}
		})
	}
}

// The flags become the request as the API documents it: from as written
// (the service resolves "2h" by its clock), a --to written as a duration
// resolved to a time, durations checked; mistakes are usage errors.
func TestReconcileRequest(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		flags   reconcileFlags
		want    controlclient.ReconcileRequest
		wantErr string
	}{
		{"a duration ago", reconcileFlags{partners: "acme, beta", from: "2h"},
			controlclient.ReconcileRequest{Partners: []string{"acme", "beta"}, From: "2h", Reason: "INC-1"}, ""},
		{"a window with skew and settle", reconcileFlags{partners: "acme", from: "2026-03-01T09:00:00Z", to: "30m", skew: "5m", settle: "0s", backfill: true},
			controlclient.ReconcileRequest{Partners: []string{"acme"}, From: "2026-03-01T09:00:00Z", To: "2026-03-01T11:30:00Z",
				Skew: "5m", Settle: "0s", Backfill: true, Reason: "INC-1"}, ""},
		{"no partners", reconcileFlags{from: "2h"}, controlclient.ReconcileRequest{}, "needs --partners and --from"},
		{"a from that is neither", reconcileFlags{partners: "acme", from: "yesterday"}, controlclient.ReconcileRequest{}, `--from: "yesterday" is neither`},
		{"a skew that is no duration", reconcileFlags{partners: "acme", from: "2h", skew: "2"}, controlclient.ReconcileRequest{}, `--skew: "2" is not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.flags.request("INC-1", now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errUsage) {
					t.Fatalf("request = %+v, %v; want a usage error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("request = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// cli runs one CLI command against s as main would, and returns its
// stdout, stderr and exit code.
func cli(t *testing.T, s *server, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"SWITCHBACK_TOKEN": crashAdmin, "SWITCHBACK_SERVER": s.url}
	if err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut); err != nil {
		code = exitCode(err)
		fmt.Fprintln(&errOut, err)
	}
	return out.String(), errOut.String(), code
}

var recID = regexp.MustCompile(`reconciliation (rec_[0-9a-f]{16})`)

// switchback reconcile against serve with its runner: the PSA changed
// three tickets and one webhook came. The verb follows the job on stderr,
// lists the two gaps and exits 1; "reconcile backfill" sends them and exits
// 0 once applied; reconciling again finds nothing; --backfill at the start
// closes a new gap in one go; "show", "list" and the service's refusals
// come through; the PSA's token never shows.
func TestReconcileVerbAgainstServe(t *testing.T) {
	legacy := refpipe.New("legacy", refpipe.Faults{}, 1)
	legacySrv := httptest.NewServer(legacy)
	defer legacySrv.Close()
	newSrv := httptest.NewServer(refpipe.New("new", refpipe.Faults{}, 2))
	defer newSrv.Close()
	feed := &changeFeed{}
	feedSrv := httptest.NewServer(feed)
	defer feedSrv.Close()

	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir())
	if got := call(t, "PUT", s.url+"/v1/partners/acme", crashAdmin, map[string]any{"name": "Acme", "psa": "generic", "secret": crashSecret,
		"psaApi": map[string]any{"baseUrl": feedSrv.URL + "/changes", "token": feedToken}}, nil); got != 201 {
		t.Fatalf("partner = %d", got)
	}
	if got := call(t, "PUT", s.url+"/v1/migrations/psa-webhooks-v2", crashAdmin, map[string]any{"pipelines": map[string]any{
		"legacy": map[string]string{"url": legacySrv.URL}, "new": map[string]string{"url": newSrv.URL}}}, nil); got != 201 {
		t.Fatalf("migration = %d", got)
	}
	waitRouterCurrent(t, s.url)

	// Changed ten minutes ago: past skew and settle, so each is judged.
	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	sendStamped(t, s.url, "acme", "1", base)
	feed.set("ticket", "1", base)
	feed.set("ticket", "2", base.Add(time.Second))
	feed.set("ticket", "3", base.Add(2*time.Second))
	waitUntil(t, "the webhook applied", func() bool { return legacy.Applications() == 1 })

	var all strings.Builder
	out, errOut, code := cli(t, s, "reconcile", "--partners", "acme", "--from", "1h", "--poll", "20ms", "--reason", "INC-7")
	all.WriteString(out + errOut)
	if code != 1 {
		t.Fatalf("reconcile exit %d, want 1 (gaps not backfilled)\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	m := recID.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no job id in:\n%s", out)
	}
	id := m[1]
	for _, want := range []string{
		"3 checked, 2 gaps, 0 uncertain, 0 in flight",
		"acme     ticket  2   " + base.Add(time.Second).Format(time.RFC3339) + "  never         no_event",
		"acme     ticket  3   " + base.Add(2*time.Second).Format(time.RFC3339) + "  never         no_event",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{id + " done: acme done 3/3 checked, 2 gaps, 0 uncertain",
		`2 gaps found and not backfilled: send them with "switchback reconcile backfill ` + id + `"`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(out, " done: acme") {
		t.Errorf("progress went to stdout:\n%s", out)
	}

	out, errOut, code = cli(t, s, "reconcile", "show", id, "--json")
	all.WriteString(out + errOut)
	var shown wire.Reconciliation
	if err := json.Unmarshal([]byte(out), &shown); err != nil || code != 1 || shown.ID != id || len(shown.Gaps) != 2 {
		t.Errorf("show --json: exit %d, %v, job %+v; want exit 1 and the job with its 2 gaps", code, err, shown)
	}

	out, errOut, code = cli(t, s, "reconcile", "backfill", id, "--poll", "20ms", "--reason", "INC-7")
	all.WriteString(out + errOut)
	if code != 0 || !strings.Contains(out, "backfill done: 2 events, 2 journaled, 0 duplicates (already backfilled), 2 applied, 0 dead-lettered, 0 pending") {
		t.Fatalf("backfill: exit %d, want 0 with 2 applied\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if legacy.Applications() != 3 {
		t.Errorf("legacy applied %d events, want the webhook and two backfills", legacy.Applications())
	}

	out, errOut, code = cli(t, s, "reconcile", "--partners", "acme", "--from", "1h", "--poll", "20ms")
	all.WriteString(out + errOut)
	if code != 0 || !strings.Contains(out, "3 checked, 0 gaps") {
		t.Errorf("after the backfill: exit %d, want 0 and no gap\n%s%s", code, out, errOut)
	}

	feed.set("ticket", "4", base.Add(3*time.Second))
	out, errOut, code = cli(t, s, "reconcile", "--partners", "acme", "--from", "1h", "--backfill", "--poll", "20ms")
	all.WriteString(out + errOut)
	if code != 0 || !strings.Contains(out, "4 checked, 1 gaps") || !strings.Contains(out, "1 applied, 0 dead-lettered, 0 pending") {
		t.Errorf("--backfill: exit %d, want 0 with the new gap applied\n%s%s", code, out, errOut)
	}

	out, errOut, code = cli(t, s, "reconcile", "show", id, "--wait=false")
	all.WriteString(out + errOut)
	if code != 0 || !strings.Contains(out, "backfill done: 2 events") || !strings.Contains(out, "3 checked, 2 gaps") {
		t.Errorf("show --wait=false: exit %d, want 0 and the job as it stands\n%s%s", code, out, errOut)
	}

	out, errOut, code = cli(t, s, "reconcile", "list")
	all.WriteString(out + errOut)
	if code != 0 || !strings.Contains(out, id+"  done   manual") || strings.Count(out, "rec_") != 3 {
		t.Errorf("list: exit %d\n%s%s", code, out, errOut)
	}

	for _, tt := range []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"reconcile", "--partners", "nobody", "--from", "1h"}, 1, "no partner nobody (not_found, HTTP 404)"},
		{[]string{"reconcile", "--partners", "acme", "--from", "40d"}, 2, `--from: "40d" is neither`},
		{[]string{"reconcile", "--partners", "acme", "--from", "800h"}, 1, "from: at most 31 days ago (invalid_argument, HTTP 400)"},
		{[]string{"reconcile", "show", "rec_0000000000000000"}, 1, "(not_found, HTTP 404)"},
		{[]string{"reconcile", "show", id, "--partners", "acme"}, 2, `--partners goes with starting a reconciliation, not with "show"`},
		{[]string{"reconcile", "frobnicate"}, 2, `use "reconcile --partners P --from F"`},
	} {
		out, errOut, code := cli(t, s, tt.args...)
		all.WriteString(out + errOut)
		if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("%q: exit %d, want %d with %q\n%s%s", tt.args, code, tt.wantCode, tt.want, out, errOut)
		}
	}
	if strings.Contains(all.String(), feedToken) {
		t.Error("the CLI printed the PSA API token")
	}
}
