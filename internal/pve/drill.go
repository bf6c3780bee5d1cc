package pve

import (
	"context"
	"errors"
	"fmt"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

// A restore drill restores a backup into a scratch guest, starts it, watches
// it stay up, and destroys it again, whatever happened in between.

const (
	// DrillTag marks every scratch guest a drill creates.
	DrillTag = "proxmoxapp-drill"
	// drillMarker starts the scratch guest's description; the deadline after
	// it says from when on a guest still there is a leftover.
	drillMarker         = "proxmoxapp restore drill: scratch copy of "
	drillDeadlineMarker = "; destroy after "
	defaultDrillStart   = 5 * time.Minute
	drillCleanupTimeout = 5 * time.Minute
)

// Drill steps, as DrillResult.FailedStep names them.
const (
	DrillStepCheckBackup = "check backup"
	DrillStepRestore     = "restore"
	DrillStepStart       = "start"
	DrillStepSettle      = "settle"
)

var reDrillDeadline = regexp.MustCompile(regexp.QuoteMeta(drillDeadlineMarker) + `(\S+)`)

// DrillOptions are the inputs of one drill.
type DrillOptions struct {
	Backup string // volid
	Node   string // "" = a node that sees the backup
	// VMID of the scratch guest; 0 = the next free one (/cluster/nextid). A
	// given vmid must not exist, unless it holds a leftover of a drill.
	VMID    int
	Storage string // target storage; "" = first rootdir storage (CT) / the backup's storages (VM)
	// ConnectNetwork false restores every NIC with link_down=1, so the copy
	// cannot answer for the live app on the network.
	ConnectNetwork bool
	Settle         time.Duration // how long it must stay running (0: running once is enough)
	StartTimeout   time.Duration // from the start request to running
	// Deadline is written into the scratch guest: a later drill that still
	// finds the guest after it removes it as a leftover.
	Deadline time.Time
}

// DrillResult is the outcome of a drill that ran (passed or failed).
type DrillResult struct {
	Passed     bool
	FailedStep string // "" when passed
	Reason     string // why it failed
	Node       string
	VMID       int
	GuestType  string
	TaskID     string // UPID of the restore
	StartedAt  time.Time
	// RestoreDuration is the restore task's run time; TimeToRunning is from
	// the start of the restore to the guest first seen running: the
	// measured recovery time.
	RestoreDuration time.Duration
	TimeToRunning   time.Duration
	RestoredBytes   int64
	// LeftoversRemoved are scratch guests of earlier, interrupted drills
	// that this drill destroyed first.
	LeftoversRemoved []int
}

// DrillCleanupError: the scratch guest could not be destroyed.
type DrillCleanupError struct {
	VMID int
	Node string
	Err  error
}

func (e *DrillCleanupError) Error() string {
	return fmt.Sprintf("the scratch guest %d on node %s could not be destroyed: %v. It is tagged %q; the next drill "+
		"removes it once its deadline has passed, or destroy it by hand (pct/qm destroy %d --purge)", e.VMID, e.Node, e.Err, DrillTag, e.VMID)
}

func (e *DrillCleanupError) Unwrap() error { return e.Err }

// DrillRefusedError: the drill did not start because its target is not a
// scratch vmid it may use.
type DrillRefusedError struct{ msg string }

func (e *DrillRefusedError) Error() string { return e.msg }

// NextVMID asks /cluster/nextid for a free vmid.
func (c *Client) NextVMID(ctx context.Context) (int, error) {
	var v proxmox.StringOrInt
	if err := c.get(ctx, "/cluster/nextid", nil, &v); err != nil {
		return 0, fmt.Errorf("asking the cluster for a free vmid: %w", err)
	}
	return int(v), nil
}

// freeVMIDNot is the next free vmid, skipping avoid: when the original guest
// is gone, nextid would offer its vmid, and a drill never uses that.
func (c *Client) freeVMIDNot(ctx context.Context, avoid int) (int, error) {
	vmid, err := c.NextVMID(ctx)
	if err != nil || vmid != avoid {
		return vmid, err
	}
	for cand := avoid + 1; cand < avoid+10000; cand++ {
		var v proxmox.StringOrInt
		err := c.get(ctx, "/cluster/nextid", url.Values{"vmid": {strconv.Itoa(cand)}}, &v)
		if err == nil {
			return int(v), nil
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != 400 {
			return 0, fmt.Errorf("asking the cluster whether vmid %d is free: %w", cand, err)
		}
	}
	return 0, fmt.Errorf("no free vmid found after %d", avoid)
}

type drillRun struct {
	c        *Client
	o        DrillOptions
	progress ProgressFunc
	res      *DrillResult
	created  bool // the restore request was accepted: there may be a guest to destroy
	// forbidden is the first permission error: the drill could not run.
	forbidden error
	ctx       context.Context // for the step messages' log lines
}

func (d *drillRun) say(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	tflog.Info(d.ctx, msg, map[string]any{"vmid": d.res.VMID, "node": d.res.Node, "step": "restore drill"})
	if d.progress != nil {
		d.progress(msg)
	}
}

func (d *drillRun) fail(step string, err error) {
	if IsForbidden(err) && d.forbidden == nil {
		// missing privileges say nothing about the backup: an error, not a result
		d.forbidden = fmt.Errorf("%s: %w", step, err)
	}
	d.res.Passed, d.res.FailedStep, d.res.Reason = false, step, err.Error()
	d.say("drill failed at step %q: %s", step, FirstLine(err.Error()))
}

// Drill runs one restore drill. A drill that fails (the backup is missing,
// the restore or the start fails, the guest does not stay up) is a result
// with Passed false, not an error. Errors are a refused target
// (*DrillRefusedError), a scratch guest that could not be destroyed
// (*DrillCleanupError, with the result), or a cancelled context.
func (c *Client) Drill(ctx context.Context, o DrillOptions, progress ProgressFunc) (*DrillResult, error) {
	if o.Settle < 0 {
		o.Settle = 0
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = defaultDrillStart
	}
	if o.Deadline.IsZero() {
		o.Deadline = time.Now().Add(2 * time.Hour)
	}
	d := &drillRun{c: c, o: o, progress: progress, ctx: ctx, res: &DrillResult{StartedAt: time.Now().UTC(), Passed: true}}
	bn, err := ParseBackupVolID(o.Backup)
	if err != nil {
		return nil, &DrillRefusedError{msg: err.Error()}
	}
	d.res.GuestType = bn.GuestType
	if o.VMID == bn.VMID {
		return nil, &DrillRefusedError{msg: fmt.Sprintf("vmid %d is the guest the backup was taken of: a drill never restores over the original; choose another vmid or leave it unset", o.VMID)}
	}

	// the backup, and the node to restore on
	b, err := c.GetBackup(ctx, o.Node, o.Backup)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		d.res.Node = o.Node
		if IsNotFound(err) {
			// PVE lists only the backups the credentials may read
			err = fmt.Errorf("%w (or the credentials cannot see it: reading a backup takes Datastore.AllocateSpace on its storage or VM.Backup on its guest)", err)
		}
		d.fail(DrillStepCheckBackup, err)
		if d.forbidden != nil {
			return nil, &DrillNotPermittedError{Err: d.forbidden}
		}
		return d.res, nil
	}
	d.res.Node = b.Node

	removed, err := c.removeDrillLeftovers(ctx, o.VMID, progress)
	d.res.LeftoversRemoved = removed
	if err != nil {
		return nil, err
	}

	// the scratch vmid
	vmid := o.VMID
	if vmid > 0 {
		g, err := c.FindGuest(ctx, vmid)
		switch {
		case err == nil:
			return nil, &DrillRefusedError{msg: fmt.Sprintf("guest %d already exists (%s on node %s, %s): a drill restores only into a vmid that does not exist; choose a free vmid or leave vmid unset to take the next free one",
				vmid, g.Type, g.Node, g.Status)}
		case !IsNotFound(err):
			return nil, fmt.Errorf("checking that scratch vmid %d is free: %w", vmid, err)
		}
	} else if vmid, err = c.freeVMIDNot(ctx, bn.VMID); err != nil {
		return nil, err
	}
	d.res.VMID = vmid

	runErr := d.run(ctx)
	cleanupErr := d.cleanup(ctx)
	if cleanupErr != nil {
		return d.res, cleanupErr
	}
	if runErr != nil {
		return d.res, runErr
	}
	if d.forbidden != nil {
		return d.res, &DrillNotPermittedError{Err: d.forbidden}
	}
	return d.res, nil
}

// DrillNotPermittedError: the credentials lack a privilege the drill needs
// (the scratch guest, if one was created, has been destroyed).
type DrillNotPermittedError struct{ Err error }

func (e *DrillNotPermittedError) Error() string {
	return fmt.Sprintf("the restore drill could not run, the credentials lack a privilege (%v). A drill needs VM.Allocate, "+
		"VM.PowerMgmt and VM.Audit on /vms (the scratch vmid), Datastore.AllocateSpace on the scratch storage, and "+
		"read access to the backup (Datastore.AllocateSpace, or VM.Backup on the backed-up guest)", e.Err)
}

func (e *DrillNotPermittedError) Unwrap() error { return e.Err }

// run restores, starts and watches the scratch guest. It returns an error
// only when ctx ends; drill failures are recorded in d.res.
func (d *drillRun) run(ctx context.Context) error {
	begin := time.Now()
	err := d.restoreScratch(ctx, begin)
	var startAt time.Time
	if err == nil {
		startAt, err = d.startScratch(ctx, begin)
	}
	if err == nil {
		err = d.watchSettle(ctx, startAt)
	}
	switch {
	case errors.Is(err, errDrillStepFailed):
		return nil // the failure is the drill's result
	case err != nil:
		return err
	}
	d.say("drill passed: recovery time %s", d.res.TimeToRunning.Round(time.Millisecond))
	return nil
}

// errDrillStepFailed ends a drill whose failure d.fail has recorded.
var errDrillStepFailed = errors.New("drill step failed")

// failStep records a failed step, unless ctx ended (then that is the error).
func (d *drillRun) failStep(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d.fail(step, err)
	return errDrillStepFailed
}

// restoreScratch restores the backup into the scratch guest: unique, tagged,
// described with its deadline, and by default with its network links down.
func (d *drillRun) restoreScratch(ctx context.Context, begin time.Time) error {
	c, o, res := d.c, d.o, d.res
	body := map[string]any{
		"vmid":        res.VMID,
		"unique":      true,
		"tags":        DrillTag,
		"description": fmt.Sprintf("%s%s%s%s", drillMarker, o.Backup, drillDeadlineMarker, o.Deadline.UTC().Format(time.RFC3339)),
	}
	if !o.ConnectNetwork {
		nets, err := c.backupNICs(ctx, res.Node, o.Backup)
		if err != nil {
			return d.failStep(ctx, DrillStepRestore, err)
		}
		for k, v := range nets {
			body[k] = v
		}
	}
	storage := o.Storage
	path := segPath("nodes", res.Node, res.GuestType)
	if res.GuestType == GuestTypeLXC {
		if storage == "" {
			st, err := c.firstStorage(ctx, res.Node, "rootdir")
			if err != nil {
				return d.failStep(ctx, DrillStepRestore, err)
			}
			storage = st
		}
		body["ostemplate"], body["restore"] = o.Backup, true
	} else {
		body["archive"] = o.Backup
	}
	if storage != "" {
		body["storage"] = storage
	}
	d.say("restoring %s into scratch guest %d on node %s", o.Backup, res.VMID, res.Node)
	var upid string
	if err := c.post(ctx, path, body, &upid); err != nil {
		return d.failStep(ctx, DrillStepRestore, err)
	}
	d.created = true
	res.TaskID = upid
	task, err := c.waitTask(ctx, upid, d.progress)
	if err != nil {
		if ctx.Err() != nil {
			d.stopTask(upid)
		}
		return d.failStep(ctx, DrillStepRestore, err)
	}
	res.RestoreDuration = time.Since(begin)
	res.RestoredBytes = restoredBytes(task.Lines)
	return nil
}

// startScratch starts the scratch guest and waits, within StartTimeout, for
// it to run; it returns when the start was asked for.
func (d *drillRun) startScratch(ctx context.Context, begin time.Time) (time.Time, error) {
	c, o, res := d.c, d.o, d.res
	d.say("starting scratch guest %d", res.VMID)
	startAt := time.Now()
	sctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	err := c.powerAction(sctx, res.Node, res.VMID, res.GuestType, "start", nil, d.progress)
	if err == nil {
		err = c.waitStatus(sctx, res.Node, res.VMID, res.GuestType, "running", o.StartTimeout-time.Since(startAt))
	}
	if err != nil {
		if ctx.Err() == nil && sctx.Err() != nil {
			err = fmt.Errorf("scratch guest %d was not running %s after the start request (start_timeout): %w", res.VMID, o.StartTimeout, err)
		}
		return startAt, d.failStep(ctx, DrillStepStart, err)
	}
	res.TimeToRunning = time.Since(begin)
	if res.RestoredBytes == 0 {
		res.RestoredBytes = c.guestDiskBytes(ctx, res.Node, res.VMID, res.GuestType)
	}
	return startAt, nil
}

// watchSettle checks that the scratch guest stays running for Settle.
func (d *drillRun) watchSettle(ctx context.Context, startAt time.Time) error {
	c, o, res := d.c, d.o, d.res
	d.say("scratch guest %d is running; watching it for %s", res.VMID, o.Settle)
	until := time.Now().Add(o.Settle)
	poll := c.newPoller()
	for time.Now().Before(until) {
		g, err := c.GuestStatus(ctx, res.Node, res.VMID, res.GuestType)
		if err != nil {
			return d.failStep(ctx, DrillStepSettle, err)
		}
		if g.Status != "running" {
			return d.failStep(ctx, DrillStepSettle, fmt.Errorf("scratch guest %d was %s %s after it started (it had to stay running for %s)",
				res.VMID, g.Status, time.Since(startAt).Round(time.Second), o.Settle))
		}
		if err := poll.waitUpTo(ctx, time.Until(until)); err != nil {
			return err
		}
	}
	return nil
}

// waitUpTo waits like wait, but no longer than limit.
func (p *poller) waitUpTo(ctx context.Context, limit time.Duration) error {
	if limit <= 0 {
		return nil
	}
	if p.delay > limit {
		p.delay = limit
	}
	return p.wait(ctx)
}

// stopTask asks PVE to stop a task the drill no longer waits for, so the
// scratch guest can be destroyed.
func (d *drillRun) stopTask(upid string) {
	u, err := ParseUPID(upid)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), drillCleanupTimeout)
	defer cancel()
	_ = d.c.del(ctx, segPath("nodes", u.Node, "tasks", upid), nil, nil)
	poll := d.c.newPoller()
	for ctx.Err() == nil {
		var st taskStatus
		if err := d.c.get(ctx, segPath("nodes", u.Node, "tasks", upid, "status"), nil, &st); err == nil && st.Status != "running" {
			return
		}
		if poll.wait(ctx) != nil {
			return
		}
	}
}

