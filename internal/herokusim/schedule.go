package herokusim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retention is how many backups of a database Heroku keeps (heroku-api.md §9).
type retention struct {
	manual, scheduled         int // num_keep of manual and of scheduled backups
	retainWeeks, retainMonths int // what a schedule keeps beyond its daily backups
}

// planRetention is a plan's retention, from heroku-api.md §9:
//   - essential-*: 5 manual (documented), 7 daily scheduled, 1 weekly, 0 monthly;
//   - standard-*: 25 manual (seen and documented), 7 daily, 4 weekly, 0 monthly;
//   - premium-*, private-*, shield-*, enterprise: 50 manual, 7 daily, 8 weekly, 12 monthly.
//
// An unknown plan (a retired small one among them) gets the smallest numbers seen on real
// transfers, 2 manual and 5 scheduled, so that a client never relies on a generous limit.
func planRetention(plan string) retention {
	_, tier, _ := strings.Cut(plan, ":")
	switch {
	case strings.HasPrefix(tier, "essential"):
		return retention{manual: 5, scheduled: 7, retainWeeks: 1}
	case strings.HasPrefix(tier, "standard"):
		return retention{manual: 25, scheduled: 7, retainWeeks: 4}
	case strings.HasPrefix(tier, "premium"), strings.HasPrefix(tier, "private"), strings.HasPrefix(tier, "shield"),
		strings.HasPrefix(tier, "enterprise"):
		return retention{manual: 50, scheduled: 7, retainWeeks: 8, retainMonths: 12}
	}
	return retention{manual: 2, scheduled: 5, retainWeeks: 1}
}

// SetRetention overrides how many manual and scheduled backups of the database Heroku keeps
// (num_keep); a value < 1 leaves that one at the plan's default. Captures that finish from now on
// evict what is beyond it.
func (s *Sim) SetRetention(addonID string, manual, scheduled int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ad := s.addons[addonID]
	if ad == nil {
		panic("herokusim: SetRetention: no add-on " + addonID)
	}
	if manual > 0 {
		ad.keep.manual = manual
	}
	if scheduled > 0 {
		ad.keep.scheduled = scheduled
	}
}

// retireLocked deletes (as Heroku's retention does) the oldest successful backups of the
// latest's database and kind — manual or scheduled — beyond that kind's num_keep. It runs when a
// capture succeeds, so a failed capture evicts nothing (unverified on Heroku, whose docs say only
// that the oldest manual backup is deleted automatically when the limit is hit). Files stay on
// disk for tests that compare bytes. Scheduled backups simply keep their newest num_keep: the
// weekly and monthly ones a real schedule also keeps (retain_weeks, retain_months) are not modelled.
func (s *Sim) retireLocked(latest *transfer) {
	keep := latest.numKeep
	kept := 0
	ts := s.transfers[latest.addon.app.name]
	for i := len(ts) - 1; i >= 0; i-- {
		t := ts[i]
		if t.addon != latest.addon || t.restoreFrom != "" || (t.schedule == nil) != (latest.schedule == nil) ||
			!t.ok() || !t.deleted.IsZero() {
			continue
		}
		if kept++; kept > keep {
			t.deleted, t.updated = latest.finishedAt, latest.finishedAt
		}
	}
}

// schedule is a database's daily backup schedule (transfer-schedules).
type schedule struct {
	uuid, name, timezone string
	hour                 int
	addon                *addon
	created, updated     time.Time
}

var weekdays = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}

func (sc *schedule) json() map[string]any {
	return map[string]any{"uuid": sc.uuid, "name": sc.name, "hour": sc.hour, "days": weekdays,
		"timezone": sc.timezone, "created_at": sc.created.Format(dataTime), "updated_at": sc.updated.Format(dataTime),
		"deleted_at": nil, "retain_weeks": sc.addon.keep.retainWeeks, "retain_months": sc.addon.keep.retainMonths}
}

