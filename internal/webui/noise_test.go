package webui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// The partner page lists the noise learned for its events, with the pins;
// an operator pins a path there (audited, with CSRF), a viewer sees no
// buttons.
func TestPartnerNoise(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	obs := domain.NoiseObservation{Migration: mig, Partner: "acme", EventType: "ticket", Path: "ticket:fields.processedAt", Count: 4}
	probes := obs
	probes.Path, probes.Count = domain.NoiseProbesPath, 6
	if _, err := f.svc.IngestReport(ctx, wire.Report{Router: "edge-1", Noise: []domain.NoiseObservation{probes, obs}}); err != nil {
		t.Fatal(err)
	}
	page := "/migrations/" + mig + "/partners/acme"
	viewer := f.client(t)
	viewer.login("viewer")
	body := viewer.get(page).body
	if !strings.Contains(body, "<code>ticket:fields.processedAt</code>") || !strings.Contains(body, "learned") {
		t.Errorf("the partner page does not list the learned path")
	}
	if !strings.Contains(body, `<td class="num">6</td>`) {
		t.Errorf("the partner page does not show the 6 probes the path was seen in")
	}
	if strings.Contains(body, `/partners/acme/noise"`) {
		t.Errorf("a viewer is offered the pin buttons")
	}

	c := f.client(t)
	c.login("operator")
	if !strings.Contains(c.get(page).body, `action="/migrations/`+mig+`/partners/acme/noise"`) {
		t.Fatalf("an operator is not offered the pin buttons")
	}
	form := url.Values{"csrf": {c.csrf(page)}, "eventType": {"ticket"}, "path": {"ticket:fields.processedAt"}, "as": {"signal"}, "reason": {"it matters"}}
	if res := c.post(page+"/noise", form, nil); res.status != http.StatusSeeOther {
		t.Fatalf("pin: %d, want 303", res.status)
	}
	pins := f.svc.State().Migrations[mig].Compare.NoisePins
	if len(pins) != 1 || pins[0].As != domain.PinSignal {
		t.Errorf("pins = %+v, want fields.processedAt as signal", pins)
	}
	log := f.auditLog(t)
	if last := log[len(log)-1]; last.Action != "noise.pin" || last.Actor != "operator" || last.Reason != "it matters" {
		t.Errorf("last audit entry = %s by %s (%q), want noise.pin by operator", last.Action, last.Actor, last.Reason)
	}
	form.Set("as", "none")
	form.Del("csrf")
	c.post(page+"/noise", form, nil)
	if pins := f.svc.State().Migrations[mig].Compare.NoisePins; len(pins) != 1 {
		t.Errorf("a pin without CSRF token changed the pins: %+v", pins)
	}
}
