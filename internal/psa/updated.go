package psa

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// UpdatedAt returns the time the PSA says the entity of one event's
// payload (an Envelope's Payload, as journaled) was last updated, on the
// PSA's own clock, and false when the payload carries none that can be
// read. It never fails otherwise: a payload it cannot read has no stamp.
//
// The reconciliation compares this stamp with the updatedAt the PSA's
// change API reports for the entity, both on the PSA's clock, so each PSA
// is read for the field its change API reads, and for the event's own time
// only when that field is absent (the event is sent after the change it
// reports, so its time is never before the change's):
//
//   - connectwise: Entity (an escaped JSON string, or an object)
//     _info.lastUpdated; deletions carry no Entity, so no stamp.
//   - autotask: Fields.LastActivityDate (tickets), else
//     Fields.LastModifiedDate, Fields.LastModifiedDateTime,
//     Fields.LastTrackedModifiedDateTime, else EventTime.
//   - halopsa: the object named by the event ("ticket", "appointment",
//     "timesheet", "client", "user", "object") last_update or
//     lastactiondate, else the event's timestamp.
//   - generic: data.updatedAt, else data.updated_at, else timestamp.
//
// Times are RFC 3339 with any fraction of a second; a time without a zone
// is read as UTC, as Autotask and Halo write theirs. Names match regardless
// of case, as encoding/json matches them.
func UpdatedAt(kind string, payload []byte) (time.Time, bool) {
	switch kind {
	case KindConnectWise:
		return connectWiseUpdatedAt(payload)
	case KindAutotask:
		return autotaskUpdatedAt(payload)
	case KindHaloPSA:
		return haloUpdatedAt(payload)
	case KindGeneric:
		return genericUpdatedAt(payload)
	}
	return time.Time{}, false
}

func connectWiseUpdatedAt(payload []byte) (time.Time, bool) {
	var b struct {
		Entity json.RawMessage `json:"Entity"`
	}
	if json.Unmarshal(payload, &b) != nil {
		return time.Time{}, false
	}
	entity := []byte(b.Entity)
	if len(entity) > 0 && entity[0] == '"' {
		var s string
		if json.Unmarshal(entity, &s) != nil {
			return time.Time{}, false
		}
		entity = []byte(s)
	}
	var e struct {
		Info struct {
			LastUpdated json.RawMessage `json:"lastUpdated"`
		} `json:"_info"`
	}
	if json.Unmarshal(entity, &e) != nil {
		return time.Time{}, false
	}
	return stamp(e.Info.LastUpdated)
}

func autotaskUpdatedAt(payload []byte) (time.Time, bool) {
	var b struct {
		Fields struct {
			LastActivityDate            json.RawMessage `json:"LastActivityDate"`
			LastModifiedDate            json.RawMessage `json:"LastModifiedDate"`
			LastModifiedDateTime        json.RawMessage `json:"LastModifiedDateTime"`
			LastTrackedModifiedDateTime json.RawMessage `json:"LastTrackedModifiedDateTime"`
		} `json:"Fields"`
		EventTime json.RawMessage `json:"EventTime"`
	}
	if json.Unmarshal(payload, &b) != nil {
		return time.Time{}, false
	}
	return firstStamp(b.Fields.LastActivityDate, b.Fields.LastModifiedDate, b.Fields.LastModifiedDateTime,
		b.Fields.LastTrackedModifiedDateTime, b.EventTime)
}

// haloObject is the part of a Halo object read for its last update.
type haloObject struct {
	LastUpdate     json.RawMessage `json:"last_update"`
	LastActionDate json.RawMessage `json:"lastactiondate"`
}

func haloUpdatedAt(payload []byte) (time.Time, bool) {
	var b struct {
		Ticket      *haloObject     `json:"ticket"`
		Appointment *haloObject     `json:"appointment"`
		Timesheet   *haloObject     `json:"timesheet"`
		Client      *haloObject     `json:"client"`
		User        *haloObject     `json:"user"`
		Object      *haloObject     `json:"object"`
		Timestamp   json.RawMessage `json:"timestamp"`
	}
	// A batched delivery is journaled one item per event: an array here is
	// not one event, and has no one stamp.
	if json.Unmarshal(payload, &b) != nil {
		return time.Time{}, false
	}
	for _, o := range []*haloObject{b.Ticket, b.Appointment, b.Timesheet, b.Client, b.User, b.Object} {
		if o == nil {
			continue
		}
		if t, ok := firstStamp(o.LastUpdate, o.LastActionDate); ok {
			return t, true
		}
	}
	return stamp(b.Timestamp)
}

func genericUpdatedAt(payload []byte) (time.Time, bool) {
	var b struct {
		Timestamp json.RawMessage  `json:"timestamp"`
		Data      genericDataStamp `json:"data"`
	}
	if json.Unmarshal(payload, &b) != nil {
		return time.Time{}, false
	}
	return genericStamp(b.Timestamp, b.Data)
}

// genericDataStamp is the part of a Standard Webhooks body's data read for
// its stamp; the generic decoder embeds it to read the stamp in the pass
// that reads the rest of the body.
type genericDataStamp struct {
	UpdatedAt      json.RawMessage `json:"updatedAt"`
	UpdatedAtSnake json.RawMessage `json:"updated_at"`
}

func genericStamp(timestamp json.RawMessage, data genericDataStamp) (time.Time, bool) {
	return firstStamp(data.UpdatedAt, data.UpdatedAtSnake, timestamp)
}

func firstStamp(raws ...json.RawMessage) (time.Time, bool) {
	for _, r := range raws {
		if t, ok := stamp(r); ok {
			return t, true
		}
	}
	return time.Time{}, false
}

// stamp reads a JSON string holding an RFC 3339 time, with or without a
// zone (without one, UTC), as UTC.
func stamp(raw json.RawMessage) (time.Time, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' {
		return time.Time{}, false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return time.Time{}, false
	}
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC); err == nil {
		return t, true
	}
	return time.Time{}, false
}
