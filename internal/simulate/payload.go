package simulate

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/psa"
)

// Made-up but plausible MSP data.
var (
	summaries = []string{
		"Printer on 3rd floor offline", "Email not syncing on iPhone", "VPN drops every 10 minutes",
		"New starter laptop", "Password reset for shared mailbox", "Outlook keeps asking for credentials",
		"Backup job failed overnight", "Wi-Fi slow in the meeting room", "Teams calls dropping",
		"Replace failing disk on FS01", "MFA enrolment for new user", "Firewall firmware update",
		"Scanner not sending to email", "Onboard three new users", "CPU alert on SQL02",
		"Leaver: disable accounts", "Certificate expiring on the web server", "Phone system: add extension",
	}
	notes = []string{
		"Rebuilt the mail profile", "Cleared the print queue", "Remote session with the user",
		"Replaced the toner", "Patched and rebooted", "Called the client", "Reset MFA and re-enrolled",
		"Swapped the disk and started the rebuild", "Updated firmware, tested failover",
	}
	members   = []string{"jsmith", "akhan", "mlopez", "tnguyen", "rpatel", "eokafor"}
	companies = []string{
		"Contoso Ltd", "Fabrikam Inc", "Northwind Traders", "Tailspin Toys", "Wide World Importers",
		"Adventure Works", "Litware Inc", "Proseware", "Alpine Ski House", "Coho Winery",
	}
	firstNames = []string{"Dana", "Sam", "Priya", "Tomás", "Aiko", "Lena", "Marcus", "Olu", "Grace", "Ivan"}
	lastNames  = []string{"Reyes", "Okafor", "Schmidt", "Nakamura", "Dubois", "Patel", "Kowalski", "Haddad", "Lund", "Moreau"}
	titles     = []string{"Office Manager", "Accountant", "Sales Lead", "Director", "Receptionist", "Engineer"}
	// statuses: name and the status ids of ConnectWise, Autotask, HaloPSA.
	statuses = []struct {
		name         string
		cw, at, halo int
	}{
		{"New", 1, 1, 1}, {"In Progress", 17, 8, 2}, {"Waiting on Client", 9, 7, 3},
		{"Scheduled", 12, 12, 4}, {"Resolved", 5, 5, 9},
	}
	priorities = []string{"Priority 1 - Critical", "Priority 2 - High", "Priority 3 - Normal", "Priority 4 - Low"}
)

// entity is one record's current state; its fields are indexes into the
// lists above or small numbers, all drawn from the seed.
type entity struct {
	id       int64
	summary  int
	status   int
	priority int
	owner    int
	company  int
	person   int
	title    int
	phone    int
	ticket   int64 // schedule and time entries: the ticket they belong to
	day      int   // schedule entries: days from now
	hour     int   // schedule entries: start hour
	minutes  int   // time entries: time worked; schedule entries: length
	note     int
	changed  []string // what the last update changed (neutral names)
}

func (g *generator) newEntity(ps *partnerState, typ string, id int64) *entity {
	e := &entity{
		id:       id,
		summary:  g.rng.IntN(len(summaries)),
		status:   0,
		priority: 1 + g.rng.IntN(3),
		owner:    g.rng.IntN(len(members)),
		company:  g.rng.IntN(len(companies)),
		person:   g.rng.IntN(len(firstNames) * len(lastNames)),
		title:    g.rng.IntN(len(titles)),
		phone:    g.rng.IntN(10000),
		day:      1 + g.rng.IntN(5),
		hour:     8 + g.rng.IntN(9),
		minutes:  15 * (1 + g.rng.IntN(12)),
		note:     g.rng.IntN(len(notes)),
	}
	if typ == ScheduleEntry || typ == TimeEntry {
		e.ticket = ps.ticketRef(g)
	}
	return e
}

