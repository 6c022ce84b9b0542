package simulate

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/psa"
)

const (
	// maxLive is how many live entities of one type a partner has at most:
	// small, so that updates keep hitting the same records.
	maxLive = 16
	// preexisting entities of each type exist before the run: the first
	// events of a type may update or delete them.
	preexisting = 3
	// haloBatchShare is the share of HaloPSA deliveries that are batches
	// (haloBurstBatchShare during a burst, when Halo's queue fills up).
	haloBatchShare      = 0.2
	haloBurstBatchShare = 0.5
	// resendWithin: a resend goes out within this many deliveries of its
	// original.
	resendWithin = 8
)

// actionWeights are the chances of created, updated, deleted per entity
// type: tickets are mostly updated, time entries mostly logged.
var actionWeights = map[string][3]float64{
	Ticket:        {0.20, 0.72, 0.08},
	ScheduleEntry: {0.30, 0.55, 0.15},
	TimeEntry:     {0.55, 0.35, 0.10},
	Company:       {0.10, 0.85, 0.05},
	Contact:       {0.20, 0.72, 0.08},
}

var actions = [3]string{psa.ActionCreated, psa.ActionUpdated, psa.ActionDeleted}

// delivery is one HTTP request's worth of events.
type delivery struct {
	seq     int // generation index of the original
	partner *partnerState
	body    []byte
	events  []LedgerEntry // what the router makes of body
	msgID   string        // the generic kind's webhook-id
	dup     bool          // a resend
	// changes are what the PSA holds after each event, one per event.
	changes []held
	// drop: the PSA never sends this delivery, nor its resend.
	drop bool
}

// held is one entity as its PSA holds it after a change.
type held struct {
	typ, id string
	action  string
	// updatedAt is the stamp the router reads in the event
	// (psa.UpdatedAt), the change API's time for the entity.
	updatedAt time.Time
	// data is the entity as the partner's change API serves it; nil when
	// the API does not list it (the vendors list tickets only, and no
	// deleted one).
	data json.RawMessage
}

type resend struct {
	due int
	d   *delivery
}

// generator decides every delivery from the seed. It is used by one
// goroutine only.
type generator struct {
	rng      *rand.Rand
	partners []*partnerState
	types    []string
	weights  []float64
	total    float64
	dupShare float64
	burst    Burst
	// drops decides which deliveries are dropped, apart from rng so that
	// a seed sends the same traffic whatever the drop rate.
	drops     *rand.Rand
	dropShare float64

	n         int // deliveries generated
	paced     int // of which paced (not part of a burst)
	pending   []resend
	burstLeft int
	burstPS   *partnerState
}

func newGenerator(cfg Config) (*generator, error) {
	g := &generator{
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5357_4254_4348_4b31)),
		dupShare:  cfg.Duplicates,
		burst:     cfg.Burst,
		drops:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x4452_4f50_5045_4431)),
		dropShare: cfg.Drop,
	}
	for _, t := range EntityTypes {
		if w := cfg.Mix[t]; w > 0 {
			g.types = append(g.types, t)
			g.weights = append(g.weights, w)
			g.total += w
		}
	}
	for i, p := range cfg.Partners {
		ps, err := g.newPartner(p, i%cfg.Concurrency)
		if err != nil {
			return nil, err
		}
		g.partners = append(g.partners, ps)
	}
	return g, nil
}

func (g *generator) inBurst() bool { return g.burstLeft > 0 }

// next returns the next delivery, and whether a burst starts after it.
func (g *generator) next(now time.Time) (*delivery, bool) {
	defer func() { g.n++ }()
	if g.burstLeft > 0 {
		g.burstLeft--
		return g.fresh(g.burstPS, true, now), false
	}
	g.paced++
	var d *delivery
	if len(g.pending) > 0 && g.pending[0].due <= g.n {
		orig := g.pending[0].d
		g.pending = g.pending[1:]
		cp := *orig
		cp.dup = true
		d = &cp
	} else {
		d = g.fresh(g.partners[g.rng.IntN(len(g.partners))], false, now)
	}
	if g.burst.Every > 0 && g.paced%g.burst.Every == 0 {
		g.burstLeft = g.burst.Size
		g.burstPS = g.partners[g.rng.IntN(len(g.partners))]
		return d, true
	}
	return d, false
}

