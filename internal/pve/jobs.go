package pve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// BackupJob is a vzdump job of /cluster/backup (jobs.cfg) in PVE's own
// option names and wire values: booleans "1"/"0", numbers in decimal, the
// property strings (prune-backups, fleecing, performance) as "k=v,..." with
// the keys sorted.
type BackupJob struct {
	ID          string
	Options     map[string]string
	ExcludePath []string
	// NextRun is when PVE's scheduler runs the job next (zero: never, or
	// the job is disabled); only the job list reports it.
	NextRun time.Time
}

// BackupJobOptionsNotVzdump are the job options that are not vzdump
// parameters (PVE::Jobs::VZDump::run drops them before running vzdump).
var BackupJobOptionsNotVzdump = map[string]bool{"schedule": true, "enabled": true, "comment": true, "repeat-missed": true}

// ErrJobNotFound is returned (wrapped) for a job id PVE does not know.
var ErrJobNotFound = errors.New("backup job not found")

func jobPath(id string) string { return "/cluster/backup/" + url.PathEscape(id) }

// wireString renders one decoded JSON value the way PVE's config stores it.
func wireString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "1"
		}
		return "0"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+"="+wireString(x[k]))
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// NormalizePropertyString sorts the keys of a "k=v,k=v" property string so
// that two spellings of the same value compare equal.
func NormalizePropertyString(s string) string {
	var parts []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func decodeJob(raw map[string]json.RawMessage) (*BackupJob, error) {
	j := &BackupJob{Options: map[string]string{}}
	for k, v := range raw {
		dec := json.NewDecoder(strings.NewReader(string(v)))
		dec.UseNumber()
		var val any
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("decoding backup job option %s: %w", k, err)
		}
		switch k {
		case "id":
			j.ID = wireString(val)
		case "type":
		case "next-run":
			if n, err := strconv.ParseInt(wireString(val), 10, 64); err == nil && n > 0 {
				j.NextRun = time.Unix(n, 0)
			}
		case "exclude-path":
			if a, ok := val.([]any); ok {
				for _, e := range a {
					j.ExcludePath = append(j.ExcludePath, wireString(e))
				}
			} else if s := wireString(val); s != "" {
				j.ExcludePath = strings.Split(s, "\n")
			}
		default:
			j.Options[k] = wireString(val)
		}
	}
	return j, nil
}

// ListBackupJobs is GET /cluster/backup (needs Sys.Audit on /).
func (c *Client) ListBackupJobs(ctx context.Context) ([]BackupJob, error) {
	var raw []map[string]json.RawMessage
	if err := c.get(ctx, "/cluster/backup", nil, &raw); err != nil {
		return nil, fmt.Errorf("listing backup jobs: %w", err)
	}
	out := make([]BackupJob, 0, len(raw))
	for _, r := range raw {
		j, err := decodeJob(r)
		if err != nil {
			return nil, err
		}
		out = append(out, *j)
	}
	return out, nil
}

// GetBackupJob reads one job, with next-run from the job list. A job that
// does not exist gives an error wrapping ErrJobNotFound.
func (c *Client) GetBackupJob(ctx context.Context, id string) (*BackupJob, error) {
	var raw map[string]json.RawMessage
	if err := c.get(ctx, jobPath(id), nil, &raw); err != nil {
		if isJobNotFound(err) {
			return nil, fmt.Errorf("backup job %q: %w: %w", id, ErrJobNotFound, err)
		}
		return nil, fmt.Errorf("reading backup job %q: %w", id, err)
	}
	j, err := decodeJob(raw)
	if err != nil {
		return nil, err
	}
	if j.ID == "" {
		j.ID = id
	}
	// PVE computes next-run only in the list (from "now": jobs are cluster-wide)
	all, err := c.ListBackupJobs(ctx)
	if err != nil {
		return nil, err
	}
	for _, x := range all {
		if x.ID == id {
			j.NextRun = x.NextRun
		}
	}
	return j, nil
}

func isJobNotFound(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	if ae.StatusCode != 400 && ae.StatusCode != 500 {
		return false
	}
	texts := []string{ae.Status, ae.Message}
	for _, v := range ae.Errors {
		texts = append(texts, v)
	}
	return matchAny(reJobNotFound, texts)
}

var reJobNotFound = regexp.MustCompile(`(?i)no such (vzdump )?job`)

