package pvesim

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Crash stops the simulator the way a node that loses power stops: running
// tasks end where they are, their logs stay on disk without a final TASK
// line, and nothing is cleaned up. Start a new simulator on the same
// DataDir and Listen address to bring the node back (Restart does both).
func (s *Sim) Crash() error {
	s.crashed.Store(true)
	s.mu.Lock()
	running := make([]*task, 0)
	for _, t := range s.tasks {
		if _, done, _, _ := t.snapshot(); !done {
			running = append(running, t)
		}
	}
	s.mu.Unlock()
	for _, t := range running {
		lines, _, _, _ := t.snapshot()
		s.writeTaskLog(t, lines)
	}
	return s.Close()
}

// Restart crashes the simulator, keeps the node down for down, and starts a
// new one on the same address and data directory, as a node comes back from
// a power loss: every guest is stopped (none is set to start on boot), a
// config lock stays (a restore cut short leaves "create", a backup
// "backup"), and finished and interrupted tasks come back from their logs.
func (s *Sim) Restart(down time.Duration) (*Sim, error) {
	addr := s.ln.Addr().String()
	locks := map[int]string{}
	s.mu.Lock()
	for vmid, g := range s.guests {
		if l := g.lock(); l != "" {
			locks[vmid] = l
		}
	}
	s.mu.Unlock()
	if err := s.Crash(); err != nil {
		return nil, err
	}
	time.Sleep(down)
	opts := s.opts
	opts.Config = s.cfg
	opts.Listen = addr
	opts.Throughput = s.throughput.Load()
	next, err := Start(opts)
	if err != nil {
		return nil, err
	}
	next.mu.Lock()
	for _, g := range next.guests {
		g.status = "stopped"
	}
	next.mu.Unlock()
	for vmid, l := range locks {
		next.SetGuestLock(vmid, l)
	}
	return next, nil
}

// loadTaskLogs brings back the tasks whose logs are on disk, as PVE reads a
// task's status from its log: the last line says how it ended, and a log
// without a TASK line (its worker died with the node) is "unexpected status".
func (s *Sim) loadTaskLogs() {
	files, _ := filepath.Glob(filepath.Join(s.dataDir, "nodes", "*", "tasks", "*", "UPID:*"))
	for _, f := range files {
		upid := filepath.Base(f)
		m := reUPID.FindStringSubmatch(upid)
		raw, err := os.ReadFile(f)
		if m == nil || err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
		t := &task{upid: upid, node: m[1], typ: m[6], id: m[7], user: m[8], lines: lines, done: true, doneCh: make(chan struct{})}
		t.start = time.Unix(parseHex(m[5]), 0)
		t.pid, t.pstart = uint32(parseHex(m[3])), uint32(parseHex(m[4]))
		t.exit = exitFromLastLine(lines[len(lines)-1])
		t.end = t.start
		if fi, err := os.Stat(f); err == nil {
			t.end = fi.ModTime()
		}
		close(t.doneCh)
		t.ctx, t.cancel = s.ctx, func() {}
		s.tasks[upid] = t
		s.taskList = append(s.taskList, t)
	}
}

func exitFromLastLine(l string) string {
	switch {
	case l == "TASK OK":
		return "OK"
	case strings.HasPrefix(l, "TASK WARNINGS: "):
		return strings.TrimPrefix(l, "TASK ")
	case strings.HasPrefix(l, "TASK ERROR: "):
		return strings.TrimPrefix(l, "TASK ERROR: ")
	}
	return "unexpected status"
}

func parseHex(s string) int64 {
	var n int64
	for _, c := range s {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= int64(c - '0')
		case c >= 'a' && c <= 'f':
			n |= int64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			n |= int64(c-'A') + 10
		}
	}
	return n
}

// TaskInfo is a snapshot of one task, for tests.
type TaskInfo struct {
	UPID, Node, Type, ID string
	Running              bool
	Exit                 string
	Stopped              bool // a DELETE on the task asked it to stop
}

// Tasks lists every task the simulator knows, oldest first.
func (s *Sim) Tasks() []TaskInfo {
	s.mu.Lock()
	list := append([]*task(nil), s.taskList...)
	s.mu.Unlock()
	out := make([]TaskInfo, 0, len(list))
	for _, t := range list {
		t.mu.Lock()
		out = append(out, TaskInfo{UPID: t.upid, Node: t.node, Type: t.typ, ID: t.id, Running: !t.done, Exit: t.exit, Stopped: t.stopped})
		t.mu.Unlock()
	}
	return out
}
