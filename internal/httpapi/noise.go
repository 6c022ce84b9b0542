package httpapi

import (
	"net/http"

	"github.com/switchbackhq/switchback/internal/domain"
)

// noiseView is a partner's noise paths in a migration.
type noiseView struct {
	Partner         string             `json:"partner"`
	NoiseSampleRate float64            `json:"noiseSampleRate"`
	LearnedAfter    int                `json:"learnedAfter"`
	LearnedShare    float64            `json:"learnedShare"`
	Paths           []domain.NoisePath `json:"paths"`
}

// noise serves the field paths seen to differ between two legacy runs of a
// partner's events, by event type, with their counts, probes and pins.
func (a *API) noise(w http.ResponseWriter, r *http.Request, _ principal) error {
	ids, err := pathIDs(r, "key", "migration", "id", "partner")
	if err != nil {
		return err
	}
	key, id := ids[0], ids[1]
	paths, err := a.svc.Noise(r.Context(), key, id)
	if err != nil {
		return err
	}
	ms := a.svc.State().Migrations[key]
	rate := domain.DefaultNoiseSampleRate
	if ms != nil {
		rate = ms.Compare.NoiseRate()
	}
	writeJSON(w, http.StatusOK, noiseView{Partner: id, NoiseSampleRate: rate, LearnedAfter: domain.NoiseLearnedAfter,
		LearnedShare: domain.NoiseMinShare, Paths: paths})
	return nil
}

// pinNoise pins a path of an event type's effects as noise or signal for
// every partner of the migration, or removes the pin (as "none").
func (a *API) pinNoise(w http.ResponseWriter, r *http.Request, p principal) error {
	key, err := pathID(r, "key", "migration")
	if err != nil {
		return err
	}
	var req struct {
		EventType string `json:"eventType"`
		Path      string `json:"path"`
		As        string `json:"as"`
		Reason    string `json:"reason"`
	}
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	as := domain.Pin(req.As)
	switch req.As {
	case "none":
		as = ""
	case string(domain.PinNoise), string(domain.PinSignal):
	default:
		return domain.Errorf(domain.CodeInvalid, "as %q is unknown: use noise, signal or none", req.As)
	}
	m, err := a.svc.PinNoise(r.Context(), p.change(req.Reason), key, req.EventType, req.Path, as)
	if err != nil {
		return err
	}
	pins := m.Compare.NoisePins
	if pins == nil {
		pins = []domain.NoisePin{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"noisePins": pins, "snapshotVersion": a.svc.State().Version})
	return nil
}

// learnedNoise serves routers the paths learned as noise by all routers.
func (a *API) learnedNoise(w http.ResponseWriter, r *http.Request, _ principal) error {
	learned, err := a.svc.LearnedNoise(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, learned)
	return nil
}