func jobBody(opts map[string]string, excludePath []string) map[string]any {
	body := map[string]any{}
	for k, v := range opts {
		body[k] = v
	}
	if len(excludePath) > 0 {
		body["exclude-path"] = excludePath
	}
	return body
}

// CreateBackupJob is POST /cluster/backup (Sys.Modify on /, and
// Datastore.Allocate on the storage).
func (c *Client) CreateBackupJob(ctx context.Context, id string, opts map[string]string, excludePath []string) error {
	body := jobBody(opts, excludePath)
	body["id"] = id
	if err := c.post(ctx, "/cluster/backup", body, nil); err != nil {
		return fmt.Errorf("creating backup job %q: %w", id, err)
	}
	return nil
}

// UpdateBackupJob is PUT /cluster/backup/{id}: set holds the new values,
// remove the options to delete (PVE's "delete" parameter).
func (c *Client) UpdateBackupJob(ctx context.Context, id string, set map[string]string, excludePath []string, remove []string) error {
	body := jobBody(set, excludePath)
	if len(remove) > 0 {
		sort.Strings(remove)
		body["delete"] = strings.Join(remove, ",")
	}
	if err := c.put(ctx, jobPath(id), body, nil); err != nil {
		if isJobNotFound(err) {
			return fmt.Errorf("updating backup job %q: %w: %w", id, ErrJobNotFound, err)
		}
		return fmt.Errorf("updating backup job %q: %w", id, err)
	}
	return nil
}

// DeleteBackupJob is DELETE /cluster/backup/{id}.
func (c *Client) DeleteBackupJob(ctx context.Context, id string) error {
	if err := c.del(ctx, jobPath(id), nil, nil); err != nil {
		if isJobNotFound(err) {
			return fmt.Errorf("deleting backup job %q: %w: %w", id, ErrJobNotFound, err)
		}
		return fmt.Errorf("deleting backup job %q: %w", id, err)
	}
	return nil
}

// UncoveredGuest is a guest that no backup job includes.
type UncoveredGuest struct {
	VMID int
	Type string // lxc | qemu
	Name string
}

// GuestsNotBackedUp is GET /cluster/backup-info/not-backed-up: the guests
// no backup job covers (every job counts, enabled or not). Guests the caller
// cannot audit (VM.Audit) are left out by PVE.
func (c *Client) GuestsNotBackedUp(ctx context.Context) ([]UncoveredGuest, error) {
	var raw []struct {
		VMID json.Number `json:"vmid"`
		Type string      `json:"type"`
		Name string      `json:"name"`
	}
	if err := c.get(ctx, "/cluster/backup-info/not-backed-up", nil, &raw); err != nil {
		return nil, fmt.Errorf("listing guests not covered by a backup job: %w", err)
	}
	out := make([]UncoveredGuest, 0, len(raw))
	for _, r := range raw {
		id, _ := strconv.Atoi(r.VMID.String())
		out = append(out, UncoveredGuest{VMID: id, Type: r.Type, Name: r.Name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VMID < out[j].VMID })
	return out, nil
}

// IncludedGuest is a guest a job includes, with its volumes.
type IncludedGuest struct {
	VMID    int
	Type    string // lxc | qemu | unknown (configured but no longer exists)
	Name    string
	Volumes []IncludedVolume
}

// IncludedVolume is one disk or mount point and whether backups include it.
type IncludedVolume struct {
	Key      string // config key: rootfs, mp0, scsi0, ...
	Volume   string
	Included bool
	Reason   string
}

type includedNode struct {
	ID       json.RawMessage `json:"id"`
	Type     string          `json:"type"`
	Name     string          `json:"name"`
	Included json.RawMessage `json:"included"`
	Reason   string          `json:"reason"`
	Children []includedNode  `json:"children"`
}

// BackupJobIncluded is GET /cluster/backup/{id}/included_volumes.
func (c *Client) BackupJobIncluded(ctx context.Context, id string) ([]IncludedGuest, error) {
	var tree includedNode
	if err := c.get(ctx, jobPath(id)+"/included_volumes", nil, &tree); err != nil {
		if isJobNotFound(err) {
			return nil, fmt.Errorf("backup job %q: %w: %w", id, ErrJobNotFound, err)
		}
		return nil, fmt.Errorf("reading the guests of backup job %q: %w", id, err)
	}
	var out []IncludedGuest
	for _, g := range tree.Children {
		vmid, _ := strconv.Atoi(strings.Trim(string(g.ID), `"`))
		ig := IncludedGuest{VMID: vmid, Type: g.Type, Name: g.Name}
		for _, v := range g.Children {
			key := strings.Trim(string(v.ID), `"`)
			if _, k, ok := strings.Cut(key, ":"); ok {
				key = k
			}
			inc := strings.Trim(string(v.Included), `"`)
			ig.Volumes = append(ig.Volumes, IncludedVolume{Key: key, Volume: v.Name, Included: inc == "1" || inc == "true", Reason: v.Reason})
		}
		out = append(out, ig)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VMID < out[j].VMID })
	return out, nil
}

