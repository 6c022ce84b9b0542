package flags

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// maxEventBytes caps one event of the snapshot stream: a snapshot is one
// JSON document on one data line and may weigh several MB.
const maxEventBytes = 64 << 20

// streamError is why a stream ended, on the provider's side. A constant
// type, so the package keeps no variables.
type streamError string

func (e streamError) Error() string { return string(e) }

const (
	errEventTooLarge streamError = "stream event larger than the limit"
	errStreamClosed  streamError = "control service closed the stream"
	errHeartbeat     streamError = "no data, not even a heartbeat, within the heartbeat timeout"
	errDeltaGap      streamError = "delta for another version than the one held: reconnecting for the whole snapshot"
)

// statusError is a non-200 answer to the stream request.
type statusError struct{ code int }

func (e *statusError) Error() string {
	return "control service answered " + strconv.Itoa(e.code) + " " + http.StatusText(e.code)
}

func (e *statusError) auth() bool {
	return e.code == http.StatusUnauthorized || e.code == http.StatusForbidden
}

// streamMsg goes from the stream reader to the sync loop: either the news
// that the stream is established, or a decoded snapshot and its JSON, or a
// decoded delta.
type streamMsg struct {
	connected bool
	// upToDate says the control service holds no newer snapshot than the
	// one named by Last-Event-ID.
	upToDate bool
	snap     *Snapshot
	raw      []byte
	delta    *snapshotDelta
}

// sync is the provider's sync loop: it keeps one stream open to a replica
// of the control service, applies the snapshots it brings, moves to the
// next replica with backoff when it ends, and tells the OpenFeature API
// when the provider goes stale and, after StaleGrace, into error. It
// returns when ctx is done.
func (p *Provider) sync(ctx context.Context) {
	// The provider starts disconnected: with a snapshot from the file, the
	// grace period runs from now.
	grace := time.NewTimer(p.opts.StaleGrace)
	defer grace.Stop()
	attempt := 0
	for {
		i := int(p.active.Load())
		r := p.replicas[i]
		connected, err := p.session(ctx, r, grace)
		if ctx.Err() != nil {
			return
		}
		if connected && errors.Is(err, errDeltaGap) {
			// Not a failure of the replica: ask it again, at once, for
			// the whole snapshot.
			p.log.Info("flags: "+err.Error(), "url", r.stream)
			p.current.Store(false)
			attempt = 0
			grace.Reset(p.opts.StaleGrace)
			continue
		}
		if connected {
			attempt = 0
			grace.Reset(p.opts.StaleGrace)
		}
		p.onDisconnected(connected, err)
		// Every failure moves on, a refused token too: replicas share
		// their tokens, but one may not know a new token yet, or the
		// address may lead to something else than the control service.
		n := (i + 1) % len(p.replicas)
		p.active.Store(int32(n))
		next := p.replicas[n]

		var delay time.Duration
		var se *statusError
		switch {
		case errors.As(err, &se) && se.auth():
			// A bad token stays bad: retry slowly, and say so loudly.
			delay = p.opts.MaxBackoff/2 + rand.N(p.opts.MaxBackoff/2+1)
			p.log.Error("flags: control service refused the token", "url", r.stream, "status", se.code, "next", next.stream, "retry_in", delay)
		default:
			delay = backoff(attempt, p.opts.MinBackoff, p.opts.MaxBackoff)
			if attempt == 0 {
				p.log.Warn("flags: snapshot stream lost", "url", r.stream, "err", err, "next", next.stream, "retry_in", delay)
			} else {
				p.log.Debug("flags: snapshot stream reconnect failed", "url", r.stream, "err", err, "attempt", attempt, "next", next.stream, "retry_in", delay)
			}
		}
		attempt++

		wait := time.NewTimer(delay)
	waiting:
		for {
			select {
			case <-wait.C:
				break waiting
			case <-grace.C:
				p.onGraceExpired()
			case <-ctx.Done():
				wait.Stop()
				return
			}
		}
	}
}

// backoff returns a delay drawn uniformly from [0, min(max, min·2^attempt)]:
// capped exponential backoff with full jitter, so that many routers cut off
// together do not come back together.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	ceil := min(lo, hi)
	for range attempt { // doubling, not shifting: no overflow whatever lo is
		if ceil >= hi/2 {
			ceil = hi
			break
		}
		ceil *= 2
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil + 1)
}

