// Package refpipe is a reference webhook pipeline: an HTTP service that
// follows the pipeline contract, turns each event into effects and keeps
// what it applied, for tests, the demo and the benchmarks. It can inject
// the faults release engineers meet, among them the seed incident's: a
// handler cache keyed by the partner alone, so that a ticket event is
// sometimes handled by the cached schedule handler and yields a schedule
// effect instead of the ticket update.
package refpipe

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// Faults are injected misbehaviours; zero values inject none.
type Faults struct {
	// CachedHandler is the share of events handled by the handler cached
	// for the partner's previous event, whatever its type: the seed bug.
	CachedHandler float64
	// Error is the share of calls answered 500.
	Error float64
	// Empty is the share of events "processed" with no effect at all.
	Empty float64
	// DropField names a field left out of every effect.
	DropField string
	// Latency is added to every call; with LatencyMax above it, a
	// uniformly random delay between the two.
	Latency, LatencyMax time.Duration
	// Noisy stamps every effect, in both modes, with the time of the call
	// (fields.processedAt) and a random id (fields.requestId): what real
	// pipelines do, and why two runs of one pipeline never agree exactly.
	Noisy bool
}

// The fields that Faults.Noisy stamps into every effect.
const (
	NoisyTime = "processedAt"
	NoisyID   = "requestId"
)

// Pipeline is a reference pipelineclient. Its zero value is not usable; use New.
type Pipeline struct {
	name   string
	faults Faults

	mu       sync.Mutex
	rng      *rand.Rand
	cache    map[string]string // partner → entity kind of the cached handler
	applied  map[string]pipelineclient.Effect
	seen     map[string]bool            // idempotency keys applied
	ids      map[string]map[string]bool // "kind/key" → event ids applied to it
	calls    map[pipelineclient.Mode]int
	failures int
}

// New returns a pipeline named name with faults, seeded for determinism.
func New(name string, faults Faults, seed uint64) *Pipeline {
	return &Pipeline{name: name, faults: faults, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		cache: map[string]string{}, applied: map[string]pipelineclient.Effect{}, seen: map[string]bool{}, calls: map[pipelineclient.Mode]int{},
		ids: map[string]map[string]bool{}}
}

// Handler serves the pipeline contract at POST / and, at GET /applied,
// the pipeline's name, how many events it applied and the entities it
// holds. Two lighter reads serve what a benchmark in another process
// polls: GET /counts, the events applied and the calls by mode, and
// GET /applied/ids, the ids (Idempotency-Keys) of the events applied.
func (p *Pipeline) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /", p)
	mux.HandleFunc("GET /applied", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"pipeline": p.name, "events": p.Applications(), "entities": p.Applied()})
	})
	mux.HandleFunc("GET /counts", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(p.Counts())
	})
	mux.HandleFunc("GET /applied/ids", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"pipeline": p.name, "ids": p.AppliedIDs()})
	})
	return mux
}

// Counts is what GET /counts answers.
type Counts struct {
	Pipeline string `json:"pipeline"`
	// Events is how many distinct events were applied.
	Events int `json:"events"`
	// Apply and DryRun are the calls in each mode, repeated ones included.
	Apply  int `json:"apply"`
	DryRun int `json:"dryRun"`
}

// Counts returns the pipeline's counts.
func (p *Pipeline) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Counts{Pipeline: p.name, Events: len(p.seen), Apply: p.calls[pipelineclient.Apply], DryRun: p.calls[pipelineclient.DryRun]}
}

// AppliedIDs returns the idempotency keys (event ids) of the events
// applied, sorted.
func (p *Pipeline) AppliedIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.seen))
	for id := range p.seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ServeHTTP answers one pipeline call.
