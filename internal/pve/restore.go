package pve

import (
	"context"
	"errors"
	"fmt"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"regexp"
	"strings"
	"time"
)

const (
	defaultShutdownTimeout = 60 * time.Second
	defaultLockWaitTimeout = 60 * time.Second
	startConfirmTimeout    = 30 * time.Second
	stateAbsent            = "absent"
	stateNotCreated        = "not created"
	stateUnknown           = "unknown"
	stateNoDisks           = "no disks"
)

// Restore restores a backup onto a guest (existing or new): check
// everything that can be checked without touching the guest, take a safety
// backup of an existing guest, shut it down, restore with force, start it
// again. Any failure is a
// *RestoreError naming the step, the state the guest was left in and the
// safety backup.
func (c *Client) Restore(ctx context.Context, opts RestoreOptions, progress ProgressFunc) (*RestoreResult, error) {
	r := &restoreRun{c: c, opts: opts, progress: progress, ctx: ctx}
	return r.run(ctx)
}

type restoreRun struct {
	c        *Client
	opts     RestoreOptions
	progress ProgressFunc

	bn        BackupName
	node      string
	guestType string
	existed   bool
	safety    string
	res       *RestoreResult  // what is known so far
	ctx       context.Context // for the step messages' log lines
}

func (r *restoreRun) fail(ctx context.Context, step string, err error) (*RestoreResult, error) {
	state := stateUnknown
	if r.node != "" && r.guestType != "" {
		// query with a fresh context: ctx may be the reason we fail
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		g, gerr := r.c.GuestStatus(qctx, r.node, r.opts.VMID, r.guestType)
		cancel()
		switch {
		case gerr == nil:
			state = g.Status
			if g.Lock != "" {
				state += fmt.Sprintf(" (locked: %s)", g.Lock)
			}
			qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			if cfg, cerr := r.c.guestConfig(qctx, r.node, r.opts.VMID, r.guestType); cerr == nil && isRestoreLeftover(r.guestType, cfg) {
				state = stateNoDisks
			}
			cancel()
		case IsNotFound(gerr) && !r.existed:
			state = stateNotCreated
		case IsNotFound(gerr):
			state = stateAbsent
		}
	} else if !r.existed && r.node == "" {
		state = stateNotCreated
	}
	rerr := &RestoreError{Step: step, VMID: r.opts.VMID, Backup: r.opts.Backup, GuestState: state, SafetyBackupVolID: r.safety, Err: err}
	if r.res != nil {
		rerr.PreviousStatus = r.res.PreviousStatus
		rerr.Node = r.node
	}
	return nil, rerr
}

func (r *restoreRun) say(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	tflog.Info(r.ctx, msg, map[string]any{"vmid": r.opts.VMID, "node": r.node, "step": "restore"})
	if r.progress != nil {
		r.progress(msg)
	}
}

func (r *restoreRun) run(ctx context.Context) (*RestoreResult, error) {
	res := &RestoreResult{PreviousStatus: stateAbsent}
	r.res = res
	plan, err := r.preflight(ctx, res)
	if err != nil {
		return r.fail(ctx, plan.failedStep, err)
	}
	res.Node, res.GuestType = r.node, r.guestType

	if r.existed {
		if err := r.takeSafetyBackup(ctx, res, plan); err != nil {
			return r.failBeforeRestore(ctx, "safety backup", res, err)
		}
		if plan.current.Status != "stopped" {
			if err := r.shutdown(ctx); err != nil {
				return r.failBeforeRestore(ctx, "shutdown", res, err)
			}
		}
	}
	if ctx.Err() != nil {
		return r.failBeforeRestore(ctx, "restore", res, ctx.Err())
	}

	// From here on the guest's disks are being replaced: a Ctrl-C no longer
	// abandons the run (that would leave the guest half-restored and down),
	// only the deadline does.
	ctx, cancel := detachKeepDeadline(ctx)
	defer cancel()
	upid, err := r.startRestoreTask(ctx, plan)
	if err != nil {
		return r.failBeforeRestore(ctx, "restore", res, err)
	}
	res.UPID = upid
	if _, err := r.c.waitTask(ctx, upid, r.progress); err != nil {
		return r.fail(ctx, "restore", err)
	}
	res.RestoredAt = time.Now().UTC()
	if err := r.startIfWanted(ctx, res.PreviousStatus); err != nil {
		return r.fail(ctx, err.step, err.err)
	}
	// only now may a re-run stop treating the guest as down from this run
	r.markSafetyBackupDone(ctx)
	st, err := r.c.GuestStatus(ctx, r.node, r.opts.VMID, r.guestType)
	if err != nil {
		return r.fail(ctx, "confirm state", err)
	}
	res.FinalStatus = st.Status
	return res, nil
}

