package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// Plan-time checks: the cheap, certain questions internal/pve's preflight
// lookups answer (does the guest exist, can the storage hold backups, is the
// backup there) are asked while planning, so `terraform plan` fails instead
// of the apply. An unknown value, a node that is down or any lookup that
// fails for another reason leaves the question to the apply, quietly.

// checkBackupPlan checks a backup that is about to be taken (created, or
// rotated): the guest exists, on node when node is set, and storage exists on
// that node with backup content. Two requests per planned backup.
func (r *backupResource) checkBackupPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse, plan backupModel) {
	if r.data == nil {
		return // no client yet
	}
	// node and storage are computed, so the plan holds unknown where the
	// configuration leaves them out; the configuration says what was asked.
	var node, storage types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("node"), &node)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("storage"), &storage)...)
	if resp.Diagnostics.HasError() || plan.VMID.IsUnknown() || node.IsUnknown() {
		return
	}
	vmid := int(plan.VMID.ValueInt64())
	g, err := r.data.client.CheckGuest(ctx, vmid, node.ValueString())
	if reportPreflight(ctx, &resp.Diagnostics, err) || g == nil {
		return
	}
	if !known(storage) {
		return // PVE's default storage (or not known yet): the apply resolves it
	}
	err = r.data.client.CheckStorage(ctx, g.Node, storage.ValueString(), "backup", "storage")
	reportPreflight(ctx, &resp.Diagnostics, err)
}

// checkRestorePlan checks a restore about to run: the backup is listed on its
// storage as seen from the node the restore runs on, the target storage can
// hold the guest (rootdir for a container, images for a VM) and the safety
// backup's storage can hold backups. guest is the existing target guest (nil
// for a new one).
func (r *restoreResource) checkRestorePlan(ctx context.Context, req resource.ModifyPlanRequest, plan restoreModel, bn pve.BackupName, guest *pve.Guest, diags *diag.Diagnostics) {
	// node is computed: the configuration says whether one was asked for.
	var configNode types.String
	diags.Append(req.Config.GetAttribute(ctx, path.Root("node"), &configNode)...)
	if diags.HasError() || configNode.IsUnknown() {
		return
	}
	node := configNode.ValueString()
	if node == "" && guest != nil {
		node = guest.Node
	}
	node, _, err := r.data.client.CheckBackup(ctx, node, plan.Backup.ValueString(), "backup")
	if reportPreflight(ctx, diags, err) {
		return
	}
	if known(plan.Storage) {
		content := "rootdir"
		if bn.GuestType == pve.GuestTypeQEMU {
			content = "images"
		}
		reportPreflight(ctx, diags, r.data.client.CheckStorage(ctx, node, plan.Storage.ValueString(), content, "storage"))
	}
	if guest != nil && known(plan.SafetyBackupStorage) && !plan.SafetyBackup.IsUnknown() && plan.SafetyBackup.ValueBool() {
		reportPreflight(ctx, diags, r.data.client.CheckStorage(ctx, node, plan.SafetyBackupStorage.ValueString(), "backup", "safety_backup_storage"))
	}
}

func known(v types.String) bool { return !v.IsNull() && !v.IsUnknown() }

// reportPreflight turns a certain problem into an error on its attribute and
// logs any other failure (the apply decides those). It reports whether the
// lookup failed, so callers stop asking.
func reportPreflight(ctx context.Context, diags *diag.Diagnostics, err error) bool {
	if err == nil {
		return false
	}
	if pe := pve.AsPreflight(err); pe != nil {
		diags.AddAttributeError(path.Root(pe.Field), pe.Summary, pe.Detail)
		return true
	}
	tflog.Debug(ctx, "plan-time check skipped; the apply decides", map[string]any{"error": err.Error()})
	return true
}