// ticketRef is the id of one of the partner's live tickets, or of a ticket
// deleted or closed long ago when it has none.
func (ps *partnerState) ticketRef(g *generator) int64 {
	if pl := ps.pool(g, Ticket); len(pl.live) > 0 {
		return pl.live[g.rng.IntN(len(pl.live))].id
	}
	return ps.idBase + 900_000 + int64(g.rng.IntN(1000))
}

// change updates e as a technician would and notes what changed.
func (g *generator) change(ps *partnerState, typ string, e *entity) {
	switch typ {
	case Ticket:
		switch x := g.rng.IntN(10); {
		case x < 6:
			e.status = (e.status + 1 + g.rng.IntN(len(statuses)-1)) % len(statuses)
			e.changed = []string{"status"}
		case x < 8:
			e.owner = (e.owner + 1 + g.rng.IntN(len(members)-1)) % len(members)
			e.changed = []string{"owner", "status"}
			e.status = 1
		default:
			e.priority = (e.priority + 1 + g.rng.IntN(len(priorities)-1)) % len(priorities)
			e.changed = []string{"priority"}
		}
	case ScheduleEntry:
		if g.rng.IntN(3) == 0 {
			e.owner = (e.owner + 1 + g.rng.IntN(len(members)-1)) % len(members)
			e.changed = []string{"member"}
		} else {
			e.day, e.hour = 1+g.rng.IntN(5), 8+g.rng.IntN(9)
			e.changed = []string{"start", "end"}
		}
	case TimeEntry:
		e.minutes = 15 * (1 + g.rng.IntN(12))
		e.note = g.rng.IntN(len(notes))
		e.changed = []string{"hours", "notes"}
	case Company:
		e.phone = g.rng.IntN(10000)
		e.changed = []string{"phone"}
	case Contact:
		if g.rng.IntN(2) == 0 {
			e.title = g.rng.IntN(len(titles))
			e.changed = []string{"title"}
		} else {
			e.phone = g.rng.IntN(10000)
			e.changed = []string{"phone"}
		}
	}
}

func (e *entity) first() string { return firstNames[e.person%len(firstNames)] }
func (e *entity) last() string  { return lastNames[e.person/len(firstNames)%len(lastNames)] }
func (e *entity) email() string {
	dom := strings.ToLower(strings.Fields(companies[e.company])[0])
	return strings.ToLower(e.first()) + "." + strings.ToLower(e.last()) + "@" + dom + ".example"
}
func (e *entity) tel() string    { return fmt.Sprintf("+44 20 7946 %04d", e.phone) }
func (e *entity) hours() float64 { return float64(e.minutes) / 60 }
func (e *entity) start(now time.Time) time.Time {
	d := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, e.day)
	return d.Add(time.Duration(e.hour) * time.Hour)
}
func (e *entity) end(now time.Time) time.Time {
	return e.start(now).Add(time.Duration(max(e.minutes, 30)) * time.Minute)
}
func (e *entity) idText() string { return strconv.FormatInt(e.id, 10) }

func (e *entity) wasChanged(name string) bool {
	for _, c := range e.changed {
		if c == name {
			return true
		}
	}
	return false
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain values are marshalled
	}
	return b
}

// --- ConnectWise Manage callbacks

var (
	cwTypes   = map[string]string{Ticket: "ticket", ScheduleEntry: "schedule", TimeEntry: "time", Company: "company", Contact: "contact"}
	cwActions = map[string]string{psa.ActionCreated: "added", psa.ActionUpdated: "updated", psa.ActionDeleted: "deleted"}
)

type cwRef struct {
	ID         int64  `json:"id"`
	Identifier string `json:"identifier,omitempty"`
	Name       string `json:"name,omitempty"`
}

type cwInfo struct {
	LastUpdated string `json:"lastUpdated"`
	UpdatedBy   string `json:"updatedBy"`
}