// detachKeepDeadline is ctx without its cancellation but with its deadline.
func detachKeepDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	d := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(d, dl)
	}
	return context.WithCancel(d)
}

// restorePlan is what the checks found out before anything is touched.
type restorePlan struct {
	failedStep    string
	current       *Guest // the existing guest's status (nil for a new guest)
	targetStorage string // the storage the root filesystem / disks go to ("" = PVE's choice, VMs only)
	safetyStorage string
	// resumed: an earlier attempt of this restore took a safety backup and
	// left the guest down; its volid and the power state from before it
	resumed       string
	resumedStatus string
	// leftover: the guest is what a failed restore leaves (a temporary
	// config without disks), so there is nothing to back up first
	leftover bool
}

// preflight runs every check that can fail without changing the guest:
// the backup exists and fits the guest, the guest is not locked or
// protected, and the target storage can hold it.
func (r *restoreRun) preflight(ctx context.Context, res *RestoreResult) (*restorePlan, error) {
	o := r.opts
	c := r.c
	plan := &restorePlan{failedStep: "check backup"}
	if o.VMID <= 0 {
		return plan, fmt.Errorf("invalid vmid %d", o.VMID)
	}
	bn, err := ParseBackupVolID(o.Backup)
	if err != nil {
		return plan, err
	}
	r.bn = bn

	plan.failedStep = "check guest"
	g, err := c.FindGuest(ctx, o.VMID)
	switch {
	case err == nil:
		r.existed = true
		r.node, r.guestType = g.Node, g.Type
		if g.Type != bn.GuestType {
			plan.failedStep = "check backup"
			return plan, fmt.Errorf("backup %s is a %s backup, but guest %d is a %s: a %s backup can only be restored onto a %s (or into a new vmid)",
				o.Backup, GuestTypeName(bn.GuestType), o.VMID, GuestTypeName(g.Type), GuestTypeName(bn.GuestType), GuestTypeName(bn.GuestType))
		}
		if o.Node != "" && o.Node != g.Node {
			return plan, fmt.Errorf("guest %d is on node %s, not on node %s: PVE cannot restore over a guest of another node", o.VMID, g.Node, o.Node)
		}
	case IsNotFound(err):
		r.guestType = bn.GuestType
	default:
		return plan, err
	}

	plan.failedStep = "check backup"
	if r.node == "" {
		r.node = o.Node
	}
	if r.node != "" {
		b, err := c.GetBackup(ctx, r.node, o.Backup)
		if err != nil {
			// GetBackup's errors name the volid, storage and node.
			return plan, err
		}
		if err := checkBackupType(*b, bn.GuestType); err != nil {
			return plan, err
		}
	} else if r.node, err = r.findBackupNode(ctx); err != nil {
		return plan, err
	}

	plan.failedStep = "check guest"
	plan.targetStorage = o.Storage
	if !r.existed && o.SafetyBackup {
		// an earlier attempt may have left the guest absent
		r.findUnfinishedAttempt(ctx, res, plan)
	}
	if r.existed {
		if err := r.checkExistingGuest(ctx, res, plan); err != nil {
			return plan, err
		}
	}
	plan.failedStep = "check storage"
	if err := r.checkTargetStorage(ctx, plan); err != nil {
		return plan, err
	}
	if r.existed && o.SafetyBackup && plan.resumed == "" && !plan.leftover {
		plan.safetyStorage = o.SafetyBackupStorage
		if plan.safetyStorage == "" {
			plan.safetyStorage = bn.Storage
		}
		if err := r.checkStorageContent(ctx, plan.safetyStorage, "backup", "safety_backup_storage"); err != nil {
			return plan, err
		}
	}
	plan.failedStep = "check privileges"
	if err := r.c.checkPrivileges(ctx, r.restorePrivilegeNeeds(plan)); err != nil {
		return plan, err
	}
	return plan, nil
}