// cleanup destroys the scratch guest with a context of its own: an
// interrupted apply still removes it.
func (d *drillRun) cleanup(parent context.Context) error {
	if !d.created {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), drillCleanupTimeout)
	defer cancel()
	d.say("destroying scratch guest %d", d.res.VMID)
	if err := d.c.destroyScratch(ctx, d.res.Node, d.res.VMID, d.res.GuestType, d.progress); err != nil {
		return &DrillCleanupError{VMID: d.res.VMID, Node: d.res.Node, Err: err}
	}
	return nil
}

// destroyScratch stops the guest if it runs, waits for a lock of its own
// restore to go, and destroys it with its disks (purge,
// destroy-unreferenced-disks). A guest that is already gone is fine.
func (c *Client) destroyScratch(ctx context.Context, node string, vmid int, guestType string, progress ProgressFunc) error {
	deadline := time.Now().Add(drillCleanupTimeout / 2)
	poll := c.newPoller()
	for {
		g, err := c.GuestStatus(ctx, node, vmid, guestType)
		if IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if g.Lock == "" || g.Lock == "destroyed" || time.Now().After(deadline) {
			if g.Status != "stopped" {
				if err := c.powerAction(ctx, node, vmid, guestType, "stop", nil, progress); err != nil {
					if st, serr := c.GuestStatus(ctx, node, vmid, guestType); serr != nil || st.Status != "stopped" {
						return err
					}
				}
			}
			break
		}
		if err := poll.wait(ctx); err != nil {
			return err
		}
	}
	var upid string
	q := url.Values{"purge": {"1"}, "destroy-unreferenced-disks": {"1"}}
	if err := c.del(ctx, segPath("nodes", node, guestType, strconv.Itoa(vmid)), q, &upid); err != nil {
		if IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("destroying guest %d: %w", vmid, err)
	}
	if _, err := c.waitTask(ctx, upid, progress); err != nil {
		return fmt.Errorf("destroying guest %d: %w", vmid, err)
	}
	if _, err := c.GuestStatus(ctx, node, vmid, guestType); !IsNotFound(err) {
		if err == nil {
			return fmt.Errorf("guest %d still exists after its destroy task", vmid)
		}
		return err
	}
	return nil
}

