package pvesim

import (
	"sync"
	"time"
)

// observer records, for benchmarks, who asked what and when a task's end was
// first reported to a client. It costs nothing until Observe is called.
type observer struct {
	mu       sync.Mutex
	on       bool
	requests []RequestRecord
	seenDone map[string]time.Time // upid → first answer that showed it ended
}

// RequestRecord is one answered API request.
type RequestRecord struct {
	Time   time.Time
	Method string
	Route  string // the route template, e.g. /nodes/{node}/tasks/{upid}/status
	Path   string
	Query  string // the raw query string
	AuthID string // "" when the request was not authenticated
}

// TaskTiming is when a task started and ended, and when an answer first told
// a client that it had ended (zero until then).
type TaskTiming struct {
	UPID, Node, Type, ID string
	Start, End, Noticed  time.Time
}

// Observe starts (or stops) recording requests and task-end notices.
func (s *Sim) Observe(on bool) {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	s.obs.on = on
	if s.obs.seenDone == nil {
		s.obs.seenDone = map[string]time.Time{}
	}
}

// Requests returns the requests recorded since the last call, and forgets them.
func (s *Sim) Requests() []RequestRecord {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	out := s.obs.requests
	s.obs.requests = nil
	return out
}

// TaskTimings lists every task with its start, end and first notice.
func (s *Sim) TaskTimings() []TaskTiming {
	s.mu.Lock()
	list := append([]*task(nil), s.taskList...)
	s.mu.Unlock()
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	out := make([]TaskTiming, 0, len(list))
	for _, t := range list {
		t.mu.Lock()
		tt := TaskTiming{UPID: t.upid, Node: t.node, Type: t.typ, ID: t.id, Start: t.start, Noticed: s.obs.seenDone[t.upid]}
		if t.done {
			tt.End = t.end
		}
		t.mu.Unlock()
		out = append(out, tt)
	}
	return out
}

// SetTaskOverhead changes the fixed time every later vzdump or restore task
// takes. Call it only while no task runs.
func (s *Sim) SetTaskOverhead(d time.Duration) { s.overhead = d }

func (s *Sim) observeRequest(rq *request) {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	if !s.obs.on {
		return
	}
	rec := RequestRecord{Time: time.Now(), Method: rq.method, Route: rq.rt.tmpl, Path: rq.path, Query: rq.r.URL.RawQuery}
	if rq.auth != nil {
		rec.AuthID = rq.auth.authid
	}
	s.obs.requests = append(s.obs.requests, rec)
}

// noticeDone is called when an answer reports that t has ended.
func (s *Sim) noticeDone(t *task) {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	if !s.obs.on {
		return
	}
	if _, ok := s.obs.seenDone[t.upid]; !ok {
		s.obs.seenDone[t.upid] = time.Now()
	}
}
