package pve

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"
	proxmox "github.com/luthermonson/go-proxmox"
)

// UPID is a decoded PVE task id (pve-common src/PVE/Tools.pm, upid_decode).
type UPID struct {
	Raw       string
	Node      string
	StartTime time.Time
	Type      string
	ID        string
	User      string
}

var reUPID = regexp.MustCompile(`^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$`)

// logFields name a task in log lines: its UPID, node and type, and the
// guest it works on.
func (u UPID) logFields() map[string]any {
	f := map[string]any{"upid": u.Raw, "node": u.Node, "task": u.Type}
	if vmid, err := strconv.Atoi(u.ID); err == nil {
		f["vmid"] = vmid
	}
	return f
}

// ParseUPID decodes "UPID:node:pid:pstart:starttime:type:id:user:".
func ParseUPID(s string) (UPID, error) {
	m := reUPID.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return UPID{}, fmt.Errorf("%q is not a PVE task id (UPID)", s)
	}
	st, _ := strconv.ParseInt(m[5], 16, 64)
	return UPID{Raw: m[0], Node: m[1], StartTime: time.Unix(st, 0), Type: m[6], ID: m[7], User: m[8]}, nil
}

// taskResult is a task that ended with OK or WARNINGS: N.
type taskResult struct {
	UPID       UPID
	ExitStatus string
	Lines      []string
	Warnings   []string
}

type taskStatus struct {
	Status     string `json:"status"`
	ExitStatus string `json:"exitstatus"`
}

type logLine struct {
	N proxmox.StringOrInt `json:"n"`
	T string              `json:"t"`
}

// taskLogPage is one GET .../log answer, with the "total" next to "data".
type taskLogPage struct {
	lines []logLine
	total int
}

const (
	logTailLines = 10
	// defaultLogReadInterval spaces out log reads while a task runs: the
	// status alone says when it ends, and the log is read once more then.
	defaultLogReadInterval = 2 * time.Second
	// defaultTransientGrace is how long a task is waited for through
	// failing polls (5xx, 595/596, dropped connections) before giving up:
	// a node restart or a proxy hiccup lasts seconds to minutes, and giving
	// up early abandons a task that PVE goes on to finish.
	defaultTransientGrace = 5 * time.Minute
)

// WaitError is a wait for a task that ended before the task did: the
// context was cancelled or timed out, or the node could not be asked for
// longer than the transient grace. The task may still be running.
type WaitError struct {
	UPID  UPID
	Lines []string // the log lines read so far
	Err   error
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("stopped waiting for task %s (it may still be running on node %s): %v", e.UPID.Raw, e.UPID.Node, e.Err)
}

func (e *WaitError) Unwrap() error { return e.Err }

// waitTask waits for a task, forwarding each new log line to progress, and
// classifies its exit status: OK and WARNINGS: N succeed, a failed task is a
// *TaskError, and a wait that ends first is a *WaitError.
func (c *Client) waitTask(ctx context.Context, upidStr string, progress ProgressFunc) (*taskResult, error) {
	upid, err := ParseUPID(upidStr)
	if err != nil {
		return nil, err
	}
	w := &taskWatch{c: c, upid: upid, progress: progress,
		statusPath: segPath("nodes", upid.Node, "tasks", upid.Raw, "status"),
		logPath:    segPath("nodes", upid.Node, "tasks", upid.Raw, "log")}
	return w.wait(ctx)
}

// taskWatch is one wait for one task.
type taskWatch struct {
	c                   *Client
	upid                UPID
	progress            ProgressFunc
	statusPath, logPath string
	lines               []string
	seen                int
	lastLogRead         time.Time
}

