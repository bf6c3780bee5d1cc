package pve

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"
)

const defaultCleanupTimeout = 2 * time.Minute

// CreateBackup runs vzdump for one guest on its node, waits for the task and
// returns the archive it wrote.
//
// Every archive it starts is accounted for. When the wait ends before the
// task does (ctx cancelled or timed out, the node unreachable for longer
// than the transient grace), the task is stopped on the node and whatever it
// wrote is removed; if it finished first, its archive is returned together
// with an *InterruptedError. A result with a nil error may still carry
// Unconfirmed = true: the task succeeded and logged its archive, but the
// storage could not be listed afterwards.
func (c *Client) CreateBackup(ctx context.Context, opts BackupOptions, progress ProgressFunc) (*BackupResult, error) {
	job, err := c.prepareBackup(ctx, opts)
	if err != nil {
		return nil, err
	}
	upid, err := job.start(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.waitTask(ctx, upid.Raw, progress)
	var we *WaitError
	if errors.As(err, &we) {
		return job.settleInterrupted(ctx, upid, we)
	}
	if err != nil {
		return nil, job.errorf("%w", err)
	}
	return job.findArchive(ctx, res)
}

// backupJob is one vzdump run of one guest.
type backupJob struct {
	c         *Client
	vmid      int
	guestType string
	node      string
	storage   string // "" = PVE's default, read back from the task log
	body      map[string]any
}

func (j *backupJob) errorf(format string, args ...any) error {
	where := j.storage
	if where == "" {
		where = "the default storage"
	}
	return fmt.Errorf("backup of guest %d (%s) on node %s to %s: %w", j.vmid, j.guestType, j.node, where, fmt.Errorf(format, args...))
}

// prepareBackup finds the guest's node and builds the vzdump request.
func (c *Client) prepareBackup(ctx context.Context, opts BackupOptions) (*backupJob, error) {
	if opts.VMID <= 0 {
		return nil, fmt.Errorf("backup: invalid vmid %d", opts.VMID)
	}
	g, err := c.locateGuest(ctx, opts.VMID)
	if err != nil {
		return nil, fmt.Errorf("backup of guest %d: %w", opts.VMID, err)
	}
	node := opts.Node
	if node == "" {
		node = g.Node
	} else if node != g.Node {
		return nil, fmt.Errorf("backup of guest %d: the guest is on node %s, not on node %s (vzdump only backs up guests of its own node)", opts.VMID, g.Node, node)
	}
	j := &backupJob{c: c, vmid: opts.VMID, guestType: g.Type, node: node, storage: opts.Storage}
	if j.storage == "" && (opts.NotesTemplate != "" || opts.Protected) {
		// notes-template and protected require storage on PVE's side: name the
		// default one explicitly
		if j.storage, err = c.defaultBackupStorage(ctx, node); err != nil {
			return nil, fmt.Errorf("backup of guest %d: notes and protected need a storage, and the default one could not be read: %w", opts.VMID, err)
		}
	}
	if j.body, err = vzdumpBody(opts, j.storage, g.Type); err != nil {
		return nil, fmt.Errorf("backup of guest %d: %w", opts.VMID, err)
	}
	return j, nil
}

// vzdumpBody is the POST /nodes/{node}/vzdump body for one guest.
func vzdumpBody(opts BackupOptions, storage, guestType string) (map[string]any, error) {
	body := map[string]any{"vmid": strconv.Itoa(opts.VMID)}
	if storage != "" {
		body["storage"] = storage
	}
	if opts.Mode != "" {
		body["mode"] = opts.Mode
	}
	switch opts.Compress {
	case "":
	case "none", "0":
		body["compress"] = "0"
	case "zstd", "gzip", "lzo":
		body["compress"] = opts.Compress
	default:
		return nil, fmt.Errorf("unknown compression %q (expected zstd, gzip, lzo or none)", opts.Compress)
	}
	if opts.NotesTemplate != "" {
		body["notes-template"] = opts.NotesTemplate
	}
	if opts.Protected {
		body["protected"] = true
	}
	if opts.BandwidthLimitKiB > 0 {
		body["bwlimit"] = opts.BandwidthLimitKiB
	}
	if len(opts.ExcludePaths) > 0 {
		body["exclude-path"] = opts.ExcludePaths
	}
	if opts.ZstdThreads != nil {
		body["zstd"] = *opts.ZstdThreads
	}
	if opts.FleecingStorage != "" {
		if guestType != GuestTypeQEMU {
			return nil, fmt.Errorf("fleecing is only available for VMs, and guest %d is a container", opts.VMID)
		}
		body["fleecing"] = "enabled=1,storage=" + opts.FleecingStorage
	}
	if opts.PBSChangeDetectionMode != "" {
		body["pbs-change-detection-mode"] = opts.PBSChangeDetectionMode
	}
	return body, nil
}

// start posts vzdump once. It is never repeated: a POST that fails may
// still have started a task.
func (j *backupJob) start(ctx context.Context) (UPID, error) {
	tflog.Info(ctx, "starting vzdump", map[string]any{"vmid": j.vmid, "node": j.node, "storage": storageOrDefault(j.storage)})
	var answer string
	if err := j.c.post(ctx, segPath("nodes", j.node, "vzdump"), j.body, &answer); err != nil {
		return UPID{}, fmt.Errorf("backup of guest %d on node %s: %w", j.vmid, j.node, err)
	}
	upid, err := ParseUPID(answer)
	if err != nil {
		return UPID{}, fmt.Errorf("backup of guest %d on node %s: PVE answered %q instead of a task id: the guest is not on node %s (vzdump silently skips guests of other nodes); it may have been migrated", j.vmid, j.node, answer, j.node)
	}
	return upid, nil
}

func storageOrDefault(s string) string {
	if s == "" {
		return "(PVE default)"
	}
	return s
}

// archiveStorage is the storage the task wrote to: the one asked for, else
// the one vzdump logged, else the node's default.
func (j *backupJob) archiveStorage(ctx context.Context, lines []string) (string, error) {
	if j.storage != "" {
		return j.storage, nil
	}
	for _, l := range lines {
		if m := reLogStorage.FindStringSubmatch(l); m != nil && strings.Contains(l, "starting new backup job") {
			return m[1], nil
		}
	}
	return j.c.defaultBackupStorage(ctx, j.node)
}

// loggedVolID is the archive the task log names, "" when it names none.
func loggedVolID(storage string, lines []string) string {
	for _, l := range lines {
		if v, ok := archiveVolID(storage, l); ok {
			return v
		}
	}
	return ""
}

// findArchive finds the archive a successful task wrote. When the storage
// cannot be listed, the archive the log names is returned unconfirmed
// rather than lost.
func (j *backupJob) findArchive(ctx context.Context, res *taskResult) (*BackupResult, error) {
	upid := res.UPID.Raw
	storage, err := j.archiveStorage(ctx, res.Lines)
	if err != nil {
		return nil, j.errorf("the task %s succeeded, but its storage could not be found: %w", upid, err)
	}
	j.storage = storage
	volid := loggedVolID(storage, res.Lines)
	list, err := j.c.listContent(ctx, j.node, storage, j.vmid)
	if err != nil {
		if b, ok := backupFromVolID(volid, j.node); ok {
			tflog.Warn(ctx, "the backup's storage could not be listed; recording the archive the task logged", map[string]any{"volid": volid, "error": err.Error()})
			return &BackupResult{Backup: b, UPID: upid, Warnings: res.Warnings, Unconfirmed: err}, nil
		}
		return nil, j.errorf("the task %s succeeded, but: %w", upid, err)
	}
	if found := pickArchive(list, volid, res.UPID.StartTime); found != nil {
		return &BackupResult{Backup: *found, UPID: upid, Warnings: res.Warnings}, nil
	}
	if volid != "" {
		return nil, j.errorf("the task %s succeeded and logged the archive %s, but storage %s does not list it", upid, volid, storage)
	}
	return nil, j.errorf("the task %s succeeded, but no new archive of the guest is listed on storage %s", upid, storage)
}

// pickArchive is the listed archive the log names, else the newest one of
// the guest created since the task started.
func pickArchive(list []Backup, volid string, started time.Time) *Backup {
	for i := range list {
		if list[i].VolID == volid {
			return &list[i]
		}
	}
	if volid != "" {
		return nil
	}
	sortBackups(list)
	for i := range list {
		if !list[i].CreatedAt.Before(started.Add(-time.Second)) {
			return &list[i]
		}
	}
	return nil
}

// backupFromVolID is what a volid alone says about a backup.
func backupFromVolID(volid, node string) (Backup, bool) {
	bn, err := ParseBackupVolID(volid)
	if err != nil {
		return Backup{}, false
	}
	_, volname, _ := ParseVolID(volid)
	return Backup{VolID: volid, Node: node, Storage: bn.Storage, VMID: bn.VMID, GuestType: bn.GuestType,
		Filename: strings.TrimPrefix(volname, "backup/"), Format: bn.Format, CreatedAt: bn.CreatedAt}, true
}

// InterruptedError is a backup whose wait was cut short (Ctrl-C, a timeout,
// the node unreachable). It says what became of the task and its archive.
type InterruptedError struct {
	VMID     int
	UPID     string
	Node     string
	Outcome  string // what happened to the task and its archive, in words
	Leftover string // a volid that may still be written and is not recorded ("" when none)
	Err      error  // why the wait ended
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("the backup of guest %d was interrupted (%v): %s", e.VMID, e.Err, e.Outcome)
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// settleInterrupted accounts for a task whose wait was cut short: it stops
// the task on the node and removes what it wrote, or returns the archive if
// the task finished first. It works on a context of its own, since ctx is
// usually the reason the wait ended.
func (j *backupJob) settleInterrupted(ctx context.Context, upid UPID, we *WaitError) (*BackupResult, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.c.cleanupTimeout)
	defer cancel()
	ie := &InterruptedError{VMID: j.vmid, UPID: upid.Raw, Node: upid.Node, Err: we.Err}

	tflog.Warn(ctx, "backup interrupted; stopping its task", map[string]any{"upid": upid.Raw, "vmid": j.vmid, "error": we.Err.Error()})
	res, err := j.c.stopTask(cctx, upid)
	var te *TaskError
	switch {
	case err == nil:
		// the task had finished before the stop reached it: keep its archive
		found, ferr := j.findArchive(cctx, res)
		if ferr != nil {
			ie.Outcome = fmt.Sprintf("task %s finished, but its archive could not be found: %v", upid.Raw, ferr)
			return nil, ie
		}
		ie.Outcome = fmt.Sprintf("task %s had already finished, so its archive %s is kept and recorded", upid.Raw, found.Backup.VolID)
		return found, ie
	case errors.As(err, &te):
		ie.Outcome = fmt.Sprintf("task %s was stopped on node %s", upid.Raw, upid.Node)
		ie.Outcome += j.removePartial(cctx, append(we.Lines, te.LogTail...))
		return nil, ie
	default:
		storage := storageOrDefault(j.storage)
		ie.Leftover = loggedVolID(j.storage, we.Lines)
		ie.Outcome = fmt.Sprintf("task %s could not be stopped (%v); it may still finish and write an archive of guest %d "+
			"on storage %s that Terraform does not track: look for it in the node's task list or with the "+
			"proxmoxapp_backups data source, then delete it or import it into a proxmoxapp_backup", upid.Raw, err, j.vmid, storage)
		if ie.Leftover != "" {
			ie.Outcome += fmt.Sprintf(" (its archive is %s)", ie.Leftover)
		}
		return nil, ie
	}
}

// removePartial deletes an archive a stopped task left behind (vzdump
// removes its temporary file itself; a stop between the rename and the end
// of the task can leave a complete one). It says what it did.
func (j *backupJob) removePartial(ctx context.Context, lines []string) string {
	storage, err := j.archiveStorage(ctx, lines)
	if err != nil {
		return fmt.Sprintf("; whether it left an archive could not be checked: %v", err)
	}
	volid := loggedVolID(storage, lines)
	if volid == "" {
		return "; it had not started an archive"
	}
	b, err := j.c.GetBackup(ctx, j.node, volid)
	if IsNotFound(err) {
		return fmt.Sprintf("; it wrote no archive (%s does not exist)", volid)
	}
	if err != nil {
		return fmt.Sprintf("; whether it left %s could not be checked: %v", volid, err)
	}
	if b.Protected {
		if err := j.c.UpdateBackup(ctx, j.node, volid, nil, ptr(false)); err != nil {
			return fmt.Sprintf("; it left %s, which could not be unprotected and is still there: %v", volid, err)
		}
	}
	if err := j.c.DeleteBackup(ctx, j.node, volid, nil); err != nil {
		return fmt.Sprintf("; it left %s, which could not be removed: %v", volid, err)
	}
	return fmt.Sprintf("; the archive it had written, %s, was removed", volid)
}

func ptr[T any](v T) *T { return &v }
