package pve

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"
)

// A restore over an existing guest leaves a mark on PVE, in the notes of its
// safety backup, so that a re-run after a failed or interrupted attempt
// knows what the first attempt knew: the guest's power state from before,
// and which archive holds its data from before. Terraform cannot carry that
// over (a failed create is planned again as a new object), and the guest,
// left stopped and perhaps half-restored, no longer tells.

const (
	safetyNotesPrefix = "proxmoxapp safety backup before restoring "
	safetyNotesDone   = "; restore ended"
)

func safetyNotes(backup, status string) string {
	return fmt.Sprintf("%s%s (guest was %s)", safetyNotesPrefix, backup, status)
}

// parseSafetyNotes returns the restored backup and the power state a
// safety backup's notes record, and whether that restore ended.
func parseSafetyNotes(notes string) (backup, status string, ended, ok bool) {
	rest, found := strings.CutPrefix(notes, safetyNotesPrefix)
	if !found {
		return "", "", false, false
	}
	rest, ended = strings.CutSuffix(rest, safetyNotesDone)
	i := strings.LastIndex(rest, " (guest was ")
	if i < 0 || !strings.HasSuffix(rest, ")") {
		return "", "", false, false
	}
	return rest[:i], strings.TrimSuffix(rest[i+len(" (guest was "):], ")"), ended, true
}

// findUnfinishedAttempt looks for the newest safety backup of this guest: if
// it was taken for this same restore and that restore never ended, the
// guest is still down from it, so its data from before is in that archive.
func (r *restoreRun) findUnfinishedAttempt(ctx context.Context, res *RestoreResult, plan *restorePlan) {
	storage := r.opts.SafetyBackupStorage
	if storage == "" {
		storage = r.bn.Storage
	}
	list, err := r.c.listContent(ctx, r.node, storage, r.opts.VMID)
	if err != nil {
		tflog.Debug(ctx, "no earlier restore attempt looked for", map[string]any{"error": err.Error()})
		return
	}
	sortBackups(list)
	for _, b := range list {
		backup, status, ended, ok := parseSafetyNotes(b.Notes)
		if !ok {
			continue
		}
		if !ended && backup == r.opts.Backup && time.Since(b.CreatedAt) < 7*24*time.Hour {
			plan.resumed, plan.resumedStatus = b.VolID, status
			res.PreviousStatus = status
			res.resumedFrom = b.VolID
			res.SafetyBackupVolID = b.VolID
			r.safety = b.VolID
			r.say("an earlier attempt of this restore left guest %d down; its safety backup %s (taken while the guest was %s) is kept",
				r.opts.VMID, b.VolID, status)
		}
		return // only the newest safety backup counts
	}
}

// markSafetyBackupDone records in the safety backup's notes that its restore
// ended (finished, or gave up before touching the guest).
func (r *restoreRun) markSafetyBackupDone(ctx context.Context) {
	if r.safety == "" {
		return
	}
	b, err := r.c.GetBackup(ctx, r.node, r.safety)
	if err == nil {
		if _, _, ended, ok := parseSafetyNotes(b.Notes); ok && !ended {
			notes := b.Notes + safetyNotesDone
			err = r.c.UpdateBackup(ctx, r.node, r.safety, &notes, nil)
		}
	}
	if err != nil {
		tflog.Warn(ctx, "could not mark the safety backup's restore as ended", map[string]any{"volid": r.safety, "error": err.Error()})
	}
}