func (w *taskWatch) wait(ctx context.Context) (*taskResult, error) {
	nw := w.c.watchers.get(w.c, w.upid.Node)
	seat := nw.subscribe(w.upid)
	defer func() {
		if seat != nil {
			nw.unsubscribe(seat)
		}
	}()
	poll := w.c.newPoller() // only when the node's task list cannot be used
	// A task alone on its node is mostly looked at through its own log (see
	// listLookEvery). Otherwise the log is read while the task runs at
	// growing intervals (2 s, 4 s, 8 s, then every 16 s) and once more at
	// its end: progress reaches the logs without a log read per look.
	logEvery := w.c.logReadInterval
	w.lastLogRead = time.Now()
	var failingSince time.Time
	for {
		var st taskStatus
		var err error
		if seat != nil {
			select {
			case u := <-seat.updates:
				if u.logTurn {
					// this look is a read of the task's log: its last line
					// says whether the task ended
					lerr := w.readLog(ctx)
					if lerr == nil {
						if exit, ended := endFromLog(w.lines); ended {
							return classifyTask(w.upid, exit, w.lines)
						}
					} else if !transientPollError(lerr) && ctx.Err() == nil {
						tflog.Debug(ctx, "the task log cannot be read; watching the task list only", map[string]any{"upid": w.upid.Raw, "error": lerr.Error()})
						nw.stopLogTurns(seat)
						lerr = nil
					}
					st, err = taskStatus{Status: "running"}, lerr
					break
				}
				st = u.status
				if u.alone {
					nw.unsubscribe(seat)
					seat = nil
				}
				if u.missing || u.alone {
					st, err = w.status(ctx)
				}
			case <-ctx.Done():
				return nil, w.stopped(ctx.Err())
			}
		} else {
			st, err = w.status(ctx)
		}
		if err == nil && st.Status == "running" && time.Since(w.lastLogRead) >= logEvery {
			err = w.readLog(ctx)
			logEvery = min(2*logEvery, 8*w.c.logReadInterval)
			if exit, ended := endFromLog(w.lines); err == nil && ended {
				return classifyTask(w.upid, exit, w.lines)
			}
		}
		switch {
		case err == nil && st.Status != "" && st.Status != "running":
			// the log is complete once the task has ended
			if lerr := w.readLog(ctx); lerr != nil {
				tflog.Warn(ctx, "could not read the end of a task log", map[string]any{"upid": w.upid.Raw, "error": lerr.Error()})
			}
			return classifyTask(w.upid, st.ExitStatus, w.lines)
		case err == nil:
			failingSince = time.Time{}
		case ctx.Err() != nil:
			return nil, w.stopped(ctx.Err())
		case !transientPollError(err):
			return nil, fmt.Errorf("reading the status of task %s: %w", w.upid.Raw, err)
		default:
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) > w.c.transientGrace {
				return nil, w.stopped(fmt.Errorf("node %s did not answer for %s: %w", w.upid.Node, w.c.transientGrace, err))
			}
			tflog.Warn(ctx, "transient error while polling a PVE task; retrying", map[string]any{"upid": w.upid.Raw, "error": err.Error()})
		}
		if seat == nil {
			if err := poll.wait(ctx); err != nil {
				return nil, w.stopped(err)
			}
		}
	}
}

func (w *taskWatch) stopped(err error) error {
	return &WaitError{UPID: w.upid, Lines: append([]string(nil), w.lines...), Err: err}
}

// status reads the task's own status.
func (w *taskWatch) status(ctx context.Context) (taskStatus, error) {
	var st taskStatus
	err := w.c.get(ctx, w.statusPath, nil, &st)
	return st, err
}

// readLog forwards the log lines not seen yet.
func (w *taskWatch) readLog(ctx context.Context) error {
	w.lastLogRead = time.Now()
	for {
		page, err := w.c.taskLog(ctx, w.logPath, w.seen)
		if err != nil {
			return err
		}
		got := 0
		sort.SliceStable(page.lines, func(i, j int) bool { return page.lines[i].N < page.lines[j].N })
		for _, l := range page.lines {
			n := int(l.N)
			if n <= w.seen {
				continue
			}
			w.seen = n
			got++
			w.lines = append(w.lines, l.T)
			tflog.Info(ctx, l.T, w.upid.logFields())
			if w.progress != nil {
				w.progress(l.T)
			}
		}
		if got == 0 || w.seen >= page.total {
			return nil
		}
	}
}

