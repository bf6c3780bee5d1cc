package pvesim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var reUPID = regexp.MustCompile(`^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$`)

type task struct {
	upid   string
	node   string
	pid    uint32
	pstart uint32
	start  time.Time
	typ    string
	id     string
	user   string // authid, e.g. root@pam!terraform

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	lines    []string
	done     bool
	exit     string
	end      time.Time
	warnings int
	stopped  bool // DELETE /tasks/{upid} was called
	doneCh   chan struct{}
}

var errInterrupted = errors.New("interrupted by signal")

func (t *task) log(format string, args ...any) {
	t.mu.Lock()
	t.lines = append(t.lines, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

func (t *task) warn(format string, args ...any) {
	t.mu.Lock()
	t.warnings++
	t.lines = append(t.lines, "WARN: "+fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

func (t *task) snapshot() (lines []string, done bool, exit string, end time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...), t.done, t.exit, t.end
}

// sleep waits d, or fails when the task is stopped or the sim closes.
func (t *task) sleep(d time.Duration) error {
	if d <= 0 {
		select {
		case <-t.ctx.Done():
			return errInterrupted
		default:
			return nil
		}
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-t.ctx.Done():
		return errInterrupted
	}
}

// newTask registers a running task; run it with s.runTask.
func (s *Sim) newTask(nodeName, typ, id, authid string) *task {
	s.mu.Lock()
	defer s.mu.Unlock()
	nd := s.nodes[nodeName]
	s.nextPID += 1 + uint32(len(s.taskList)%7)
	now := time.Now()
	// never hand out the same UPID twice
	for {
		t := &task{node: nodeName, pid: s.nextPID, pstart: nd.pstart + uint32(now.Sub(nd.boot)/(10*time.Millisecond)), start: now,
			typ: typ, id: id, user: authid, doneCh: make(chan struct{})}
		t.upid = fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%s:%s:", nodeName, t.pid, t.pstart, now.Unix(), typ, id, authid)
		if _, dup := s.tasks[t.upid]; dup {
			s.nextPID++
			continue
		}
		t.ctx, t.cancel = context.WithCancel(s.ctx)
		s.tasks[t.upid] = t
		s.taskList = append(s.taskList, t)
		return t
	}
}

// runTask runs fn in the background. A nil error ends with TASK OK (or
// WARNINGS: N); an error with "TASK ERROR: <msg>".
func (s *Sim) runTask(t *task, fn func(t *task) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := fn(t)
		if s.crashed.Load() {
			return // the node went down with its worker: the log ends where it was
		}
		t.mu.Lock()
		switch {
		case err == nil && t.warnings > 0:
			t.exit = fmt.Sprintf("WARNINGS: %d", t.warnings)
			t.lines = append(t.lines, "TASK "+t.exit)
		case err == nil:
			t.exit = "OK"
			t.lines = append(t.lines, "TASK OK")
		case errors.Is(err, errExitNoStatus):
			t.exit = "unexpected status"
		default:
			msg := strings.TrimRight(err.Error(), "\n")
			if errors.Is(err, errInterrupted) && t.typ != "vzdump" {
				msg = "received interrupt"
			}
			msg = strings.ReplaceAll(msg, "\n", " ")
			t.exit = msg
			t.lines = append(t.lines, "TASK ERROR: "+msg)
		}
		t.done = true
		t.end = time.Now()
		lines := append([]string(nil), t.lines...)
		t.mu.Unlock()
		t.cancel()
		close(t.doneCh)
		s.writeTaskLog(t, lines)
		s.logf("pvesim: task %s finished: %s", t.upid, t.exit)
	}()
}

// errExitNoStatus: the worker "exit()ed" without a TASK line.
var errExitNoStatus = errors.New("exit without status")

func (s *Sim) writeTaskLog(t *task, lines []string) {
	hex := fmt.Sprintf("%08X", t.start.Unix())
	dir := filepath.Join(s.dataDir, "nodes", t.node, "tasks", hex[7:8])
	if os.MkdirAll(dir, 0o755) == nil {
		_ = os.WriteFile(filepath.Join(dir, t.upid), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	}
}

func (s *Sim) findTask(upid string) *task {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tasks[upid]
}

// ownsTask: a token sees only its own tasks; a user its own and its tokens'.
func ownsTask(a *authInfo, t *task) bool {
	if a.tok != nil {
		return t.user == a.authid
	}
	return t.user == a.user || strings.HasPrefix(t.user, a.user+"!")
}

// pacer spreads simulated work over time at the configured throughput.
type pacer struct {
	s     *Sim
	t     *task
	begin time.Time
	bytes int64
	rate  int64 // bytes/s override (bwlimit); 0 → sim throughput
}

func (s *Sim) newPacer(t *task, bwlimitKiB int64) *pacer {
	p := &pacer{s: s, t: t, begin: time.Now()}
	if bwlimitKiB > 0 {
		p.rate = bwlimitKiB * 1024
	}
	return p
}

func (p *pacer) advance(n int64) error {
	p.bytes += n
	rate := p.s.throughput.Load()
	if p.rate > 0 && p.rate < rate {
		rate = p.rate
	}
	due := p.begin.Add(time.Duration(float64(p.bytes) / float64(rate) * float64(time.Second)))
	return p.t.sleep(time.Until(due))
}

// --- handlers --------------------------------------------------------------

func (s *Sim) taskFromRequest(rq *request) (*task, error) {
	upid := rq.vars["upid"]
	m := reUPID.FindStringSubmatch(upid)
	if m == nil {
		return nil, paramErr1("upid", "unable to parse worker upid")
	}
	t := s.findTask(upid)
	if t == nil || m[1] != rq.vars["node"] {
		return nil, paramErr1("upid", "no such task")
	}
	return t, nil
}

func splitUser(authid string) (string, string) {
	u, tok, ok := strings.Cut(authid, "!")
	if !ok {
		return authid, ""
	}
	return u, tok
}

func (s *Sim) hTaskStatus(rq *request) (any, error) {
	t, err := s.taskFromRequest(rq)
	if err != nil {
		return nil, err
	}
	if !ownsTask(rq.auth, t) {
		if err := s.checkAll(rq.auth, "/nodes/"+rq.vars["node"], "Sys.Audit"); err != nil {
			return nil, err
		}
	}
	_, done, exit, _ := t.snapshot()
	u, tok := splitUser(t.user)
	out := map[string]any{
		"node": t.node, "pid": t.pid, "pstart": t.pstart, "starttime": t.start.Unix(),
		"type": t.typ, "id": t.id, "user": u, "upid": t.upid, "status": "running",
	}
	if tok != "" {
		out["tokenid"] = tok
	}
	if done {
		out["status"] = "stopped"
		out["exitstatus"] = exit
		s.noticeDone(t)
	}
	return out, nil
}

func (s *Sim) hTaskLog(rq *request) (any, error) {
	upid := rq.vars["upid"]
	m := reUPID.FindStringSubmatch(upid)
	if m == nil {
		return nil, paramErr1("upid", "unable to parse worker upid")
	}
	// ownership comes from the UPID itself (read_task_log does not check
	// that the task exists)
	owner := &task{user: m[8]}
	if !ownsTask(rq.auth, owner) {
		if err := s.checkAll(rq.auth, "/nodes/"+rq.vars["node"], "Sys.Audit"); err != nil {
			return nil, err
		}
	}
	if rq.p.boolv("download", false) && (rq.p.has("start") || rq.p.has("limit")) {
		return nil, err500("'download' cannot be used together with 'start' or 'limit' parameters")
	}
	t := s.findTask(upid)
	if t == nil || m[1] != rq.vars["node"] {
		// the log file is not on this node: dump_logfile's open error
		return withTotal{data: []map[string]any{{"n": 1, "t": "unable to open file - No such file or directory"}}, total: 1}, nil
	}
	lines, done, _, _ := t.snapshot()
	start := int(rq.p.intv("start", 0))
	limit := int(rq.p.intv("limit", 50))
	if done && (limit <= 0 || start+limit >= len(lines)) {
		s.noticeDone(t) // the answer ends with the TASK line
	}
	if rq.p.boolv("download", false) {
		return strings.Join(lines, "\n") + "\n", nil
	}
	if len(lines) == 0 {
		// dump_logfile_by_filehandle counts the "no content" line (count++)
		return withTotal{data: []map[string]any{{"n": 1, "t": "no content"}}, total: 1}, nil
	}
	out := []map[string]any{}
	for i := start; i < len(lines); i++ {
		if limit > 0 && len(out) >= limit {
			break
		}
		out = append(out, map[string]any{"n": i + 1, "t": lines[i]})
	}
	return withTotal{data: out, total: len(lines)}, nil
}

func (s *Sim) hTaskStop(rq *request) (any, error) {
	t, err := s.taskFromRequest(rq)
	if err != nil {
		return nil, err
	}
	if !ownsTask(rq.auth, t) {
		if err := s.checkAll(rq.auth, "/nodes/"+rq.vars["node"], "Sys.Modify"); err != nil {
			return nil, err
		}
	}
	t.mu.Lock()
	if !t.done {
		t.stopped = true
	}
	t.mu.Unlock()
	t.cancel()
	return nil, nil
}

// hTaskList is GET /nodes/{node}/tasks: newest first, filtered, paged.
func (s *Sim) hTaskList(rq *request) (any, error) {
	nodeName := rq.vars["node"]
	sysAudit := s.can(rq.auth, "/nodes/"+nodeName, "Sys.Audit")
	s.mu.Lock()
	all := append([]*task(nil), s.taskList...)
	s.mu.Unlock()
	sort.SliceStable(all, func(i, j int) bool { return all[i].start.After(all[j].start) })
	var items []map[string]any
	for _, t := range all {
		if t.node != nodeName || !sysAudit && !ownsTask(rq.auth, t) {
			continue
		}
		_, done, exit, end := t.snapshot()
		if !taskListFilter(rq.p, t, done, exit) {
			continue
		}
		u, tok := splitUser(t.user)
		it := map[string]any{"upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pstart,
			"starttime": t.start.Unix(), "type": t.typ, "id": t.id, "user": u}
		if tok != "" {
			it["tokenid"] = tok
		}
		if done {
			it["status"] = exit
			it["endtime"] = end.Unix()
			s.noticeDone(t)
		} else {
			it["status"] = "RUNNING"
		}
		items = append(items, it)
	}
	total := len(items)
	start := int(rq.p.intv("start", 0))
	limit := int(rq.p.intv("limit", 50))
	if start > len(items) {
		start = len(items)
	}
	items = items[start:]
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	if items == nil {
		items = []map[string]any{}
	}
	return withTotal{data: items, total: total}, nil
}

// taskListFilter applies the task list's filters (source, typefilter,
// userfilter, vmid, errors, since, until, statusfilter) to one task.
func taskListFilter(p *params, t *task, done bool, exit string) bool {
	source := p.str("source")
	if source == "" {
		source = "archive"
	}
	switch {
	case source == "archive" && !done || source == "active" && done:
		return false
	case p.str("typefilter") != "" && t.typ != p.str("typefilter"):
		return false
	case p.str("userfilter") != "" && !strings.Contains(t.user, p.str("userfilter")):
		return false
	case p.has("vmid") && t.id != p.str("vmid"):
		return false
	case p.boolv("errors", false) && (!done || exit == "OK" || strings.HasPrefix(exit, "WARNINGS")):
		return false
	case p.has("since") && t.start.Unix() < p.intv("since", 0):
		return false
	case p.has("until") && t.start.Unix() > p.intv("until", 0):
		return false
	}
	if sf := p.str("statusfilter"); sf != "" {
		return strings.Contains(","+sf+",", ","+taskStatusClass(done, exit)+",")
	}
	return true
}

// taskStatusClass is the class statusfilter matches: running, ok, warning,
// unknown or error.
func taskStatusClass(done bool, exit string) string {
	switch {
	case !done:
		return "running"
	case exit == "OK":
		return "ok"
	case strings.HasPrefix(exit, "WARNINGS"):
		return "warning"
	case exit == "unexpected status":
		return "unknown"
	}
	return "error"
}

func fmtDuration(d time.Duration) string {
	sec := int(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", sec/3600, sec/60%60, sec%60)
}

// formatSize is vzdump's format_size for the "archive file size" line:
// whole KB and MB are truncated (Perl int()), GB and TB have two decimals.
func formatSize(n int64) string {
	const kb, mb, gb, tb = 1024, 1024 * 1024, 1024 * 1024 * 1024, 1024 * 1024 * 1024 * 1024
	switch {
	case n < mb:
		return strconv.FormatInt(n/kb, 10) + "KB"
	case n < gb:
		return strconv.FormatInt(n/mb, 10) + "MB"
	case n < tb:
		return fmt.Sprintf("%.2fGB", float64(n)/gb)
	}
	return fmt.Sprintf("%.2fTB", float64(n)/tb)
}

// humanIEC renders "1.2GiB"-style sizes used in tar/vma lines.
func humanIEC(n int64) string {
	f := float64(n)
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.1f%s", f, units[i])
}