type cwCallback struct {
	MessageID           string  `json:"MessageId"`
	FromURL             string  `json:"FromUrl"`
	CompanyID           string  `json:"CompanyId"`
	MemberID            string  `json:"MemberId"`
	Action              string  `json:"Action"`
	Type                string  `json:"Type"`
	ID                  int64   `json:"ID"`
	Entity              *string `json:"Entity"`
	Metadata            cwMeta  `json:"Metadata"`
	CallbackObjectRecID int     `json:"CallbackObjectRecId"`
}

type cwMeta struct {
	KeyURL string `json:"key_url"`
}

func (g *generator) connectWise(ps *partnerState, typ, act string, e *entity, now time.Time) ([]byte, LedgerEntry, json.RawMessage) {
	t := ps.tick(now)
	member := members[e.owner]
	info := cwInfo{LastUpdated: t.Format(time.RFC3339), UpdatedBy: member}
	memberRef := cwRef{ID: 140 + int64(e.owner), Identifier: member}
	companyRef := cwRef{ID: 250 + int64(e.company), Identifier: strings.ReplaceAll(companies[e.company], " ", ""), Name: companies[e.company]}
	var rec any
	switch typ {
	case Ticket:
		st := statuses[e.status]
		rec = struct {
			ID          int64  `json:"id"`
			Summary     string `json:"summary"`
			Board       cwRef  `json:"board"`
			Status      cwRef  `json:"status"`
			Priority    cwRef  `json:"priority"`
			Company     cwRef  `json:"company"`
			ContactName string `json:"contactName"`
			Owner       cwRef  `json:"owner"`
			Info        cwInfo `json:"_info"`
		}{e.id, summaries[e.summary], cwRef{ID: 1, Name: "Service Desk"}, cwRef{ID: int64(st.cw), Name: st.name},
			cwRef{ID: 1 + int64(e.priority), Name: priorities[e.priority]}, companyRef, e.first() + " " + e.last(), memberRef, info}
	case ScheduleEntry:
		rec = struct {
			ID        int64  `json:"id"`
			ObjectID  int64  `json:"objectId"`
			Type      cwRef  `json:"type"`
			Member    cwRef  `json:"member"`
			DateStart string `json:"dateStart"`
			DateEnd   string `json:"dateEnd"`
			Info      cwInfo `json:"_info"`
		}{e.id, e.ticket, cwRef{ID: 4, Identifier: "S"}, memberRef, e.start(now).Format(time.RFC3339), e.end(now).Format(time.RFC3339), info}
	case TimeEntry:
		rec = struct {
			ID           int64   `json:"id"`
			ChargeToID   int64   `json:"chargeToId"`
			ChargeToType string  `json:"chargeToType"`
			Member       cwRef   `json:"member"`
			ActualHours  float64 `json:"actualHours"`
			Notes        string  `json:"notes"`
			Info         cwInfo  `json:"_info"`
		}{e.id, e.ticket, "ServiceTicket", memberRef, e.hours(), notes[e.note], info}
	case Company:
		rec = struct {
			ID          int64  `json:"id"`
			Identifier  string `json:"identifier"`
			Name        string `json:"name"`
			Status      cwRef  `json:"status"`
			PhoneNumber string `json:"phoneNumber"`
			Info        cwInfo `json:"_info"`
		}{e.id, companyRef.Identifier, companies[e.company], cwRef{ID: 1, Name: "Active"}, e.tel(), info}
	case Contact:
		rec = struct {
			ID        int64  `json:"id"`
			FirstName string `json:"firstName"`
			LastName  string `json:"lastName"`
			Title     string `json:"title"`
			Company   cwRef  `json:"company"`
			Info      cwInfo `json:"_info"`
		}{e.id, e.first(), e.last(), titles[e.title], cwRef{ID: companyRef.ID, Identifier: companyRef.Identifier}, info}
	}
	cb := cwCallback{
		MessageID: g.uuid(),
		FromURL:   "https://na.myconnectwise.net",
		CompanyID: ps.company,
		MemberID:  member,
		Action:    cwActions[act],
		Type:      cwTypes[typ],
		ID:        e.id,
		Metadata:  cwMeta{KeyURL: ps.keyURL},
	}
	// The REST API's ticket is the record the callback carries.
	var api json.RawMessage
	if act != psa.ActionDeleted {
		b := mustJSON(rec)
		s := string(b)
		cb.Entity = &s
		if typ == Ticket {
			api = b
		}
	}
	return mustJSON(cb), LedgerEntry{EntityType: typ, EntityID: e.idText(), Action: act, DeliveryID: cb.MessageID}, api
}

