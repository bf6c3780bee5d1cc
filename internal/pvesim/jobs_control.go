package pvesim

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// serveTop puts the backup-job control calls (/_sim/clock, /_sim/jobs/run,
// /_sim/pools) in front of the rest of the simulator.
func (s *Sim) serveTop(w http.ResponseWriter, r *http.Request) {
	if s.serveJobsControl(w, r) {
		return
	}
	s.serveHTTP(w, r)
}

type jobsControlReq struct {
	Advance string `json:"advance"` // Go duration, e.g. "24h"
	Set     string `json:"set"`     // RFC 3339 time
	ID      string `json:"id"`
	Pool    string `json:"pool"`
	VMIDs   []int  `json:"vmids"`
}

func (s *Sim) serveJobsControl(w http.ResponseWriter, r *http.Request) bool {
	key := r.Method + " " + strings.TrimSuffix(r.URL.Path, "/")
	switch key {
	case "GET /_sim/clock", "POST /_sim/clock", "POST /_sim/jobs/run", "POST /_sim/pools":
	default:
		return false
	}
	reply := func(status int, v any) {
		b := marshalJSON(v)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(append(b, '\n'))
	}
	var cr jobsControlReq
	if r.Method == http.MethodPost {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cr); err != nil && err.Error() != "EOF" {
			reply(400, map[string]string{"error": "bad JSON body: " + err.Error()})
			return true
		}
	}
	upids := []string{}
	switch key {
	case "POST /_sim/clock":
		switch {
		case cr.Advance != "" && cr.Set != "":
			reply(400, map[string]string{"error": "give either advance or set"})
			return true
		case cr.Advance != "":
			d, err := time.ParseDuration(cr.Advance)
			if err != nil || d < 0 {
				reply(400, map[string]string{"error": "advance must be a positive Go duration such as \"24h\""})
				return true
			}
			upids = append(upids, s.AdvanceClock(d)...)
		case cr.Set != "":
			t, err := time.Parse(time.RFC3339, cr.Set)
			if err != nil {
				reply(400, map[string]string{"error": "set must be an RFC 3339 time: " + err.Error()})
				return true
			}
			upids = append(upids, s.SetClock(t)...)
		}
	case "POST /_sim/jobs/run":
		u, err := s.RunJobNow(cr.ID)
		if err != nil {
			reply(404, map[string]string{"error": err.Error()})
			return true
		}
		upids = append(upids, u...)
	case "POST /_sim/pools":
		if cr.Pool == "" {
			reply(400, map[string]string{"error": "pool is required"})
			return true
		}
		s.SetPool(cr.Pool, cr.VMIDs...)
	}
	reply(200, map[string]any{"now": s.Now().Format(time.RFC3339), "upids": upids})
	return true
}