// checkExistingGuest waits out someone else's lock, refuses a protected
// guest, records the power state and the root filesystem's storage, and
// finds an earlier attempt of this restore that left the guest down.
func (r *restoreRun) checkExistingGuest(ctx context.Context, res *RestoreResult, plan *restorePlan) error {
	c, o := r.c, r.opts
	st, err := c.GuestStatus(ctx, r.node, o.VMID, r.guestType)
	if err != nil {
		return err
	}
	if st.Status == "stopped" && o.SafetyBackup {
		// before anything can fail: a failing re-run must still name it
		r.findUnfinishedAttempt(ctx, res, plan)
	}
	if st.Lock != "" {
		if st, err = r.waitUnlocked(ctx, st); err != nil {
			return err
		}
	}
	plan.current = st
	res.PreviousStatus = st.Status
	cfg, err := c.guestConfig(ctx, r.node, o.VMID, r.guestType)
	if err != nil {
		return err
	}
	if cfg["protection"] == "1" {
		return newKindError(ErrProtected, nil,
			"guest %d has protection enabled, so PVE refuses to overwrite it: turn protection off first (pct/qm set %d --protection 0)", o.VMID, o.VMID)
	}
	if isRestoreLeftover(r.guestType, cfg) {
		// what a failed restore leaves: there is no data to keep
		plan.leftover = true
		r.say("guest %d has only the temporary config a failed restore leaves (no disks); no safety backup is taken of it", o.VMID)
		return nil
	}
	if r.guestType == GuestTypeLXC && plan.targetStorage == "" {
		plan.targetStorage = volumeStorage(cfg["rootfs"])
	}
	return nil
}

// checkTargetStorage makes sure the restore's storage exists on the node and
// can hold what the backup restores (rootdir for containers, images for VMs),
// before the guest is touched: PVE checks it only when the restore starts.
func (r *restoreRun) checkTargetStorage(ctx context.Context, plan *restorePlan) error {
	content, attr := "images", "storage"
	if r.guestType == GuestTypeLXC {
		content = "rootdir"
		if plan.targetStorage == "" {
			s, err := r.containerStorage(ctx)
			if err != nil {
				return err
			}
			plan.targetStorage = s
			return nil
		}
	}
	if plan.targetStorage == "" {
		return nil // VMs: the storages recorded in the backup
	}
	return r.checkStorageContent(ctx, plan.targetStorage, content, attr)
}

func (r *restoreRun) checkStorageContent(ctx context.Context, storage, content, attr string) error {
	sts, err := r.c.nodeStorages(ctx, r.node, "")
	if err != nil {
		return err
	}
	for _, s := range sts {
		if s.Storage != storage {
			continue
		}
		switch {
		case !s.has(content):
			return fmt.Errorf("%s %q on node %s cannot hold %s (its content types are %s): choose a storage with %s content",
				attr, storage, r.node, contentNoun(content), s.Content, content)
		case int(s.Enabled) == 0 || int(s.Active) == 0:
			return fmt.Errorf("%s %q is not enabled and active on node %s", attr, storage, r.node)
		}
		return nil
	}
	return fmt.Errorf("%s %q does not exist on node %s", attr, storage, r.node)
}

func contentNoun(content string) string {
	switch content {
	case "rootdir":
		return "container root filesystems"
	case "images":
		return "VM disks"
	case "backup":
		return "backups"
	}
	return content
}

// takeSafetyBackup backs the guest up as it is now, unless an earlier
// attempt of the same restore already did and left the guest down.
func (r *restoreRun) takeSafetyBackup(ctx context.Context, res *RestoreResult, plan *restorePlan) error {
	o := r.opts
	if plan.resumed != "" {
		r.safety = plan.resumed
		res.SafetyBackupVolID = plan.resumed
		res.PreviousStatus = plan.resumedStatus
		r.say("guest %d was left %s by an earlier attempt of this restore; its safety backup %s (taken while it was %s) is kept",
			o.VMID, plan.current.Status, plan.resumed, plan.resumedStatus)
		return nil
	}
	if !o.SafetyBackup || plan.leftover {
		return nil
	}
	r.say("taking a safety backup of guest %d to storage %s", o.VMID, plan.safetyStorage)
	sb, err := r.c.CreateBackup(ctx, BackupOptions{
		VMID:          o.VMID,
		Node:          r.node,
		Storage:       plan.safetyStorage,
		Compress:      "zstd",
		NotesTemplate: safetyNotes(o.Backup, plan.current.Status),
	}, r.progress)
	if sb != nil {
		r.safety = sb.Backup.VolID
		res.SafetyBackupVolID = sb.Backup.VolID
		r.say("safety backup: %s", sb.Backup.VolID)
	}
	return err
}