// session runs one stream until it ends, applying what it brings. It
// reports whether the stream was established, and why it ended.
func (p *Provider) session(ctx context.Context, r replica, grace *time.Timer) (connected bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan streamMsg)
	done := make(chan error, 1)
	var since string
	if h := p.cur.Load(); h != nil {
		since = lastEventID(h.snap)
	}
	go func() { done <- p.stream(sctx, r.stream, since, msgs) }()
	for {
		select {
		case m := <-msgs:
			if m.connected {
				connected = true
				grace.Stop()
				p.onConnected()
				p.log.Info("flags: connected to the snapshot stream", "url", r.stream, "since", since)
				continue
			}
			if m.upToDate {
				if h := p.cur.Load(); h != nil && lastEventID(h.snap) == since {
					p.current.Store(true)
				}
				continue
			}
			if m.delta != nil {
				if !p.applyDelta(m.delta) {
					cancel()
					<-done
					return connected, errDeltaGap
				}
				continue
			}
			p.apply(m.snap, m.raw, true)
		case err := <-done:
			return connected, err
		case <-grace.C:
			p.onGraceExpired()
		case <-ctx.Done():
			cancel()
			<-done
			return connected, ctx.Err()
		}
	}
}

// lastEventID names the snapshot held, for Last-Event-ID: "STORE:VERSION",
// or the version alone for a snapshot without a store id. A control
// service sends its snapshot whenever it is not the one named, so that a
// provider holding a version of the store that the store no longer has
// learns it.
func lastEventID(s *Snapshot) string {
	v := strconv.FormatUint(s.Version, 10)
	if s.StoreID == "" {
		return v
	}
	return s.StoreID + ":" + v
}

// stream makes one request to the snapshot stream at url and reads it until
// it ends, sending what it reads to out. since, if not empty, names the
// snapshot held, sent as Last-Event-ID. It returns why the stream ended.
func (p *Provider) stream(ctx context.Context, url, since string, out chan<- streamMsg) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The watchdog drops the stream when nothing arrives for the heartbeat
	// timeout: while connecting, and then between any two bytes.
	watchdog := time.AfterFunc(p.opts.HeartbeatTimeout, func() { cancel(errHeartbeat) })
	defer watchdog.Stop()
	cause := func(err error) error {
		if c := context.Cause(ctx); errors.Is(c, errHeartbeat) {
			return errHeartbeat
		}
		return err
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.opts.Token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if since != "" {
		req.Header.Set("Last-Event-ID", since)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return cause(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return &statusError{code: resp.StatusCode}
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/event-stream" {
		return fmt.Errorf("control service answered Content-Type %q, want text/event-stream", resp.Header.Get("Content-Type"))
	}
	select {
	case out <- streamMsg{connected: true}:
	case <-ctx.Done():
		return cause(ctx.Err())
	}

	rd := newSSEReader(&activityReader{r: resp.Body, t: watchdog, d: p.opts.HeartbeatTimeout}, p.maxEvent)
	for {
		ev, err := rd.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errStreamClosed
			}
			return cause(err)
		}
		if ev.typ == "current" {
			select {
			case out <- streamMsg{upToDate: true}:
			case <-ctx.Done():
				return cause(ctx.Err())
			}
			continue
		}
		if ev.typ == "delta" {
			d, err := decodeDelta(ev.data)
			if err != nil {
				// The next version will not apply either: reconnect for
				// the whole snapshot.
				p.log.Warn("flags: undecodable delta event", "id", ev.id, "bytes", len(ev.data), "err", err)
				return errDeltaGap
			}
			select {
			case out <- streamMsg{delta: d}:
			case <-ctx.Done():
				return cause(ctx.Err())
			}
			continue
		}
		if ev.typ != "snapshot" {
			p.log.Debug("flags: stream event ignored", "event", ev.typ)
			continue
		}
		s, err := decodeSnapshot(ev.data)
		if err != nil {
			// Never fatal: keep the last good snapshot and the stream; the
			// next version will come whole.
			p.log.Warn("flags: undecodable snapshot event ignored", "id", ev.id, "bytes", len(ev.data), "err", err)
			continue
		}
		select {
		case out <- streamMsg{snap: s, raw: ev.data}:
		case <-ctx.Done():
			return cause(ctx.Err())
		}
	}
}