// --- Autotask

var (
	atTypes   = map[string]string{Ticket: "Ticket", ScheduleEntry: "ServiceCall", TimeEntry: "TimeEntry", Company: "Company", Contact: "Contact"}
	atActions = map[string]string{psa.ActionCreated: "Create", psa.ActionUpdated: "Update", psa.ActionDeleted: "Delete"}
)

type atWebhook struct {
	Action         string         `json:"Action"`
	GUID           string         `json:"Guid"`
	EntityType     string         `json:"EntityType"`
	ID             int64          `json:"Id"`
	Fields         map[string]any `json:"Fields"`
	EventTime      string         `json:"EventTime"`
	SequenceNumber int64          `json:"SequenceNumber"`
	PersonID       int64          `json:"PersonID"`
}

func (g *generator) autotask(ps *partnerState, typ, act string, e *entity, now time.Time) ([]byte, LedgerEntry, json.RawMessage) {
	t := ps.tick(now)
	resource := int64(29682885 + e.owner)
	companyID := int64(29683601 + e.company)
	var all map[string]any
	// changedFields maps the entity's neutral change names to Fields names.
	var changedFields map[string][]string
	switch typ {
	case Ticket:
		all = map[string]any{
			"TicketNumber": fmt.Sprintf("T%s.%04d", t.Format("20060102"), e.id%10000), "Title": summaries[e.summary],
			"Status": statuses[e.status].at, "Priority": 4 - e.priority, "CompanyID": companyID,
			"AssignedResourceID": resource, "LastActivityDate": t.Format("2006-01-02T15:04:05.000Z"),
		}
		changedFields = map[string][]string{"status": {"Status"}, "owner": {"AssignedResourceID"}, "priority": {"Priority"}}
	case ScheduleEntry:
		all = map[string]any{
			"StartDateTime": e.start(now).Format(time.RFC3339), "EndDateTime": e.end(now).Format(time.RFC3339),
			"Status": 2, "CompanyID": companyID, "Description": summaries[e.summary],
		}
		changedFields = map[string][]string{"start": {"StartDateTime"}, "end": {"EndDateTime"}, "member": {"Status"}}
	case TimeEntry:
		all = map[string]any{
			"TicketID": e.ticket, "ResourceID": resource, "HoursWorked": e.hours(),
			"SummaryNotes": notes[e.note], "DateWorked": t.Format("2006-01-02") + "T00:00:00Z",
		}
		changedFields = map[string][]string{"hours": {"HoursWorked"}, "notes": {"SummaryNotes"}}
	case Company:
		all = map[string]any{"CompanyName": companies[e.company], "CompanyType": 1, "Phone": e.tel(), "Active": true}
		changedFields = map[string][]string{"phone": {"Phone"}}
	case Contact:
		all = map[string]any{
			"FirstName": e.first(), "LastName": e.last(), "EMailAddress": e.email(), "Phone": e.tel(),
			"Title": titles[e.title], "CompanyID": companyID,
		}
		changedFields = map[string][]string{"phone": {"Phone"}, "title": {"Title"}}
	}
	fields := all
	switch act {
	case psa.ActionUpdated:
		fields = map[string]any{}
		for _, c := range e.changed {
			for _, f := range changedFields[c] {
				fields[f] = all[f]
			}
		}
		if v, ok := all["LastActivityDate"]; ok {
			fields["LastActivityDate"] = v
		}
	case psa.ActionDeleted:
		fields = map[string]any{}
	}
	ps.seqs[typ]++
	w := atWebhook{
		Action:         atActions[act],
		GUID:           ps.guids[typ],
		EntityType:     atTypes[typ],
		ID:             e.id,
		Fields:         fields,
		EventTime:      t.Format("2006-01-02T15:04:05.000Z"),
		SequenceNumber: ps.seqs[typ],
		PersonID:       resource,
	}
	did := deliveryHash(psa.KindAutotask, w.GUID, w.EntityType, e.idText(), w.Action,
		strconv.FormatInt(w.SequenceNumber, 10), w.EventTime)
	// The REST API names the same fields in lower camel case
	// (lastActivityDate) and holds all of them, not only those changed.
	var api json.RawMessage
	if typ == Ticket && act != psa.ActionDeleted {
		rest := map[string]any{"id": e.id}
		for k, v := range all {
			rest[strings.ToLower(k[:1])+k[1:]] = v
		}
		api = mustJSON(rest)
	}
	return mustJSON(w), LedgerEntry{EntityType: typ, EntityID: e.idText(), Action: act, DeliveryID: did}, api
}