// fresh makes a new delivery of ps and may schedule its resend.
func (g *generator) fresh(ps *partnerState, burst bool, now time.Time) *delivery {
	d := &delivery{seq: g.n, partner: ps}
	// add notes one event: what the router makes of it and what the PSA
	// holds after it.
	add := func(body []byte, ev LedgerEntry, api json.RawMessage) {
		d.events = append(d.events, ev)
		d.changes = append(d.changes, ps.held(body, ev, api))
	}
	switch ps.p.PSA {
	case psa.KindHaloPSA:
		n, share := 1, haloBatchShare
		if burst {
			share = haloBurstBatchShare
		}
		if g.rng.Float64() < share {
			n = 2 + g.rng.IntN(3)
		}
		items := make([][]byte, n)
		for i := range items {
			typ, act, e := g.pick(ps, burst)
			var ev LedgerEntry
			var api json.RawMessage
			items[i], ev, api = g.haloEvent(ps, typ, act, e, now)
			add(items[i], ev, api)
		}
		if n == 1 {
			d.body = items[0]
		} else {
			d.body = joinArray(items)
		}
	default:
		typ, act, e := g.pick(ps, burst)
		var ev LedgerEntry
		var api json.RawMessage
		switch ps.p.PSA {
		case psa.KindConnectWise:
			d.body, ev, api = g.connectWise(ps, typ, act, e, now)
		case psa.KindAutotask:
			d.body, ev, api = g.autotask(ps, typ, act, e, now)
		case psa.KindGeneric:
			d.msgID = "msg_" + g.token(27)
			d.body, ev, api = g.generic(ps, typ, act, e, now)
			ev.DeliveryID = d.msgID
		}
		add(d.body, ev, api)
	}
	for i := range d.events {
		d.events[i].Partner = ps.p.ID
	}
	if g.dropShare > 0 {
		d.drop = g.drops.Float64() < g.dropShare
	}
	if g.rng.Float64() < g.dupShare {
		r := resend{due: g.n + 1 + g.rng.IntN(resendWithin), d: d}
		at, _ := slices.BinarySearchFunc(g.pending, r.due, func(p resend, due int) int {
			if p.due <= due {
				return -1
			}
			return 1
		})
		g.pending = slices.Insert(g.pending, at, r)
	}
	return d
}

// held is what ps's PSA holds after the event it just made (body, read by
// the router as ev), given the entity as its change API serves it.
func (ps *partnerState) held(body []byte, ev LedgerEntry, api json.RawMessage) held {
	stamp, ok := psa.UpdatedAt(ps.p.PSA, body)
	if !ok {
		// A ConnectWise deletion carries no stamp: the time of the
		// change (the partner's last tick), to the second as ConnectWise
		// writes its times.
		stamp = ps.last.Truncate(time.Second)
	}
	return held{typ: ev.EntityType, id: ev.EntityID, action: ev.Action, updatedAt: stamp, data: api}
}

