package pve

import (
	"context"
	"errors"
	"fmt"
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
)

// Restore restores a backup onto a guest (existing or new), following
// design.md §2: check the backup, take a safety backup of an existing guest,
// shut it down, restore with force, start it again. Any failure is a
// *RestoreError naming the step, the state the guest was left in and the
// safety backup.
func (c *Client) Restore(ctx context.Context, opts RestoreOptions, progress ProgressFunc) (*RestoreResult, error) {
	r := &restoreRun{c: c, opts: opts, progress: progress}
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
		case IsNotFound(gerr) && !r.existed:
			state = stateNotCreated
		case IsNotFound(gerr):
			state = stateAbsent
		}
	} else if !r.existed && r.node == "" {
		state = stateNotCreated
	}
	return nil, &RestoreError{Step: step, VMID: r.opts.VMID, Backup: r.opts.Backup, GuestState: state, SafetyBackupVolID: r.safety, Err: err}
}

func (r *restoreRun) say(format string, args ...any) {
	if r.progress != nil {
		r.progress(fmt.Sprintf(format, args...))
	}
}

func (r *restoreRun) run(ctx context.Context) (*RestoreResult, error) {
	o := r.opts
	c := r.c
	if o.VMID <= 0 {
		return r.fail(ctx, "check backup", fmt.Errorf("invalid vmid %d", o.VMID))
	}
	bn, err := ParseBackupVolID(o.Backup)
	if err != nil {
		return r.fail(ctx, "check backup", err)
	}
	r.bn = bn

	// the target guest
	g, err := c.FindGuest(ctx, o.VMID)
	switch {
	case err == nil:
		r.existed = true
		r.node, r.guestType = g.Node, g.Type
		if g.Type != bn.GuestType {
			return r.fail(ctx, "check backup", fmt.Errorf("backup %s is a %s backup, but guest %d is a %s: a %s backup can only be restored onto a %s (or into a new vmid)",
				o.Backup, typeName(bn.GuestType), o.VMID, typeName(g.Type), typeName(bn.GuestType), typeName(bn.GuestType)))
		}
		if o.Node != "" && o.Node != g.Node {
			return r.fail(ctx, "check guest", fmt.Errorf("guest %d is on node %s, not on node %s: PVE cannot restore over a guest of another node", o.VMID, g.Node, o.Node))
		}
	case IsNotFound(err):
		r.guestType = bn.GuestType
	default:
		return r.fail(ctx, "check guest", err)
	}

	// the backup must exist where we restore
	if r.node == "" {
		r.node = o.Node
	}
	if r.node != "" {
		b, err := c.GetBackup(ctx, r.node, o.Backup)
		if err != nil {
			// GetBackup's not-found error already names the volid, storage and node.
			return r.fail(ctx, "check backup", err)
		}
		if err := checkBackupType(*b, bn.GuestType); err != nil {
			return r.fail(ctx, "check backup", err)
		}
	} else {
		node, err := r.findBackupNode(ctx)
		if err != nil {
			return r.fail(ctx, "check backup", err)
		}
		r.node = node
	}
	res := &RestoreResult{Node: r.node, GuestType: r.guestType, PreviousStatus: stateAbsent}

	lxcStorage := o.Storage
	if r.existed {
		st, err := c.GuestStatus(ctx, r.node, o.VMID, r.guestType)
		if err != nil {
			return r.fail(ctx, "check guest", err)
		}
		if st.Lock != "" {
			st, err = r.waitUnlocked(ctx, st)
			if err != nil {
				return r.fail(ctx, "check guest", err)
			}
		}
		res.PreviousStatus = st.Status
		cfg, err := c.guestConfig(ctx, r.node, o.VMID, r.guestType)
		if err != nil {
			return r.fail(ctx, "check guest", err)
		}
		if cfg["protection"] == "1" {
			return r.fail(ctx, "check guest", newKindError(kindProtected, nil,
				"guest %d has protection enabled, so PVE refuses to overwrite it: turn protection off first (pct/qm set %d --protection 0)", o.VMID, o.VMID))
		}
		if r.guestType == GuestTypeLXC && lxcStorage == "" {
			lxcStorage = volumeStorage(cfg["rootfs"])
		}

		// safety backup of the current state
		if o.SafetyBackup {
			target := o.SafetyBackupStorage
			if target == "" {
				target = bn.Storage
			}
			r.say("taking a safety backup of guest %d to storage %s", o.VMID, target)
			sb, err := c.CreateBackup(ctx, BackupOptions{
				VMID:          o.VMID,
				Node:          r.node,
				Storage:       target,
				Compress:      "zstd",
				NotesTemplate: "proxmoxapp safety backup before restoring " + o.Backup,
			}, r.progress)
			if err != nil {
				return r.fail(ctx, "safety backup", err)
			}
			r.safety = sb.Backup.VolID
			res.SafetyBackupVolID = sb.Backup.VolID
			r.say("safety backup: %s", sb.Backup.VolID)
		}

		// stop it
		if st.Status != "stopped" {
			if err := r.shutdown(ctx); err != nil {
				return r.fail(ctx, "shutdown", err)
			}
		}
	}

	// restore
	body := map[string]any{"vmid": o.VMID}
	var path string
	if r.guestType == GuestTypeLXC {
		if lxcStorage == "" {
			lxcStorage, err = r.containerStorage(ctx)
			if err != nil {
				return r.fail(ctx, "restore", err)
			}
		}
		path = segPath("nodes", r.node, "lxc")
		body["ostemplate"] = o.Backup
		body["restore"] = true
		body["storage"] = lxcStorage
	} else {
		path = segPath("nodes", r.node, "qemu")
		body["archive"] = o.Backup
		if o.Storage != "" {
			body["storage"] = o.Storage
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
	if err := c.post(ctx, path, body, &upid); err != nil {
		return r.fail(ctx, "restore", err)
	}
	res.UPID = upid
	if _, err := c.waitTask(ctx, upid, r.progress); err != nil {
		return r.fail(ctx, "restore", err)
	}
	res.RestoredAt = time.Now().UTC()

	// start
	start := res.PreviousStatus == "running"
	if o.Start != nil {
		start = *o.Start
	}
	if start {
		r.say("starting guest %d", o.VMID)
		if err := c.powerAction(ctx, r.node, o.VMID, r.guestType, "start", nil, r.progress); err != nil {
			// "already running" is fine
			if st, serr := c.GuestStatus(ctx, r.node, o.VMID, r.guestType); serr != nil || st.Status != "running" {
				return r.fail(ctx, "start", err)
			}
		}
		if err := c.waitStatus(ctx, r.node, o.VMID, r.guestType, "running", startConfirmTimeout); err != nil {
			return r.fail(ctx, "confirm running", err)
		}
	}
	st, err := c.GuestStatus(ctx, r.node, o.VMID, r.guestType)
	if err != nil {
		return r.fail(ctx, "confirm state", err)
	}
	res.FinalStatus = st.Status
	return res, nil
}

func typeName(t string) string {
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
		return fmt.Errorf("backup %s is a %s backup (format %s), not a %s backup", b.VolID, typeName(got), b.Format, typeName(want))
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
	return "", newKindError(kindNotFound, nil, "backup %s does not exist (no online node lists it on storage %s)", r.opts.Backup, r.bn.Storage)
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
			return st, newKindError(kindLocked, nil, "guest %d is still locked (%s) after waiting %s: another operation (backup, snapshot, migration, ...) holds it; try again when it has finished", r.opts.VMID, st.Lock, timeout)
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
		r.say("graceful shutdown did not finish (%v); stopping guest %d", firstLine(err.Error()), r.opts.VMID)
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