// --- HaloPSA

var haloEvents = map[string][3]string{
	Ticket:        {"New Ticket Logged", "Ticket Updated", "Ticket Deleted"},
	ScheduleEntry: {"New Appointment", "Appointment Updated", "Appointment Deleted"},
	TimeEntry:     {"New Timesheet Entry", "Timesheet Entry Updated", "Timesheet Entry Deleted"},
	Company:       {"New Client", "Client Updated", "Client Deleted"},
	Contact:       {"New User", "User Updated", "User Deleted"},
}

type haloEvent struct {
	ID             string `json:"id"`
	WebhookID      string `json:"webhook_id"`
	NotificationID int    `json:"notification_id"`
	EscMsgID       string `json:"escmsg_id"`
	Event          string `json:"event"`
	Message        string `json:"message"`
	ObjectID       int64  `json:"object_id"`
	AgentID        int    `json:"agent_id"`
	Timestamp      string `json:"timestamp"`
	Ticket         any    `json:"ticket,omitempty"`
	Appointment    any    `json:"appointment,omitempty"`
	Timesheet      any    `json:"timesheet,omitempty"`
	Client         any    `json:"client,omitempty"`
	User           any    `json:"user,omitempty"`
}

func (g *generator) haloEvent(ps *partnerState, typ, act string, e *entity, now time.Time) ([]byte, LedgerEntry, json.RawMessage) {
	t := ps.tick(now)
	event := haloEvents[typ][slices.Index(actions[:], act)]
	if typ == Ticket && act == psa.ActionUpdated && e.wasChanged("status") && g.rng.IntN(2) == 0 {
		event = "Ticket Status Changed"
	}
	ev := haloEvent{
		ID:             g.uuid(),
		WebhookID:      ps.webhook,
		NotificationID: ps.notify,
		EscMsgID:       g.uuid(),
		Event:          event,
		Message:        event + ": " + e.idText(),
		ObjectID:       e.id,
		AgentID:        1 + e.owner,
		Timestamp:      t.Format("2006-01-02T15:04:05.0000000Z"),
	}
	if act != psa.ActionDeleted {
		switch typ {
		case Ticket:
			obj := map[string]any{"id": e.id, "status_id": statuses[e.status].halo, "agent_id": 1 + e.owner}
			if act == psa.ActionCreated {
				obj["summary"] = summaries[e.summary]
				obj["client_id"] = 10 + e.company
				obj["client_name"] = companies[e.company]
				obj["priority_id"] = 1 + e.priority
				obj["user_name"] = e.first() + " " + e.last()
				obj["team"] = "1st Line"
			}
			ev.Ticket = obj
		case ScheduleEntry:
			ev.Appointment = map[string]any{"id": e.id, "subject": summaries[e.summary], "ticket_id": e.ticket, "agent_id": 1 + e.owner,
				"start_date": e.start(now).Format(time.RFC3339), "end_date": e.end(now).Format(time.RFC3339)}
		case TimeEntry:
			ev.Timesheet = map[string]any{"id": e.id, "ticket_id": e.ticket, "agent_id": 1 + e.owner,
				"timetaken": e.hours(), "note": notes[e.note]}
		case Company:
			ev.Client = map[string]any{"id": e.id, "name": companies[e.company], "phonenumber": e.tel(), "inactive": false}
		case Contact:
			ev.User = map[string]any{"id": e.id, "name": e.first() + " " + e.last(), "emailaddress": e.email(),
				"jobtitle": titles[e.title], "client_id": 10 + e.company}
		}
	}
	did := deliveryHash(psa.KindHaloPSA, ev.WebhookID, ev.Event, e.idText(), ev.Timestamp)
	// The API's ticket is whole, whatever the event carried, and its
	// last_update is the event's timestamp (the router's stamp for it),
	// written without a zone as Halo writes UTC.
	var api json.RawMessage
	if typ == Ticket && act != psa.ActionDeleted {
		api = mustJSON(map[string]any{"id": e.id, "summary": summaries[e.summary], "status_id": statuses[e.status].halo,
			"agent_id": 1 + e.owner, "client_id": 10 + e.company, "client_name": companies[e.company],
			"priority_id": 1 + e.priority, "user_name": e.first() + " " + e.last(), "team": "1st Line",
			"last_update": t.Format("2006-01-02T15:04:05.0000000")})
	}
	return mustJSON(ev), LedgerEntry{EntityType: typ, EntityID: e.idText(), Action: act, DeliveryID: did}, api
}