// failBeforeRestore ends a run that stopped before the restore task began:
// the guest's disks are untouched, so it goes back to its power state, and
// the safety backup this run took, a copy of what is still there, is
// removed so that it leaves nothing behind.
func (r *restoreRun) failBeforeRestore(ctx context.Context, step string, res *RestoreResult, err error) (*RestoreResult, error) {
	if !r.existed {
		return r.fail(ctx, step, err)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.c.cleanupTimeout)
	defer cancel()
	st, serr := r.c.GuestStatus(cctx, r.node, r.opts.VMID, r.guestType)
	if serr == nil && res.PreviousStatus == "running" && st.Status != "running" {
		r.say("the restore did not start; starting guest %d again", r.opts.VMID)
		if serr = r.c.powerAction(cctx, r.node, r.opts.VMID, r.guestType, "start", nil, r.progress); serr != nil {
			err = fmt.Errorf("%w; starting the guest again failed too: %w", err, serr)
		}
	}
	if serr == nil && r.safety != "" && r.safety != r.res.resumedFrom {
		if derr := r.c.DeleteBackup(cctx, r.node, r.safety, nil); derr == nil {
			r.say("guest %d is as it was; its safety backup %s was removed", r.opts.VMID, r.safety)
			r.safety, res.SafetyBackupVolID = "", ""
		} else {
			r.markSafetyBackupDone(cctx)
		}
	}
	return r.fail(ctx, step, err)
}

// startRestoreTask posts the restore and returns its task.
func (r *restoreRun) startRestoreTask(ctx context.Context, plan *restorePlan) (string, error) {
	o := r.opts
	body := map[string]any{"vmid": o.VMID}
	var path string
	if r.guestType == GuestTypeLXC {
		path = segPath("nodes", r.node, "lxc")
		body["ostemplate"] = o.Backup
		body["restore"] = true
		body["storage"] = plan.targetStorage
	} else {
		path = segPath("nodes", r.node, "qemu")
		body["archive"] = o.Backup
		if plan.targetStorage != "" {
			body["storage"] = plan.targetStorage
		}
	}
	if r.existed {
		body["force"] = true
	}
	if o.Unique {
		body["unique"] = true
	}
	if o.BandwidthLimitKiB > 0 {
		body["bwlimit"] = o.BandwidthLimitKiB
	}
	r.say("restoring %s onto guest %d on node %s", o.Backup, o.VMID, r.node)
	var upid string
	err := r.c.post(ctx, path, body, &upid)
	return upid, err
}

type stepError struct {
	step string
	err  error
}

// startIfWanted starts the guest when it ran before (or as Start says) and
// confirms it runs.
func (r *restoreRun) startIfWanted(ctx context.Context, previous string) *stepError {
	start := previous == "running"
	if r.opts.Start != nil {
		start = *r.opts.Start
	}
	if !start {
		return nil
	}
	r.say("starting guest %d", r.opts.VMID)
	if err := r.c.powerAction(ctx, r.node, r.opts.VMID, r.guestType, "start", nil, r.progress); err != nil {
		// "already running" is fine
		if st, serr := r.c.GuestStatus(ctx, r.node, r.opts.VMID, r.guestType); serr != nil || st.Status != "running" {
			return &stepError{"start", err}
		}
	}
	if err := r.c.waitStatus(ctx, r.node, r.opts.VMID, r.guestType, "running", startConfirmTimeout); err != nil {
		return &stepError{"confirm running", err}
	}
	return nil
}

// GuestTypeName says what a guest type is, for messages: "container (lxc)".
func GuestTypeName(t string) string {
	switch t {
	case GuestTypeLXC:
		return "container (lxc)"
	case GuestTypeQEMU:
		return "VM (qemu)"
	}
	return t
}

func checkBackupType(b Backup, want string) error {
	got := b.GuestType
	switch {
	case strings.HasPrefix(b.Format, "vma") || b.Format == "pbs-vm":
		got = GuestTypeQEMU
	case strings.HasPrefix(b.Format, "tar") || b.Format == "tgz" || b.Format == "pbs-ct":
		got = GuestTypeLXC
	}
	if got != "" && got != want {
		return fmt.Errorf("backup %s is a %s backup (format %s), not a %s backup", b.VolID, GuestTypeName(got), b.Format, GuestTypeName(want))
	}
	return nil
}

// volumeStorage gets "local-lvm" from "local-lvm:vm-100-disk-0,size=8G".
func volumeStorage(v string) string {
	v = strings.SplitN(v, ",", 2)[0]
	v = strings.TrimPrefix(v, "volume=")
	if i := strings.IndexByte(v, ':'); i > 0 {
		return v[:i]
	}
	return ""
}