// endFromLog reads a task's end from its log: PVE's worker writes "TASK OK",
// "TASK WARNINGS: N" or "TASK ERROR: <message>" as the last line when it
// ends, and derives the task's exit status from that line.
func endFromLog(lines []string) (exit string, ended bool) {
	if len(lines) == 0 {
		return "", false
	}
	last := lines[len(lines)-1]
	switch {
	case last == "TASK OK":
		return "OK", true
	case strings.HasPrefix(last, "TASK WARNINGS: "):
		return strings.TrimPrefix(last, "TASK "), true
	case strings.HasPrefix(last, "TASK ERROR: "):
		return strings.TrimPrefix(last, "TASK ERROR: "), true
	}
	return "", false
}

// stopTask asks PVE to stop a task (DELETE on the task) and waits, within
// ctx, for it to end. It returns how the task ended.
func (c *Client) stopTask(ctx context.Context, upid UPID) (*taskResult, error) {
	if err := c.del(ctx, segPath("nodes", upid.Node, "tasks", upid.Raw), nil, nil); err != nil {
		return nil, fmt.Errorf("stopping task %s: %w", upid.Raw, err)
	}
	return c.waitTask(ctx, upid.Raw, nil)
}

// taskLog reads the log from line start+1 on. "limit=0" means "to the end" on
// PVE; a large limit is sent instead so that servers reading 0 literally agree.
func (c *Client) taskLog(ctx context.Context, logPath string, start int) (taskLogPage, error) {
	q := url.Values{"start": {strconv.Itoa(start)}, "limit": {"100000"}}
	var raw struct {
		Data  []logLine           `json:"data"`
		Total proxmox.StringOrInt `json:"total"`
	}
	if err := c.getEnvelope(ctx, logPath, q, &raw); err != nil {
		return taskLogPage{}, err
	}
	// A log with no lines yet (or no file yet) comes back as one placeholder
	// line, with or without "total": taking it for line 1 would make the
	// next read (start=1) skip the task's real first line.
	if raw.Total <= 0 || (start == 0 && len(raw.Data) == 1 && isLogPlaceholder(raw.Data[0].T)) {
		return taskLogPage{}, nil
	}
	return taskLogPage{lines: raw.Data, total: int(raw.Total)}, nil
}

// isLogPlaceholder recognises the line PVE's log reader answers for an empty
// or missing task log (pve-common dump_logfile).
func isLogPlaceholder(line string) bool {
	return line == "no content" || strings.HasPrefix(line, "unable to open file - ")
}

// getEnvelope is a GET that decodes the whole answer (data and total).
func (c *Client) getEnvelope(ctx context.Context, path string, q url.Values, out any) error {
	w := &envelopeWrapper{out: out}
	return c.call(ctx, "GET", path, q, nil, w)
}

func transientPollError(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500
	}
	var ne *netError
	return errors.As(err, &ne)
}

var reWarnings = regexp.MustCompile(`^WARNINGS: \d+$`)

func classifyTask(upid UPID, exit string, lines []string) (*taskResult, error) {
	exit = strings.TrimSpace(exit)
	if exit == "OK" || reWarnings.MatchString(exit) {
		res := &taskResult{UPID: upid, ExitStatus: exit, Lines: lines}
		for _, l := range lines {
			if strings.HasPrefix(l, "WARN: ") || strings.HasPrefix(l, "WARNING: ") {
				res.Warnings = append(res.Warnings, l)
			}
		}
		if len(res.Warnings) == 0 && exit != "OK" {
			res.Warnings = append(res.Warnings, "task ended with "+exit)
		}
		return res, nil
	}
	if exit == "" {
		exit = "unexpected status"
	}
	tail := lines
	if len(tail) > logTailLines {
		tail = tail[len(tail)-logTailLines:]
	}
	return nil, &TaskError{UPID: upid.Raw, Node: upid.Node, Type: upid.Type, ExitStatus: exit, LogTail: append([]string(nil), tail...)}
}
