package webui

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// session is a signed-in browser. The cookie carries id; everything else
// stays here.
type session struct {
	id   string
	name string      // the token's name: the actor of every change
	role domain.Role // the token's role, refreshed from the token on each request
	// issued is the token's creation time: a token revoked and created
	// again under the same name does not revive the old token's sessions.
	issued  time.Time
	csrf    string
	expires time.Time
}

// flash is a one-time message shown on the next page of a session.
type flash struct {
	Kind string // "ok" or "error"
	Text string
}

// sessions is the in-memory session table. It has no goroutine of its own:
// expired sessions are dropped when they are looked up and swept when the
// table is full. A restart signs everybody out, which is the safe side.
type sessions struct {
	mu      sync.Mutex
	max     int
	m       map[string]session // by key(id)
	flashes map[string][]flash
}

func newSessions(max int) *sessions {
	return &sessions{max: max, m: map[string]session{}, flashes: map[string][]flash{}}
}

// key is what the table is indexed by: the SHA-256 of the cookie value, so
// that the table never holds a usable cookie and map lookups time nothing
// about a guess.
func key(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// randomString returns 32 random bytes, base64url encoded.
func randomString() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails, per crypto/rand
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for tok that lasts ttl.
func (ss *sessions) create(tok domain.Token, now time.Time, ttl time.Duration) session {
	s := session{id: randomString(), name: tok.Name, role: tok.Role, issued: tok.CreatedAt,
		csrf: randomString(), expires: now.Add(ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= ss.max {
		ss.sweepLocked(now)
	}
	if len(ss.m) >= ss.max {
		// Still full of live sessions: end the one closest to expiring
		// rather than refuse a sign-in.
		var oldest string
		for k, e := range ss.m {
			if oldest == "" || e.expires.Before(ss.m[oldest].expires) {
				oldest = k
			}
		}
		ss.deleteLocked(oldest)
	}
	ss.m[key(s.id)] = s
	return s
}

// get returns the live session whose cookie value is id.
func (ss *sessions) get(id string, now time.Time) (session, bool) {
	if id == "" {
		return session{}, false
	}
	k := key(id)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[k]
	if !ok {
		return session{}, false
	}
	if !now.Before(s.expires) {
		ss.deleteLocked(k)
		return session{}, false
	}
	return s, true
}

// delete ends the session whose cookie value is id.
func (ss *sessions) delete(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.deleteLocked(key(id))
}

// addFlash queues a message for the session's next page.
func (ss *sessions) addFlash(id string, f flash) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := key(id)
	if _, ok := ss.m[k]; !ok {
		return
	}
	if q := ss.flashes[k]; len(q) < 10 {
		ss.flashes[k] = append(q, f)
	}
}

// takeFlashes returns and forgets the session's queued messages.
func (ss *sessions) takeFlashes(id string) []flash {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := key(id)
	f := ss.flashes[k]
	delete(ss.flashes, k)
	return f
}

// len returns the number of sessions held, live or not yet swept.
func (ss *sessions) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}

func (ss *sessions) sweepLocked(now time.Time) {
	for k, s := range ss.m {
		if !now.Before(s.expires) {
			ss.deleteLocked(k)
		}
	}
}

func (ss *sessions) deleteLocked(k string) {
	delete(ss.m, k)
	delete(ss.flashes, k)
}