type drillGuest struct {
	VMID   proxmox.StringOrInt `json:"vmid"`
	Type   string              `json:"type"`
	Node   string              `json:"node"`
	Tags   string              `json:"tags"`
	Lock   string              `json:"lock"`
	Status string              `json:"status"`
}

func hasTag(tags, tag string) bool {
	for _, t := range strings.FieldsFunc(tags, func(r rune) bool { return r == ';' || r == ',' || r == ' ' }) {
		if t == tag {
			return true
		}
	}
	return false
}

// removeDrillLeftovers destroys scratch guests of earlier drills that are
// still there: guests tagged DrillTag whose description carries the drill
// marker and whose deadline has passed, and a marked guest on the given
// scratch vmid (that vmid belongs to this drill). Guests without the marker
// are never touched.
func (c *Client) removeDrillLeftovers(ctx context.Context, scratchVMID int, progress ProgressFunc) ([]int, error) {
	var res []drillGuest
	if err := c.get(ctx, "/cluster/resources", url.Values{"type": {"vm"}}, &res); err != nil {
		return nil, fmt.Errorf("looking for leftovers of earlier drills: %w", err)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].VMID < res[j].VMID })
	var removed []int
	for _, g := range res {
		if !hasTag(g.Tags, DrillTag) || (g.Type != GuestTypeLXC && g.Type != GuestTypeQEMU) {
			continue
		}
		vmid := int(g.VMID)
		cfg, err := c.guestConfig(ctx, g.Node, vmid, g.Type)
		if err != nil {
			continue // gone meanwhile, or not readable: not ours to judge
		}
		desc := cfg["description"]
		if !strings.HasPrefix(desc, drillMarker) {
			continue
		}
		expired := false
		if m := reDrillDeadline.FindStringSubmatch(desc); m != nil {
			if t, err := time.Parse(time.RFC3339, m[1]); err == nil && time.Now().After(t) {
				expired = true
			}
		}
		if !expired && vmid != scratchVMID {
			continue // perhaps another drill running right now
		}
		msg := fmt.Sprintf("destroying scratch guest %d left behind by an earlier drill", vmid)
		tflog.Info(ctx, msg, map[string]any{"vmid": vmid, "node": g.Node})
		if progress != nil {
			progress(msg)
		}
		if err := c.destroyScratch(ctx, g.Node, vmid, g.Type, progress); err != nil {
			return removed, &DrillCleanupError{VMID: vmid, Node: g.Node, Err: err}
		}
		removed = append(removed, vmid)
	}
	return removed, nil
}

