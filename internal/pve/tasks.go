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

// UPID is a decoded PVE task id (COM UPID.pm).
type UPID struct {
	Raw       string
	Node      string
	StartTime time.Time
	Type      string
	ID        string
	User      string
}

var reUPID = regexp.MustCompile(`^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$`)

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
	logTailLines      = 10
	maxTransientPolls = 6
)

// waitTask waits for a task, forwarding each new log line to progress, and
// classifies its exit status: OK and WARNINGS: N succeed, all else is a
// *TaskError.
func (c *Client) waitTask(ctx context.Context, upidStr string, progress ProgressFunc) (*taskResult, error) {
	upid, err := ParseUPID(upidStr)
	if err != nil {
		return nil, err
	}
	statusPath := segPath("nodes", upid.Node, "tasks", upid.Raw, "status")
	logPath := segPath("nodes", upid.Node, "tasks", upid.Raw, "log")

	var lines []string
	seen := 0
	readLog := func() error {
		for {
			page, err := c.taskLog(ctx, logPath, seen)
			if err != nil {
				return err
			}
			got := 0
			sort.SliceStable(page.lines, func(i, j int) bool { return page.lines[i].N < page.lines[j].N })
			for _, l := range page.lines {
				n := int(l.N)
				if n <= seen {
					continue
				}
				seen = n
				got++
				lines = append(lines, l.T)
				if progress != nil {
					progress(l.T)
				}
				tflog.Debug(ctx, l.T, map[string]any{"upid": upid.Raw})
			}
			if got == 0 || seen >= page.total {
				return nil
			}
		}
	}

	poll := c.newPoller()
	failures := 0
	for {
		var st taskStatus
		err := c.get(ctx, statusPath, nil, &st)
		if err == nil {
			err = readLog()
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("stopped waiting for task %s (it may still be running on node %s): %w", upid.Raw, upid.Node, ctx.Err())
			}
			failures++
			if !transientPollError(err) || failures > maxTransientPolls {
				return nil, fmt.Errorf("reading the status of task %s: %w", upid.Raw, err)
			}
			tflog.Warn(ctx, "transient error while polling a PVE task", map[string]any{"upid": upid.Raw, "error": err.Error()})
		} else {
			failures = 0
			if st.Status != "" && st.Status != "running" {
				return classifyTask(upid, st.ExitStatus, lines)
			}
		}
		if err := poll.wait(ctx); err != nil {
			return nil, fmt.Errorf("stopped waiting for task %s (it may still be running on node %s): %w", upid.Raw, upid.Node, err)
		}
	}
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