// findBackupNode finds an online node from which the backup is listed.
func (r *restoreRun) findBackupNode(ctx context.Context) (string, error) {
	nodes, err := r.c.onlineNodes(ctx)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, n := range nodes {
		b, err := r.c.GetBackup(ctx, n, r.opts.Backup)
		if err == nil {
			if err := checkBackupType(*b, r.bn.GuestType); err != nil {
				return "", err
			}
			return n, nil
		}
		if !IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("backup %s could not be found: %w", r.opts.Backup, errors.Join(errs...))
	}
	return "", newKindError(ErrNotFound, nil, "backup %s does not exist (no online node lists it on storage %s)", r.opts.Backup, r.bn.Storage)
}

// containerStorage is the first enabled, active storage on the node that can
// hold container root filesystems.
func (r *restoreRun) containerStorage(ctx context.Context) (string, error) {
	sts, err := r.c.nodeStorages(ctx, r.node, "rootdir")
	if err != nil {
		return "", err
	}
	for _, s := range sts {
		if s.has("rootdir") && int(s.Enabled) != 0 && int(s.Active) != 0 {
			return s.Storage, nil
		}
	}
	return "", fmt.Errorf("node %s has no active storage for container root filesystems (content rootdir): set the restore storage", r.node)
}

// waitUnlocked waits within LockWaitTimeout for someone else's lock to go.
func (r *restoreRun) waitUnlocked(ctx context.Context, st *Guest) (*Guest, error) {
	timeout := r.opts.LockWaitTimeout
	if timeout <= 0 {
		timeout = defaultLockWaitTimeout
	}
	r.say("guest %d is locked (%s); waiting up to %s for the lock to go", r.opts.VMID, st.Lock, timeout)
	deadline := time.Now().Add(timeout)
	poll := r.c.newPoller()
	for st.Lock != "" {
		if time.Now().After(deadline) {
			return st, newKindError(ErrLocked, nil, "guest %d is still locked (%s) after waiting %s: another operation (backup, snapshot, migration, ...) holds it; try again when it has finished", r.opts.VMID, st.Lock, timeout)
		}
		if err := poll.wait(ctx); err != nil {
			return st, fmt.Errorf("waiting for the lock (%s) on guest %d to go: %w", st.Lock, r.opts.VMID, err)
		}
		next, err := r.c.GuestStatus(ctx, r.node, r.opts.VMID, r.guestType)
		if err != nil {
			return st, err
		}
		st = next
	}
	return st, nil
}

// shutdown shuts the guest down gracefully and stops it when that does not
// finish within ShutdownTimeout.
func (r *restoreRun) shutdown(ctx context.Context) error {
	c := r.c
	timeout := r.opts.ShutdownTimeout
	if timeout <= 0 {
		timeout = defaultShutdownTimeout
	}
	secs := int(timeout / time.Second)
	if secs < 1 {
		secs = 1
	}
	r.say("shutting guest %d down (up to %s)", r.opts.VMID, timeout)
	sctx, cancel := context.WithTimeout(ctx, timeout+15*time.Second)
	err := c.powerAction(sctx, r.node, r.opts.VMID, r.guestType, "shutdown", map[string]any{"timeout": secs}, r.progress)
	cancel()
	if err == nil {
		if werr := c.waitStatus(ctx, r.node, r.opts.VMID, r.guestType, "stopped", 5*time.Second); werr == nil {
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		r.say("graceful shutdown did not finish (%v); stopping guest %d", FirstLine(err.Error()), r.opts.VMID)
	}
	if st, serr := c.GuestStatus(ctx, r.node, r.opts.VMID, r.guestType); serr == nil && st.Status == "stopped" {
		return nil
	}
	if serr := c.powerAction(ctx, r.node, r.opts.VMID, r.guestType, "stop", nil, r.progress); serr != nil {
		if err != nil {
			return fmt.Errorf("%w; then stop failed too: %w", err, serr)
		}
		return serr
	}
	if werr := c.waitStatus(ctx, r.node, r.opts.VMID, r.guestType, "stopped", 30*time.Second); werr != nil {
		return werr
	}
	return nil
}

// isRestoreLeftover recognises the config a failed QEMU restore leaves behind
// (qemu-server writes a temporary config and removes only the lock when the
// restore fails): no disk at all. A container that fails is removed whole.
func isRestoreLeftover(guestType string, cfg map[string]string) bool {
	if guestType != GuestTypeQEMU {
		return false
	}
	for k, v := range cfg {
		if reDiskKey.MatchString(k) && !strings.Contains(v, "media=cdrom") && v != "none" {
			return false
		}
	}
	return true
}

var reDiskKey = regexp.MustCompile(`^(scsi|virtio|sata|ide)\d+$|^(efidisk|tpmstate)0$`)