// scheduleRoutes adds /client/v11/databases/{id}/transfer-schedules: list, create, delete.
func (s *Sim) scheduleRoutes(mux *http.ServeMux) {
	const p = "/client/v11/databases/{id}/transfer-schedules"
	mux.HandleFunc("GET "+p, s.withDatabase(func(w http.ResponseWriter, r *http.Request, ad *addon) {
		out := []any{}
		for _, sc := range s.schedules[ad.id] {
			out = append(out, sc.json())
		}
		writeJSON(w, 200, out)
	}))
	mux.HandleFunc("POST "+p, s.withDatabase(func(w http.ResponseWriter, r *http.Request, ad *addon) {
		var body struct {
			Hour     json.RawMessage `json:"hour"` // the CLI sends "02"; a number is taken too
			Timezone string          `json:"timezone"`
			Name     string          `json:"schedule_name"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
			herokuError(w, 422, "invalid_params", "The request body is not valid JSON.")
			return
		}
		hour, err := strconv.Atoi(strings.Trim(string(body.Hour), `"`))
		if err != nil || hour < 0 || hour > 23 {
			herokuError(w, 422, "invalid_params", "hour must be between 0 and 23.")
			return
		}
		if body.Timezone == "" {
			body.Timezone = "UTC"
		}
		if _, err := time.LoadLocation(body.Timezone); err != nil {
			herokuError(w, 422, "invalid_params", fmt.Sprintf("Unknown time zone %q.", body.Timezone))
			return
		}
		if body.Name == "" {
			body.Name = "DATABASE_URL"
		}
		now := s.now()
		// One schedule per name: scheduling again moves it (unverified; the CLI treats it so).
		for _, sc := range s.schedules[ad.id] {
			if sc.name == body.Name {
				sc.hour, sc.timezone, sc.updated = hour, body.Timezone, now
				writeJSON(w, http.StatusCreated, sc.json())
				return
			}
		}
		sc := &schedule{uuid: newID(), name: body.Name, timezone: body.Timezone, hour: hour, addon: ad, created: now, updated: now}
		s.schedules[ad.id] = append(s.schedules[ad.id], sc)
		writeJSON(w, http.StatusCreated, sc.json())
	}))
	mux.HandleFunc("DELETE "+p+"/{uuid}", s.withDatabase(func(w http.ResponseWriter, r *http.Request, ad *addon) {
		list := s.schedules[ad.id]
		for i, sc := range list {
			if sc.uuid == r.PathValue("uuid") {
				s.schedules[ad.id] = append(list[:i:i], list[i+1:]...)
				m := sc.json()
				m["deleted_at"] = s.now().Format(dataTime)
				writeJSON(w, 200, m)
				return
			}
		}
		herokuError(w, 404, "not_found", "Couldn't find that schedule.")
	}))
}

// withDatabase serves a request about the database in the path, under the lock, or answers the
// Data API's non-JSON 404.
func (s *Sim) withDatabase(f func(http.ResponseWriter, *http.Request, *addon)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ad := s.databaseLocked(r.PathValue("id"))
		if ad == nil {
			notFoundHTML(w)
			return
		}
		f(w, r, ad)
	}
}

// ErrNoSchedule is RunSchedule's error for a database without a backup schedule.
var ErrNoSchedule = errors.New("herokusim: the database has no backup schedule")

// RunSchedule runs the database's backup schedule now, as Heroku does at the scheduled hour: a
// capture whose transfer is a scheduled backup (to_name "SCHEDULED BACKUP", a schedule object,
// shown as a…, the scheduled num_keep). It returns the transfer's number at once; the capture
// runs in the background like any other.
func (s *Sim) RunSchedule(addonID string) (num int, err error) {
	s.mu.Lock()
	ad := s.databaseLocked(addonID)
	var sc *schedule
	if ad != nil && len(s.schedules[ad.id]) > 0 {
		sc = s.schedules[ad.id][0]
	}
	s.mu.Unlock()
	if ad == nil {
		return 0, fmt.Errorf("herokusim: RunSchedule: no database %s", addonID)
	}
	if sc == nil {
		return 0, ErrNoSchedule
	}
	_, num = s.capture(ad, sc)
	return num, nil
}