// decodeSnapshot decodes a snapshot's JSON. It returns an error for
// anything but a JSON object with a version above zero.
func decodeSnapshot(data []byte) (*Snapshot, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, errors.New("snapshot is not a JSON object")
	}
	var s Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	if s.Version == 0 {
		return nil, errors.New("snapshot has no version")
	}
	return &s, nil
}

// activityReader pushes the watchdog back each time bytes arrive.
type activityReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (a *activityReader) Read(b []byte) (int, error) {
	n, err := a.r.Read(b)
	if n > 0 {
		a.t.Reset(a.d)
	}
	return n, err
}

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	id   string // the last event id seen, as the SSE spec defines it
	typ  string // "message" when the event has no event field
	data []byte // the data lines joined with "\n"; owned by the receiver
}

// sseReader parses a text/event-stream as the WHATWG spec says: lines end
// with LF, CRLF or CR; a blank line dispatches; lines starting with ':' are
// comments; fields are event, data (repeatable), id and retry. An event
// whose data passes max bytes, or a line longer than that, is an error.
type sseReader struct {
	r   io.Reader
	max int
	err error // the reader's error, returned once the buffer is consumed

	buf        []byte
	start, end int  // the unread bytes are buf[start:end]
	scanned    int  // how many of them are known to hold no line end
	skipLF     bool // the last line ended with CR: a LF right after is part of it

	lastID  string
	typ     string
	data    []byte
	hasData bool
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: r, max: max, buf: make([]byte, 64<<10)}
}

// next returns the next event, or the error that ended the stream (io.EOF
// at its end; an event cut short by the end is dropped, as the spec says).
func (r *sseReader) next() (sseEvent, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		ev, ok, err := r.field(line)
		if err != nil {
			return sseEvent{}, err
		}
		if ok {
			return ev, nil
		}
	}
}

// readLine returns the next line without its end (LF, CRLF or CR). The
// slice is valid until the next call. A line longer than the event limit is
// an error; a line cut short by the end of the stream is dropped.
func (r *sseReader) readLine() ([]byte, error) {
	for {
		if r.skipLF && r.start < r.end {
			if r.buf[r.start] == '\n' {
				r.start++
			}
			r.skipLF = false
		}
		if i := indexLineEnd(r.buf[r.start+r.scanned : r.end]); i >= 0 {
			i += r.start + r.scanned
			line := r.buf[r.start:i]
			r.skipLF = r.buf[i] == '\r'
			r.start, r.scanned = i+1, 0
			return line, nil
		}
		r.scanned = r.end - r.start // each byte is scanned once, however long the line
		if r.scanned > r.max+1024 { // room for "data: " and the like
			return nil, errEventTooLarge
		}
		if r.err != nil {
			return nil, r.err
		}
		if r.start > 0 {
			r.end = copy(r.buf, r.buf[r.start:r.end])
			r.start = 0
		}
		if r.end == len(r.buf) {
			// Double, but never past what the longest line allowed needs:
			// a full buffer without a line end is then over the limit.
			r.buf = append(r.buf, make([]byte, min(len(r.buf), r.max+2048-len(r.buf)))...)
		}
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		r.err = err
	}
}

// indexLineEnd returns the index of the first CR or LF in b, or -1.
func indexLineEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	head := b
	if i >= 0 {
		head = b[:i]
	}
	if j := bytes.IndexByte(head, '\r'); j >= 0 {
		return j
	}
	return i
}

// field processes one line; it returns an event when the line dispatches
// one.
func (r *sseReader) field(line []byte) (sseEvent, bool, error) {
	if len(line) == 0 {
		if !r.hasData {
			r.typ = ""
			return sseEvent{}, false, nil
		}
		ev := sseEvent{id: r.lastID, typ: r.typ, data: r.data}
		if ev.typ == "" {
			ev.typ = "message"
		}
		if n := len(ev.data); n > 0 && ev.data[n-1] == '\n' {
			ev.data = ev.data[:n-1]
		}
		r.typ, r.data, r.hasData = "", nil, false
		return ev, true, nil
	}
	if line[0] == ':' {
		return sseEvent{}, false, nil // a comment: a heartbeat
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "event":
		r.typ = string(value)
	case "data":
		if len(r.data)+len(value)+1 > r.max {
			return sseEvent{}, false, errEventTooLarge
		}
		if r.data == nil {
			r.data = make([]byte, 0, len(value)+1)
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
		r.hasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.lastID = string(value)
		}
	}
	// retry and unknown fields are ignored: the provider has its own
	// backoff.
	return sseEvent{}, false, nil
}
