package pvesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// routeFault is the part every per-route fault shares: which requests it
// hits and how many more times.
type routeFault struct {
	method, route string
	count         int // remaining; <=0 = until cleared
}

type httpFault struct {
	routeFault
	status  int
	message string
}

type dropFault struct {
	routeFault
}

// takeRouteFault finds the first fault hitting method+route, uses one of its
// counts and removes it when none are left (caller holds s.mu).
func takeRouteFault[F interface{ fault() *routeFault }](list *[]F, method, route string) (F, bool) {
	for i, f := range *list {
		rf := f.fault()
		if !routeMatches(rf.method, rf.route, method, route) {
			continue
		}
		if rf.count > 0 {
			if rf.count--; rf.count == 0 {
				*list = append((*list)[:i], (*list)[i+1:]...)
			}
		}
		return f, true
	}
	var none F
	return none, false
}

func (f *routeFault) fault() *routeFault { return f }

type taskFaultSpec struct {
	typ     string
	vmid    int
	message string
}

type faultState struct {
	http    []*httpFault
	drops   []*dropFault
	tasks   []*taskFaultSpec
	latency time.Duration
}

func routeMatches(fMethod, fRoute, method, route string) bool {
	return (fMethod == "" || fMethod == "*" || strings.EqualFold(fMethod, method)) &&
		(fRoute == "" || fRoute == "*" || fRoute == route)
}

// FailRequests makes the next count requests to method+route (a template,
// e.g. "/nodes/{node}/vzdump"; "" or "*" = any) fail with status and
// message (the message becomes the reason phrase). count <= 0 means every
// request until ClearFaults.
func (s *Sim) FailRequests(method, route string, status int, message string, count int) {
	if count <= 0 {
		count = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.http = append(s.faults.http, &httpFault{routeFault: routeFault{method: method, route: route, count: count}, status: status, message: message})
}

// SetLatency delays every API request by d.
func (s *Sim) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

// DropConnections closes the connection without an answer for the next
// count requests to method+route (count <= 0: until ClearFaults).
func (s *Sim) DropConnections(method, route string, count int) {
	if count <= 0 {
		count = -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.drops = append(s.faults.drops, &dropFault{routeFault{method: method, route: route, count: count}})
}

// FailTask makes the next task of taskType ("vzdump", "vzrestore",
// "qmrestore", "imgdel") for vmid fail midway with message. vzdump reports
// it as the guest's error (task exit status "job errors"); restores end
// with "unable to restore CT|VM <vmid> - <message>"; imgdel with message.
func (s *Sim) FailTask(taskType string, vmid int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.tasks = append(s.faults.tasks, &taskFaultSpec{typ: taskType, vmid: vmid, message: message})
}

// SetStorageFull makes a storage report no free space; writes to it fail.
func (s *Sim) SetStorageFull(storageID string, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.storages[storageID]; st != nil {
		st.full = full
	}
}

// SetGuestLock sets (or with "" clears) a guest's config lock.
func (s *Sim) SetGuestLock(vmid int, lock string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.guests[vmid]; g != nil {
		g.setLock(lock)
	}
}

// SetNodeOffline makes calls proxied to node answer 595.
func (s *Sim) SetNodeOffline(nodeName string, offline bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nd := s.nodes[nodeName]; nd != nil {
		nd.offline = offline
	}
}

// ClearFaults removes all faults: HTTP errors, drops, latency, pending
// task failures, full storages and offline nodes. Guest locks stay.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faultState{}
	for _, st := range s.storages {
		st.full = false
	}
	for _, nd := range s.nodes {
		nd.offline = false
	}
}

// Counters returns requests per "METHOD /route/template".
func (s *Sim) Counters() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counters))
	for k, v := range s.counters {
		out[k] = v
	}
	return out
}

// ResetCounters zeroes the counters.
func (s *Sim) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters = map[string]int{}
}

func (s *Sim) count(key string) {
	s.mu.Lock()
	s.counters[key]++
	s.mu.Unlock()
}

func (s *Sim) latency() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.latency
}

func (s *Sim) takeDrop(method, route string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := takeRouteFault(&s.faults.drops, method, route)
	return ok
}

func (s *Sim) takeHTTPFault(method, route string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := takeRouteFault(&s.faults.http, method, route)
	if !ok {
		return nil
	}
	e := &apiError{status: f.status, msg: f.message}
	if f.status == 401 || f.status == 595 || f.status == 596 {
		e.empty = true
	}
	if f.status == 400 {
		e.errors = map[string]string{"pvesim": f.message}
		e.msg = "Parameter verification failed."
	}
	return e
}