// pick chooses an entity type, an action and the entity it is about, and
// updates the partner's pool: a created entity joins it, a deleted one
// leaves it, an updated one changes.
func (g *generator) pick(ps *partnerState, burst bool) (string, string, *entity) {
	typ := g.types[len(g.types)-1]
	x := g.rng.Float64() * g.total
	for i, w := range g.weights {
		if x < w {
			typ = g.types[i]
			break
		}
		x -= w
	}
	pl := ps.pool(g, typ)
	w := actionWeights[typ]
	switch {
	case len(pl.live) == 0:
		w = [3]float64{1, 0, 0}
	case burst:
		w = [3]float64{0, 1, 0}
	case len(pl.live) >= maxLive:
		w[0] = 0
	}
	x = g.rng.Float64() * (w[0] + w[1] + w[2])
	act := 2
	for i := range 2 {
		if x < w[i] {
			act = i
			break
		}
		x -= w[i]
	}
	switch act {
	case 0:
		e := g.newEntity(ps, typ, pl.next)
		pl.next++
		pl.live = append(pl.live, e)
		return typ, actions[0], e
	case 1:
		e := pl.live[g.rng.IntN(len(pl.live))]
		g.change(ps, typ, e)
		return typ, actions[1], e
	default:
		i := g.rng.IntN(len(pl.live))
		e := pl.live[i]
		pl.live = slices.Delete(pl.live, i, i+1)
		return typ, actions[2], e
	}
}

// uuid is a random (version 4) UUID from the seed.
func (g *generator) uuid() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], g.rng.Uint64())
	binary.BigEndian.PutUint64(b[8:], g.rng.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// token is n base62 characters from the seed, as Svix message ids are.
func (g *generator) token(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = base62[g.rng.IntN(len(base62))]
	}
	return string(b)
}

// partnerState is one partner's credentials and its PSA's state.
type partnerState struct {
	p      Partner
	worker int

	cwKey      []byte // SHA-256 of the ConnectWise signing key
	haloAuth   string // the Authorization header
	genericKey []byte // the decoded whsec_ key

	idBase  int64
	pools   map[string]*pool
	last    time.Time // the partner's last timestamp, strictly increasing
	company string    // ConnectWise CompanyId
	keyURL  string    // ConnectWise Metadata.key_url (never fetched)
	guids   map[string]string
	seqs    map[string]int64 // Autotask SequenceNumber per webhook
	webhook string           // HaloPSA webhook_id
	notify  int              // HaloPSA notification_id
}

type pool struct {
	next int64
	live []*entity
}

func (g *generator) newPartner(p Partner, worker int) (*partnerState, error) {
	ps := &partnerState{p: p, worker: worker, pools: map[string]*pool{}}
	switch p.PSA {
	case psa.KindConnectWise:
		k := sha256.Sum256([]byte(p.Secret))
		ps.cwKey = k[:]
		ps.company = cwCompany(p.ID)
		ps.keyURL = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/system/callbackentry/key/" + strconv.Itoa(10+g.rng.IntN(90))
	case psa.KindAutotask:
		ps.idBase = 29_000_000
		ps.guids, ps.seqs = map[string]string{}, map[string]int64{}
		for _, t := range EntityTypes {
			ps.guids[t] = g.uuid()
			ps.seqs[t] = 1 + g.rng.Int64N(500)
		}
	case psa.KindHaloPSA:
		auth, err := haloAuthorization(p.Secret)
		if err != nil {
			return nil, err
		}
		ps.haloAuth = auth
		ps.webhook = g.uuid()
		ps.notify = 10 + g.rng.IntN(90)
	case psa.KindGeneric:
		key, err := genericKey(p.Secret)
		if err != nil {
			return nil, err
		}
		ps.genericKey = key
	}
	ps.idBase += int64(g.rng.IntN(100)) * 1000
	return ps, nil
}

// cwCompany is the ConnectWise CompanyId of partner id: its letters and
// digits.
func cwCompany(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, id)
}

// pool returns the partner's pool of typ, made on first use with a few
// entities that existed before the run.
func (ps *partnerState) pool(g *generator, typ string) *pool {
	if pl := ps.pools[typ]; pl != nil {
		return pl
	}
	base := ps.idBase + int64(slices.Index(EntityTypes, typ)+1)*1_000_000
	pl := &pool{next: base}
	for range preexisting {
		pl.live = append(pl.live, g.newEntity(ps, typ, pl.next))
		pl.next++
	}
	ps.pools[typ] = pl
	return pl
}