func (p *Pipeline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an event", http.StatusMethodNotAllowed)
		return
	}
	mode := pipelineclient.Mode(r.Header.Get("Switchback-Mode"))
	if mode != pipelineclient.Apply && mode != pipelineclient.DryRun {
		http.Error(w, "Switchback-Mode must be apply or dry-run", http.StatusBadRequest)
		return
	}
	var ev pipelineclient.Event
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20)).Decode(&ev); err != nil {
		http.Error(w, "the body is not an event", http.StatusBadRequest)
		return
	}
	if d := p.delay(); d > 0 {
		time.Sleep(d)
	}
	effects, fail := p.handle(ev, mode, r.Header.Get("Idempotency-Key"))
	if fail {
		http.Error(w, "injected failure", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(pipelineclient.Response{Effects: effects})
}

func (p *Pipeline) delay() time.Duration {
	lo, hi := p.faults.Latency, p.faults.LatencyMax
	if hi <= lo {
		return lo
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return lo + time.Duration(p.rng.Int64N(int64(hi-lo)))
}

func (p *Pipeline) handle(ev pipelineclient.Event, mode pipelineclient.Mode, key string) ([]pipelineclient.Effect, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[mode]++
	if p.faults.Error > 0 && p.rng.Float64() < p.faults.Error {
		p.failures++
		return nil, true
	}
	kind := ev.Type
	if cached, ok := p.cache[ev.Partner]; ok && p.faults.CachedHandler > 0 && p.rng.Float64() < p.faults.CachedHandler {
		kind = cached // the bug: the cache is keyed by partner, not by partner and event type
	}
	p.cache[ev.Partner] = ev.Type
	if p.faults.Empty > 0 && p.rng.Float64() < p.faults.Empty {
		return []pipelineclient.Effect{}, false
	}
	e := Effect(ev, kind, p.faults.DropField)
	if p.faults.Noisy {
		e.Fields[NoisyTime] = time.Now().UTC().Format(time.RFC3339Nano)
		e.Fields[NoisyID] = fmt.Sprintf("req-%016x", p.rng.Uint64())
	}
	if mode == pipelineclient.Apply && !p.seen[key] {
		p.seen[key] = true
		p.applied[e.Kind+"/"+e.Key] = e
		if p.ids[e.Kind+"/"+e.Key] == nil {
			p.ids[e.Kind+"/"+e.Key] = map[string]bool{}
		}
		p.ids[e.Kind+"/"+e.Key][key] = true
	}
	return []pipelineclient.Effect{e}, false
}

// Effect is what a correct pipeline does with ev: one effect on the entity,
// of the event's kind, with the payload's scalar fields. handlerKind is the
// kind of handler that processed it; dropField is left out.
func Effect(ev pipelineclient.Event, handlerKind, dropField string) pipelineclient.Effect {
	op := "upsert"
	if ev.Action == "deleted" {
		op = "delete"
	}
	fields := map[string]any{}
	var payload map[string]any
	if json.Unmarshal(ev.Payload, &payload) == nil {
		flatten("", payload, fields)
	}
	delete(fields, dropField)
	return pipelineclient.Effect{Kind: handlerKind, Op: op, Key: ev.EntityID, Fields: fields}
}

// flatten copies the scalar fields of m, nested ones under dotted names,
// at most two levels deep.
func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		name := prefix + k
		switch x := v.(type) {
		case map[string]any:
			if prefix == "" {
				flatten(name+".", x, out)
			}
		case []any:
		default:
			out[name] = x
		}
	}
}

// Applied returns what the pipeline applied, by "kind/key", sorted by key.
func (p *Pipeline) Applied() map[string]pipelineclient.Effect {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]pipelineclient.Effect, len(p.applied))
	for k, v := range p.applied {
		out[k] = v
	}
	return out
}

// AppliedKeys returns the applied effects' keys, sorted.
func (p *Pipeline) AppliedKeys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.applied))
	for k := range p.applied {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Calls returns how many calls came in mode.
func (p *Pipeline) Calls(mode pipelineclient.Mode) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[mode]
}

// Applications returns how many distinct events were applied.
func (p *Pipeline) Applications() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}

// HasApplied reports whether the event with this idempotency key (the
// event id) was applied.
func (p *Pipeline) HasApplied(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[id]
}

// EventsApplied returns the ids of the events applied to the entity
// "kind/key": an event handled by the wrong handler is applied to another
// kind, and missing here.
func (p *Pipeline) EventsApplied(kindKey string) map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]bool, len(p.ids[kindKey]))
	for id := range p.ids[kindKey] {
		out[id] = true
	}
	return out
}