// BackupJobRun is one vzdump task that ran a job's settings.
type BackupJobRun struct {
	UPID       string
	Node       string
	User       string
	StartTime  time.Time
	EndTime    time.Time // zero while running
	Running    bool
	ExitStatus string // OK, WARNINGS: N, job errors, ...
	Guests     []BackupJobGuestResult
}

// Succeeded: finished with OK or only warnings.
func (r BackupJobRun) Succeeded() bool {
	return !r.Running && (r.ExitStatus == "OK" || reWarnings.MatchString(r.ExitStatus))
}

// BackupJobGuestResult is the outcome for one guest as the task log tells it.
type BackupJobGuestResult struct {
	VMID   int
	Status string // ok | failed | running
	Error  string
	VolID  string // the archive, when the log names it
}

type taskListEntry struct {
	UPID      string          `json:"upid"`
	Node      string          `json:"node"`
	Type      string          `json:"type"`
	User      string          `json:"user"`
	StartTime json.Number     `json:"starttime"`
	EndTime   json.Number     `json:"endtime"`
	Status    json.RawMessage `json:"status"`
}

// BackupJobRuns finds the recent runs of a job in the vzdump tasks of every
// online node, newest first. PVE does not record the job id in a task (its
// log's command line leaves job-id out), so a run is recognised by its
// command line: the same guests and vzdump options as the job has now.
// limit caps the runs returned; scan caps the vzdump tasks read per node.
func (c *Client) BackupJobRuns(ctx context.Context, job *BackupJob, limit, scan int) ([]BackupJobRun, error) {
	want := jobCommandOptions(job)
	nodes, err := c.onlineNodes(ctx)
	if err != nil {
		return nil, err
	}
	if job.Options["node"] != "" {
		nodes = []string{job.Options["node"]}
	}
	var runs []BackupJobRun
	for _, n := range nodes {
		var tasks []taskListEntry
		q := url.Values{"typefilter": {"vzdump"}, "source": {"all"}, "limit": {strconv.Itoa(scan)}}
		if err := c.get(ctx, "/nodes/"+url.PathEscape(n)+"/tasks", q, &tasks); err != nil {
			return nil, fmt.Errorf("listing vzdump tasks on node %s: %w", n, err)
		}
		for _, t := range tasks {
			if t.Type != "vzdump" {
				continue
			}
			u, err := ParseUPID(t.UPID)
			if err != nil {
				continue
			}
			page, err := c.taskLog(ctx, "/nodes/"+url.PathEscape(u.Node)+"/tasks/"+url.PathEscape(u.Raw)+"/log", 0)
			if err != nil {
				return nil, fmt.Errorf("reading the log of task %s: %w", u.Raw, err)
			}
			lines := make([]string, 0, len(page.lines))
			for _, l := range page.lines {
				lines = append(lines, l.T)
			}
			cmd, ok := vzdumpCommandLine(lines)
			if !ok || !sameJobCommand(want, cmd) {
				continue
			}
			run := BackupJobRun{UPID: u.Raw, Node: u.Node, User: u.User, StartTime: u.StartTime}
			status := strings.Trim(string(t.Status), `"`)
			end, _ := strconv.ParseInt(t.EndTime.String(), 10, 64)
			if end == 0 || status == "" || status == "running" {
				run.Running = true
			} else {
				run.EndTime, run.ExitStatus = time.Unix(end, 0), status
			}
			run.Guests = guestResults(lines, cmd["storage"])
			runs = append(runs, run)
		}
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].StartTime.After(runs[j].StartTime) })
	if limit > 0 && len(runs) > limit {
		runs = runs[:limit]
	}
	return runs, nil
}

