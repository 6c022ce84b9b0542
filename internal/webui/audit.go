package webui

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/domain"
)

type auditPage struct {
	base
	Actor, Action   string
	Actors, Actions []string
	Entries         []auditRow
	Total           int // entries in the log
	Matched         int // entries that match the filter
	Chain           chainStatus
	Older           string // link to the next page of older entries, or ""
}

// chainStatus is the verdict on the whole log's hash chain.
type chainStatus struct {
	OK       bool
	Checked  int
	Break    *audit.Break
	LastHash string
}

type auditRow struct {
	domain.AuditEntry
	BeforeText, AfterText string
}

// auditPageSize is how many entries one page of the audit log shows.
const auditPageSize = 200

// audit serves GET /audit?actor=&action=&before=SEQ: the newest entries
// first, filtered, with the verification of the whole chain.
//
// It reads and verifies the whole log on each view: simple and exact, and
// cheap while logs hold thousands of entries, not millions.
func (u *UI) audit(w http.ResponseWriter, r *http.Request, s session) error {
	q := r.URL.Query()
	data := auditPage{Actor: q.Get("actor"), Action: q.Get("action")}
	var before uint64
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return domain.Errorf(domain.CodeInvalid, "before must be a sequence number")
		}
		before = n
	}
	v := audit.NewVerifier(domain.AuditEntry{})
	actors, actions := map[string]bool{}, map[string]bool{}
	var matched []domain.AuditEntry
	var after uint64
	for {
		page, err := u.svc.AuditLog(r.Context(), after, 1000)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		if data.Chain.Break == nil {
			if err := v.Check(page); err != nil {
				var b *audit.Break
				if !errors.As(err, &b) {
					return domain.Internal("verify audit log", err)
				}
				data.Chain.Break = b
			}
		}
		for _, e := range page {
			data.Total++
			actors[e.Actor], actions[e.Action] = true, true
			if (data.Actor == "" || e.Actor == data.Actor) && (data.Action == "" || e.Action == data.Action) {
				matched = append(matched, e)
			}
			data.Chain.LastHash = e.Hash
		}
		after = page[len(page)-1].Seq
	}
	data.Chain.Checked = v.Checked
	data.Chain.OK = data.Chain.Break == nil
	data.Actors, data.Actions = slices.Sorted(maps.Keys(actors)), slices.Sorted(maps.Keys(actions))
	data.Matched = len(matched)
	slices.Reverse(matched)
	for _, e := range matched {
		if before != 0 && e.Seq >= before {
			continue
		}
		if len(data.Entries) == auditPageSize {
			qq := r.URL.Query()
			qq.Set("before", strconv.FormatUint(data.Entries[len(data.Entries)-1].Seq, 10))
			data.Older = "?" + qq.Encode()
			break
		}
		data.Entries = append(data.Entries, auditRow{AuditEntry: e, BeforeText: prettyJSON(e.Before), AfterText: prettyJSON(e.After)})
	}
	data.base = u.base(w, r, &s, "audit", "version")
	u.render(w, r, http.StatusOK, "audit", &data)
	return nil
}

// prettyJSON indents raw JSON for reading; "" for null or nothing.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}