// tick is the partner's next timestamp: now at 100 ns resolution, later
// than the previous one, so that no two events of one partner share one.
func (ps *partnerState) tick(now time.Time) time.Time {
	t := now.UTC().Truncate(100 * time.Nanosecond)
	if !t.After(ps.last) {
		t = ps.last.Add(100 * time.Nanosecond)
	}
	ps.last = t
	return t
}

// sign sets the headers that authenticate d for the partner's PSA, as of
// now (only the generic kind's depend on the time).
func (ps *partnerState) sign(h http.Header, d *delivery, now time.Time) {
	switch ps.p.PSA {
	case psa.KindConnectWise:
		mac := hmac.New(sha256.New, ps.cwKey)
		mac.Write(d.body)
		h.Set("X-Content-Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	case psa.KindAutotask:
		mac := hmac.New(sha1.New, []byte(ps.p.Secret))
		mac.Write(d.body)
		h.Set("X-Hook-Signature", "sha1="+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	case psa.KindHaloPSA:
		h.Set("Authorization", ps.haloAuth)
	case psa.KindGeneric:
		ts := strconv.FormatInt(now.Unix(), 10)
		mac := hmac.New(sha256.New, ps.genericKey)
		mac.Write([]byte(d.msgID + "." + ts + "."))
		mac.Write(d.body)
		h.Set("Webhook-Id", d.msgID)
		h.Set("Webhook-Timestamp", ts)
		h.Set("Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
}

// checkSecret reports whether p's kind is known and its secret is in the
// format the router verifies with.
func checkSecret(p Partner) error {
	switch p.PSA {
	case psa.KindConnectWise:
		if p.Secret == "" {
			return fmt.Errorf("simulate: partner %s: a ConnectWise partner needs its signing key (the simulator does not serve Metadata.key_url)", p.ID)
		}
	case psa.KindAutotask:
		if p.Secret == "" {
			return fmt.Errorf("simulate: partner %s: an Autotask partner needs its webhook secret", p.ID)
		}
	case psa.KindHaloPSA:
		if _, err := haloAuthorization(p.Secret); err != nil {
			return fmt.Errorf("simulate: partner %s: %w", p.ID, err)
		}
	case psa.KindGeneric:
		if _, err := genericKey(p.Secret); err != nil {
			return fmt.Errorf("simulate: partner %s: %w", p.ID, err)
		}
	default:
		return fmt.Errorf("simulate: partner %s: psa %q is not connectwise, autotask, halopsa or generic", p.ID, p.PSA)
	}
	return nil
}

// haloAuthorization is the Authorization header for "basic:USER:PASSWORD"
// or "bearer:TOKEN".
func haloAuthorization(secret string) (string, error) {
	kind, cred, _ := strings.Cut(secret, ":")
	switch strings.ToLower(kind) {
	case "basic":
		if user, _, ok := strings.Cut(cred, ":"); ok && user != "" {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred)), nil
		}
	case "bearer":
		if cred != "" && strings.TrimSpace(cred) == cred {
			return "Bearer " + cred, nil
		}
	}
	return "", errors.New(`HaloPSA credentials are neither "basic:USER:PASSWORD" nor "bearer:TOKEN"`)
}

// genericKey decodes a Standard Webhooks secret ("whsec_" optional).
func genericKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, errors.New(`the generic secret is not "whsec_" and the base64 of the key`)
	}
	return key, nil
}

// deliveryHash is the router's DeliveryID for PSAs without a delivery id
// (internal/psa's documented encoding): "h:" and the hex SHA-256 of the
// kind and the fields, each preceded by its length as a uvarint.
func deliveryHash(kind string, fields ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, f := range append([]string{kind}, fields...) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	return "h:" + hex.EncodeToString(h.Sum(nil))
}

func joinArray(items [][]byte) []byte {
	b := []byte{'['}
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}
