package provider

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// A change to any argument but notes and protected rotates the backup in
// place: the new archive is taken first and the old one deleted after, so a
// failing vzdump never leaves the user without a backup, whatever the
// lifecycle settings. (A replacement would delete first unless the user
// remembered create_before_destroy, and would leave a protected old archive
// as a deposed object that blocks every later apply.)

// privateSuperseded lists archives a rotation replaced but could not delete;
// they are retried on the next rotation and deleted with the resource.
const privateSuperseded = "superseded"

// supersededBackup is an archive a rotation replaced.
type supersededBackup struct {
	Node  string `json:"node"`
	VolID string `json:"volid"`
}

// rotates reports an argument change that needs a new archive. Right after
// an import, an argument that is null in the state was never recorded (vzdump
// does not keep mode, triggers, ...): adopting the configured value then
// keeps the imported archive. On a backup the resource created, every change
// rotates, adding an argument too (an added exclude_paths must not leave the
// excluded files in the archive).
func rotates(plan, state backupModel, imported bool) bool {
	adopted := func(s attr.Value) bool { return imported && s.IsNull() }
	changed := func(p, s attr.Value) bool { return !p.IsUnknown() && !p.Equal(s) && !adopted(s) }
	return changed(plan.VMID, state.VMID) ||
		(!plan.Node.IsUnknown() && changed(plan.Node, state.Node)) ||
		(!plan.Storage.IsUnknown() && changed(plan.Storage, state.Storage)) ||
		changed(plan.Mode, state.Mode) ||
		changed(plan.Compress, state.Compress) ||
		changed(plan.BandwidthLimit, state.BandwidthLimit) ||
		changed(plan.ExcludePaths, state.ExcludePaths) ||
		changed(plan.ZstdThreads, state.ZstdThreads) ||
		changed(plan.Triggers, state.Triggers) ||
		// a changed value that is not known yet rotates too
		(plan.Triggers.IsUnknown() && !adopted(state.Triggers))
}

// privateImported marks a backup that was imported and whose arguments have
// not been adopted from the configuration yet (the first update clears it).
const privateImported = "imported"

func isImported(ctx context.Context, p privateGetter) (bool, diag.Diagnostics) {
	if p == nil {
		return false, nil
	}
	raw, diags := p.GetKey(ctx, privateImported)
	return len(raw) > 0, diags
}

// ModifyPlan checks a backup about to be taken (plan_checks.go) and shows a
// rotation's new archive as known only after apply.
func (r *backupResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan, state backupModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if req.State.Raw.IsNull() {
		r.checkBackupPlan(ctx, req, resp, plan)
		return
	}
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	imported, d := isImported(ctx, req.Private)
	resp.Diagnostics.Append(d...)
	if resp.Diagnostics.HasError() || !rotates(plan, state, imported) {
		return // notes and protected change in place: nothing to check
	}
	r.checkBackupPlan(ctx, req, resp, plan)
	// a new archive: everything read from it is known only after apply
	for _, name := range []string{"id", "volid", "filename", "format", "guest_type", "status", "created_at", "task_id", "verification"} {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root(name), types.StringUnknown())...)
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("size"), types.Int64Unknown())...)
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("encrypted"), types.BoolUnknown())...)
	if plan.Node.Equal(state.Node) {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("node"), types.StringUnknown())...)
	}
	if plan.Storage.Equal(state.Storage) && req.Config.Raw.IsKnown() {
		var configured types.String
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("storage"), &configured)...)
		if configured.IsNull() {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("storage"), types.StringUnknown())...)
		}
	}
}

// rotate takes the new archive, records it, then deletes the old one.
func (r *backupResource) rotate(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse, plan, state backupModel) {
	timeout, diags := plan.Timeouts.Create(ctx, defaultBackupCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if plan.Node.IsUnknown() && !state.VMID.Equal(plan.VMID) {
		plan.Node = types.StringNull()
	}
	result := r.takeBackup(cctx, &plan, &resp.Diagnostics)
	if result == nil {
		return // the old archive and the state stay as they were
	}
	plan.TaskID = types.StringValue(result.UPID)
	plan.applyBackup(&result.Backup)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateNotesRendered, encodePrivateString(result.Backup.Notes))...)

	superseded, d := readSuperseded(ctx, req.Private)
	resp.Diagnostics.Append(d...)
	superseded = append(superseded, supersededBackup{Node: state.Node.ValueString(), VolID: state.ID.ValueString()})
	var left []supersededBackup
	var problems []string
	for _, old := range superseded {
		if err := r.deleteOwnedBackup(ctx, old); err != nil {
			left = append(left, old)
			problems = append(problems, fmt.Sprintf("%s: %s", old.VolID, err))
		}
	}
	if len(left) > 0 {
		resp.Diagnostics.AddWarning("Old backup not deleted yet",
			fmt.Sprintf("the new backup %s was taken, but the old one could not be deleted (%v). It stays recorded with this "+
				"resource: deleting it is retried on the next rotation and when the resource is destroyed.",
				result.Backup.VolID, problems))
	}
	raw, _ := json.Marshal(left)
	if len(left) == 0 {
		raw = nil
	}
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateSuperseded, raw)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	resp.Diagnostics.Append(setBackupIdentity(ctx, resp.Identity, &plan)...)
}

// deleteOwnedBackup deletes an archive this resource made, unprotecting it
// first: the resource owns it, and its protection guarded it while it was
// the current backup.
func (r *backupResource) deleteOwnedBackup(ctx context.Context, b supersededBackup) error {
	c := r.data.client
	cur, err := c.GetBackup(ctx, b.Node, b.VolID)
	if pve.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.Protected {
		off := false
		if err := c.UpdateBackup(ctx, cur.Node, b.VolID, nil, &off); err != nil {
			return fmt.Errorf("removing its protection: %w", err)
		}
	}
	tflog.Info(ctx, "deleting the backup a rotation replaced", map[string]any{"volid": b.VolID})
	return c.DeleteBackup(ctx, cur.Node, b.VolID, nil)
}

// deleteSuperseded deletes the archives earlier rotations left and returns
// what it could not delete.
func (r *backupResource) deleteSuperseded(ctx context.Context, list []supersededBackup) []string {
	var left []string
	for _, old := range list {
		if err := r.deleteOwnedBackup(ctx, old); err != nil {
			left = append(left, fmt.Sprintf("%s: %s", old.VolID, err))
		}
	}
	return left
}

type privateGetter interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
}

func readSuperseded(ctx context.Context, p privateGetter) ([]supersededBackup, diag.Diagnostics) {
	if p == nil {
		return nil, nil
	}
	raw, diags := p.GetKey(ctx, privateSuperseded)
	var out []supersededBackup
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			diags.AddWarning("Unreadable private state", fmt.Sprintf("the list of earlier backups to delete could not be read: %s", err))
		}
	}
	return out, diags
}