func (s *Sim) takeTaskFault(typ string, vmid int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults.tasks {
		if f.typ == typ && (f.vmid == vmid || f.vmid == 0) {
			s.faults.tasks = append(s.faults.tasks[:i], s.faults.tasks[i+1:]...)
			return f.message, true
		}
	}
	return "", false
}

// --- HTTP control API under /_sim/ -------------------------------------------

type controlReq struct {
	Method      string  `json:"method"`
	Route       string  `json:"route"`
	Status      int     `json:"status"`
	Message     string  `json:"message"`
	Count       int     `json:"count"`
	LatencyMS   *int64  `json:"latency_ms"`
	Latency     string  `json:"latency"`
	Type        string  `json:"type"`
	VMID        int     `json:"vmid"`
	Storage     string  `json:"storage"`
	Full        *bool   `json:"full"`
	Lock        *string `json:"lock"`
	Node        string  `json:"node"`
	Offline     *bool   `json:"offline"`
	BytesPerSec int64   `json:"bytes_per_second"`
}

// serveControl answers the /_sim/ control API (README.md, "Control API").
func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		b := marshalJSON(v)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(append(b, '\n'))
	}
	var cr controlReq
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cr); err != nil && err.Error() != "EOF" {
			reply(400, controlError("bad JSON body: "+err.Error()))
			return
		}
	}
	reply(s.runControl(r.Method+" "+strings.TrimSuffix(r.URL.Path, "/"), &cr))
}

func controlError(msg string) map[string]string { return map[string]string{"error": msg} }

var controlOK = map[string]bool{"ok": true}

// runControl performs one control call ("METHOD /_sim/path") and returns
// the status and body of its answer.
func (s *Sim) runControl(key string, cr *controlReq) (int, any) {
	switch key {
	case "POST /_sim/faults/http":
		if cr.Status < 100 || cr.Status > 999 {
			return 400, controlError("status must be an HTTP status code")
		}
		s.FailRequests(cr.Method, cr.Route, cr.Status, cr.Message, cr.Count)
	case "POST /_sim/faults/latency":
		return s.controlLatency(cr)
	case "POST /_sim/faults/drop":
		s.DropConnections(cr.Method, cr.Route, cr.Count)
	case "POST /_sim/faults/task":
		if cr.Type == "" || cr.Message == "" {
			return 400, controlError("type and message are required")
		}
		s.FailTask(cr.Type, cr.VMID, cr.Message)
	case "POST /_sim/faults/storage-full":
		if !s.hasStorage(cr.Storage) {
			return 404, controlError(fmt.Sprintf("no storage %q", cr.Storage))
		}
		s.SetStorageFull(cr.Storage, cr.Full == nil || *cr.Full)
	case "POST /_sim/faults/lock":
		if _, ok := s.GuestState(cr.VMID); !ok {
			return 404, controlError("no guest " + strconv.Itoa(cr.VMID))
		}
		l := ""
		if cr.Lock != nil {
			l = *cr.Lock
		}
		s.SetGuestLock(cr.VMID, l)
	case "POST /_sim/faults/node-offline":
		if s.nodeByName(cr.Node) == nil {
			return 404, controlError(fmt.Sprintf("no node %q", cr.Node))
		}
		s.SetNodeOffline(cr.Node, cr.Offline == nil || *cr.Offline)
	case "DELETE /_sim/faults":
		s.ClearFaults()
	case "GET /_sim/counters":
		return 200, s.Counters()
	case "DELETE /_sim/counters":
		s.ResetCounters()
	case "POST /_sim/throughput":
		s.SetThroughput(cr.BytesPerSec)
	case "GET /_sim/guests":
		return 200, s.guestInfos()
	default:
		return 404, controlError("unknown control endpoint " + key)
	}
	return 200, controlOK
}

// controlLatency sets the latency from latency_ms or a duration string.
func (s *Sim) controlLatency(cr *controlReq) (int, any) {
	d := time.Duration(0)
	if cr.LatencyMS != nil {
		d = time.Duration(*cr.LatencyMS) * time.Millisecond
	} else if cr.Latency != "" {
		var err error
		if d, err = time.ParseDuration(cr.Latency); err != nil {
			return 400, controlError(err.Error())
		}
	}
	s.SetLatency(d)
	return 200, controlOK
}

// guestInfos is the state of every guest, by vmid.
func (s *Sim) guestInfos() []GuestInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []GuestInfo{}
	for _, id := range s.sortedVMIDs() {
		g := s.guests[id]
		out = append(out, GuestInfo{VMID: id, Node: g.node, Type: g.typ, Name: g.name(), Status: g.status, Lock: g.lock()})
	}
	return out
}

func (s *Sim) hasStorage(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storages[id] != nil
}

func (s *Sim) sortedVMIDs() []int {
	ids := make([]int, 0, len(s.guests))
	for id := range s.guests {
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}