// --- generic (Standard Webhooks)

func (g *generator) generic(ps *partnerState, typ, act string, e *entity, now time.Time) ([]byte, LedgerEntry, json.RawMessage) {
	t := ps.tick(now)
	data := map[string]any{"id": e.idText()}
	if act != psa.ActionDeleted {
		switch typ {
		case Ticket:
			data["summary"] = summaries[e.summary]
			data["status"] = statuses[e.status].name
			data["priority"] = priorities[e.priority]
			data["company"] = companies[e.company]
			data["assignee"] = members[e.owner]
		case ScheduleEntry:
			data["ticket_id"] = strconv.FormatInt(e.ticket, 10)
			data["member"] = members[e.owner]
			data["start"] = e.start(now).Format(time.RFC3339)
			data["end"] = e.end(now).Format(time.RFC3339)
		case TimeEntry:
			data["ticket_id"] = strconv.FormatInt(e.ticket, 10)
			data["member"] = members[e.owner]
			data["hours"] = e.hours()
			data["billable"] = true
			data["notes"] = notes[e.note]
		case Company:
			data["name"] = companies[e.company]
			data["phone"] = e.tel()
		case Contact:
			data["first_name"] = e.first()
			data["last_name"] = e.last()
			data["email"] = e.email()
			data["title"] = titles[e.title]
		}
		if act == psa.ActionUpdated && len(e.changed) > 0 {
			data["changed"] = e.changed
		}
	}
	// To the 100 ns of the partner's clock, on a deletion too: whole
	// seconds (or timestamp's milliseconds) would give two changes of one
	// entity close together the same stamp, and a reconciliation could
	// not tell the second was never applied.
	data["updated_at"] = t.Format(time.RFC3339Nano)
	body := mustJSON(struct {
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}{typ + "." + act, t.Format("2006-01-02T15:04:05.000Z"), data})
	// The change feed's data is the webhook's; a deletion stays listed,
	// marked so (see ChangeAPI).
	api := mustJSON(data)
	if act == psa.ActionDeleted {
		api = mustJSON(map[string]any{"id": e.idText(), "updated_at": data["updated_at"], "deleted": true})
	}
	return body, LedgerEntry{EntityType: typ, EntityID: e.idText(), Action: act}, api
}