// jobCommandOptions: the vzdump options a run of job has on its command
// line (PVE::VZDump::Common::command_line), normalised.
func jobCommandOptions(job *BackupJob) map[string]string {
	out := map[string]string{}
	for k, v := range job.Options {
		if BackupJobOptionsNotVzdump[k] || v == "" {
			continue
		}
		out[k] = v
	}
	if out["exclude"] != "" && out["pool"] == "" {
		out["all"] = "1"
	}
	if len(job.ExcludePath) > 0 {
		ep := append([]string(nil), job.ExcludePath...)
		sort.Strings(ep)
		out["exclude-path"] = strings.Join(ep, "\x00")
	}
	return normalizeCommandOptions(out)
}

var reSplitList = regexp.MustCompile(`[,;\s\x00]+`)

func normalizeCommandOptions(m map[string]string) map[string]string {
	for k, v := range m {
		switch k {
		case "vmid", "exclude", "mailto":
			parts := reSplitList.Split(strings.TrimSpace(v), -1)
			sort.Strings(parts)
			m[k] = strings.Join(parts, ",")
		case "prune-backups", "fleecing", "performance":
			m[k] = NormalizePropertyString(v)
		}
	}
	delete(m, "quiet")  // the scheduler adds quiet=1; "Run now" does not
	delete(m, "job-id") // never printed by PVE, but a hand-made call may
	return m
}

var reStartLine = regexp.MustCompile(`starting new backup job: (vzdump.*)$`)

// vzdumpCommandLine parses the "starting new backup job: vzdump ..." line.
func vzdumpCommandLine(lines []string) (map[string]string, bool) {
	for i, l := range lines {
		if i > 5 {
			break
		}
		m := reStartLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		words, ok := shellSplit(m[1])
		if !ok || len(words) == 0 || words[0] != "vzdump" {
			return nil, false
		}
		out := map[string]string{}
		var vmids, paths []string
		for j := 1; j < len(words); j++ {
			w := words[j]
			if strings.HasPrefix(w, "--") && j+1 < len(words) {
				k := strings.TrimPrefix(w, "--")
				if k == "exclude-path" {
					paths = append(paths, words[j+1])
				} else {
					out[k] = words[j+1]
				}
				j++
				continue
			}
			vmids = append(vmids, w)
		}
		if len(vmids) > 0 {
			out["vmid"] = strings.Join(vmids, ",")
		}
		if len(paths) > 0 {
			sort.Strings(paths)
			out["exclude-path"] = strings.Join(paths, "\x00")
		}
		return normalizeCommandOptions(out), true
	}
	return nil, false
}

func sameJobCommand(want, got map[string]string) bool {
	if len(want) != len(got) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// shellSplit undoes PVE::Tools::shellquote: words separated by spaces,
// single-quoted or double-quoted parts, backslash escapes outside quotes.
func shellSplit(s string) ([]string, bool) {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, false
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, false
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, true
}

var (
	reGuestStart  = regexp.MustCompile(`^INFO: Starting Backup of VM (\d+) `)
	reGuestFinish = regexp.MustCompile(`^INFO: Finished Backup of VM (\d+) `)
	reGuestFailed = regexp.MustCompile(`^ERROR: Backup of VM (\d+) failed - (.*)$`)
)

// guestResults reads the per-guest outcome from a vzdump task log.
func guestResults(lines []string, storage string) []BackupJobGuestResult {
	if storage == "" {
		storage = "local"
	}
	var out []BackupJobGuestResult
	idx := map[int]int{}
	get := func(id int) *BackupJobGuestResult {
		if i, ok := idx[id]; ok {
			return &out[i]
		}
		idx[id] = len(out)
		out = append(out, BackupJobGuestResult{VMID: id, Status: "running"})
		return &out[len(out)-1]
	}
	current := 0
	for _, l := range lines {
		if m := reGuestStart.FindStringSubmatch(l); m != nil {
			current, _ = strconv.Atoi(m[1])
			get(current)
			continue
		}
		if m := reGuestFinish.FindStringSubmatch(l); m != nil {
			id, _ := strconv.Atoi(m[1])
			get(id).Status = "ok"
			continue
		}
		if m := reGuestFailed.FindStringSubmatch(l); m != nil {
			id, _ := strconv.Atoi(m[1])
			g := get(id)
			g.Status, g.Error = "failed", m[2]
			continue
		}
		if current != 0 {
			if v, ok := archiveVolID(storage, l); ok {
				get(current).VolID = v
			}
		}
	}
	return out
}