// IsDrillScratch reports whether guest vmid exists and is a drill's scratch
// guest (tag and marker).
func (c *Client) IsDrillScratch(ctx context.Context, vmid int) (*Guest, bool, error) {
	g, err := c.FindGuest(ctx, vmid)
	if err != nil {
		return nil, false, err
	}
	cfg, err := c.guestConfig(ctx, g.Node, vmid, g.Type)
	if err != nil {
		return g, false, err
	}
	return g, hasTag(cfg["tags"], DrillTag) && strings.HasPrefix(cfg["description"], drillMarker), nil
}

// DestroyDrillScratch destroys a drill's scratch guest; a guest that is not
// one (no tag or marker) is refused, and one that is gone is fine.
func (c *Client) DestroyDrillScratch(ctx context.Context, vmid int, progress ProgressFunc) error {
	g, ok, err := c.IsDrillScratch(ctx, vmid)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("guest %d is not a restore drill's scratch guest (no %q tag and marker); it is left alone", vmid, DrillTag)
	}
	return c.destroyScratch(ctx, g.Node, vmid, g.Type, progress)
}

var reNICKey = regexp.MustCompile(`^net\d+$`)

// backupNICs reads the backed-up config and returns each NIC with
// link_down=1 (or link_down replaced), ready to override the restore's.
func (c *Client) backupNICs(ctx context.Context, node, volid string) (map[string]string, error) {
	var text string
	if err := c.get(ctx, segPath("nodes", node, "vzdump", "extractconfig"), url.Values{"volume": {volid}}, &text); err != nil {
		return nil, fmt.Errorf("reading the configuration inside %s (to restore its network interfaces disconnected): %w", volid, err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "[") {
			break // snapshots and pending sections follow the current config
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || !reNICKey.MatchString(strings.TrimSpace(k)) {
			continue
		}
		var opts []string
		for _, o := range strings.Split(strings.TrimSpace(v), ",") {
			if !strings.HasPrefix(o, "link_down=") && o != "" {
				opts = append(opts, o)
			}
		}
		out[strings.TrimSpace(k)] = strings.Join(append(opts, "link_down=1"), ",")
	}
	return out, nil
}

func (c *Client) firstStorage(ctx context.Context, node, content string) (string, error) {
	sts, err := c.nodeStorages(ctx, node, content)
	if err != nil {
		return "", err
	}
	for _, s := range sts {
		if s.has(content) && int(s.Enabled) != 0 && int(s.Active) != 0 {
			return s.Storage, nil
		}
	}
	return "", fmt.Errorf("node %s has no active storage for %s: set the drill's storage", node, content)
}

var reRestoredBytes = regexp.MustCompile(`(?i)^total bytes read:? (\d+)`)

// restoredBytes reads the byte count tar (CT) or vma (VM) logs at the end of a restore.
func restoredBytes(lines []string) int64 {
	for i := len(lines) - 1; i >= 0; i-- {
		if m := reRestoredBytes.FindStringSubmatch(strings.TrimSpace(lines[i])); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			return n
		}
	}
	return 0
}

// guestDiskBytes falls back to the running guest's disk usage (or its size).
func (c *Client) guestDiskBytes(ctx context.Context, node string, vmid int, guestType string) int64 {
	var st struct {
		Disk    proxmox.StringOrInt `json:"disk"`
		MaxDisk proxmox.StringOrInt `json:"maxdisk"`
	}
	if err := c.get(ctx, segPath("nodes", node, guestType, strconv.Itoa(vmid), "status", "current"), nil, &st); err != nil {
		return 0
	}
	if st.Disk > 0 {
		return int64(st.Disk)
	}
	return int64(st.MaxDisk)
}

// IsDrillRefused reports a refused drill target.
func IsDrillRefused(err error) bool {
	var r *DrillRefusedError
	return errors.As(err, &r)
}
