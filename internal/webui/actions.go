package webui

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// change is the audited identity of a UI change: the token's name, and the
// reason typed in the form, held to the API's rule for reasons.
func change(r *http.Request, s session) (control.Change, error) {
	c := control.Change{Actor: s.name, Reason: strings.TrimSpace(r.PostForm.Get("reason"))}
	if err := c.Validate(); err != nil {
		return control.Change{}, err
	}
	return c, nil
}

// back returns where a form asked to go after its change, when that is a
// page of this site, else def.
func back(r *http.Request, def string) string {
	if b := r.PostForm.Get("back"); b != "" {
		if p := safeNext(b); p != "/" || b == "/" {
			return p
		}
	}
	return def
}

// revertAll serves POST /revert: every migration's kill switch on, in one
// snapshot version.
func (u *UI) revertAll(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	c, err := change(r, s)
	if err != nil {
		return "/", err
	}
	before := u.svc.State()
	on := 0
	for _, ms := range before.Migrations {
		if !ms.Reverted {
			on++
		}
	}
	v, err := u.svc.RevertAll(r.Context(), c)
	if err != nil {
		return "/", err
	}
	msg := fmt.Sprintf("Reverted: every migration's kill switch is on in snapshot version %d, so every partner is on legacy. Routers confirm that version below.", v)
	switch {
	case len(before.Migrations) == 0:
		msg = "There is no migration to revert."
	case on == 0:
		msg = fmt.Sprintf("Every migration was already reverted (snapshot version %d).", v)
	}
	u.sessions.addFlash(s.id, flash{Kind: "ok", Text: msg})
	return back(r, "/"), nil
}

// revert serves POST /migrations/{key}/revert.
func (u *UI) revert(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	return u.killSwitch(r, s, true)
}

// resume serves POST /migrations/{key}/resume.
func (u *UI) resume(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	return u.killSwitch(r, s, false)
}

func (u *UI) killSwitch(r *http.Request, s session, on bool) (string, error) {
	key := mux.Vars(r)["key"]
	if err := domain.CheckID("migration", key); err != nil {
		return "/", err
	}
	next := back(r, "/migrations/"+key)
	c, err := change(r, s)
	if err != nil {
		return next, err
	}
	var v uint64
	if on {
		v, err = u.svc.Revert(r.Context(), c, key)
	} else {
		v, err = u.svc.Resume(r.Context(), c, key)
	}
	if err != nil {
		return next, err
	}
	msg := fmt.Sprintf("Reverted %s in snapshot version %d: all its partners are on legacy; their stages are kept for resume.", key, v)
	if !on {
		msg = fmt.Sprintf("Resumed %s in snapshot version %d: partners are back at their stages.", key, v)
	}
	u.sessions.addFlash(s.id, flash{Kind: "ok", Text: msg})
	return next, nil
}

// advance serves POST /migrations/{key}/cohorts/{name}/advance. A forced
// advance needs a reason and the cohort's name typed again as a second
// confirmation.
func (u *UI) advance(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	key, name := mux.Vars(r)["key"], mux.Vars(r)["name"]
	if err := domain.CheckID("migration", key); err != nil {
		return "/", err
	}
	next := "/migrations/" + key + "#cohort-" + name
	if err := domain.CheckID("cohort", name); err != nil {
		return next, err
	}
	c, err := change(r, s)
	if err != nil {
		return next, err
	}
	force := r.PostForm.Get("force") == "yes"
	if force {
		if c.Reason == "" {
			return next, domain.Errorf(domain.CodeInvalid, "a forced advance needs a reason")
		}
		if strings.TrimSpace(r.PostForm.Get("confirm")) != name {
			return next, domain.Errorf(domain.CodeInvalid, "to force the advance, type the cohort's name %q to confirm", name)
		}
	}
	res, err := u.svc.Advance(r.Context(), c, key, name, force)
	if err != nil {
		return next, err
	}
	if res.Change != nil {
		u.sessions.addFlash(s.id, flash{Kind: "ok", Text: filedFlash(*res.Change)})
		return "/migrations/" + key + "#change-" + res.Change.ID, nil
	}
	how := "Advanced"
	if force {
		how = "Forced past the gates:"
	}
	u.sessions.addFlash(s.id, flash{Kind: "ok", Text: fmt.Sprintf("%s cohort %s, %d %s from %s to %s.",
		how, res.Cohort, len(res.Partners), pluralize(len(res.Partners), "partner", "partners"), res.From, res.To)})
	return next, nil
}

// pinNoise serves POST /migrations/{key}/partners/{id}/noise: a field path
// of an event type pinned as noise or signal, or unpinned (as "none"),
// for every partner of the migration; back to the partner's page.
func (u *UI) pinNoise(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	key, id := mux.Vars(r)["key"], mux.Vars(r)["id"]
	if err := domain.CheckID("migration", key); err != nil {
		return "/", err
	}
	next := "/migrations/" + key
	if err := domain.CheckID("partner", id); err != nil {
		return next, err
	}
	next += "/partners/" + id + "#noise-h"
	c, err := change(r, s)
	if err != nil {
		return next, err
	}
	typ, path, as := r.PostForm.Get("eventType"), r.PostForm.Get("path"), r.PostForm.Get("as")
	pin := domain.Pin(as)
	switch as {
	case "none":
		pin = ""
	case string(domain.PinNoise), string(domain.PinSignal):
	default:
		return next, domain.Errorf(domain.CodeInvalid, "pin a path as noise or signal, or none")
	}
	if _, err := u.svc.PinNoise(r.Context(), c, key, typ, path, pin); err != nil {
		return next, err
	}
	msg := fmt.Sprintf("Pinned %s of %s events as %s for every partner of %s.", path, typ, as, key)
	if pin == "" {
		msg = fmt.Sprintf("Unpinned %s of %s events: what routers learn decides again.", path, typ)
	}
	u.sessions.addFlash(s.id, flash{Kind: "ok", Text: msg})
	return next, nil
}

func pluralize(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
