package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/action/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/action"
	"github.com/hashicorp/terraform-plugin-framework/action/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

var (
	_ action.Action               = (*restoreAction)(nil)
	_ action.ActionWithConfigure  = (*restoreAction)(nil)
	_ action.ActionWithModifyPlan = (*restoreAction)(nil)
)

// NewRestoreAction is the factory of action "proxmoxapp_restore".
func NewRestoreAction() action.Action { return &restoreAction{} }

// restoreAction runs the same restore as the proxmoxapp_restore resource
// (internal/pve Client.Restore: checks, safety backup, shutdown, restore,
// start), on demand, with each step and task log line as a progress event.
type restoreAction struct {
	data *providerData
}

type restoreActionModel struct {
	VMID                types.Int64    `tfsdk:"vmid"`
	Backup              types.String   `tfsdk:"backup"`
	Node                types.String   `tfsdk:"node"`
	Storage             types.String   `tfsdk:"storage"`
	Start               types.Bool     `tfsdk:"start"`
	Unique              types.Bool     `tfsdk:"unique"`
	BandwidthLimit      types.Int64    `tfsdk:"bandwidth_limit"`
	SafetyBackup        types.Bool     `tfsdk:"safety_backup"`
	SafetyBackupStorage types.String   `tfsdk:"safety_backup_storage"`
	ShutdownTimeout     types.String   `tfsdk:"shutdown_timeout"`
	Timeouts            timeouts.Value `tfsdk:"timeouts"`
}

func (a *restoreAction) Metadata(_ context.Context, req action.MetadataRequest, resp *action.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_restore"
}

func (a *restoreAction) Configure(_ context.Context, req action.ConfigureRequest, resp *action.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &a.data)...)
}

func (a *restoreAction) Schema(ctx context.Context, _ action.SchemaRequest, resp *action.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Restores a backup onto a Proxmox VE guest, on demand: " +
			"`terraform apply -invoke=action.proxmoxapp_restore.<name>`. **Needs Terraform 1.14 or later.** It is the " +
			"same restore as the `proxmoxapp_restore` resource, without the state: it checks the backup and the guest, " +
			"takes a **safety backup** of the guest's current state (on by default), shuts the guest down (and stops it " +
			"after `shutdown_timeout`), restores with overwrite, and starts the guest again if it was running (or as " +
			"`start` says). Each step and the PVE task logs are shown as progress; the last message names the safety " +
			"backup. A failure names the step that failed, PVE's message, the state the guest was left in and the safety " +
			"backup to recover from.\n\n" +
			"Nothing is restored during `plan` or a normal `apply`: only an `-invoke` (or an `action_trigger` you write) " +
			"runs it. The safety backup is not tracked by Terraform; delete it, or let the storage's retention prune it, " +
			"once the restored app is known to be good.",
		Attributes: map[string]schema.Attribute{
			"vmid": schema.Int64Attribute{
				MarkdownDescription: "ID of the guest to restore onto (100–999999999). It may differ from the vmid the " +
					"backup was taken of; a vmid that does not exist is created.",
				Required:   true,
				Validators: vmidValidators(),
			},
			"backup": schema.StringAttribute{
				MarkdownDescription: "Volume ID of the backup to restore, e.g. `local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst` " +
					"(typically `data.proxmoxapp_backups.<name>.latest.volid` or `proxmoxapp_backup.<name>.volid`). A " +
					"container backup restores onto a container, a VM backup onto a VM. When it follows `latest` of a listing, " +
					"keep the safety backups out of that listing (`safety_backup_storage` on another storage, or the data " +
					"source's `storage` filter), or the next rollback restores the safety backup.",
				Required:   true,
				Validators: []validator.String{backupVolIDValidator{}},
			},
			"node": schema.StringAttribute{
				MarkdownDescription: "Node to restore on. Defaults to the guest's node, or for a new guest the first node " +
					"that sees the backup.",
				Optional:   true,
				Validators: nodeValidators(),
			},
			"storage": schema.StringAttribute{
				MarkdownDescription: "Target storage for the restored root filesystem / disks. Defaults to the storage of " +
					"the guest's current root filesystem (containers), the storages recorded in the backup (VMs), or for a " +
					"new container the first storage that can hold containers.",
				Optional:   true,
				Validators: storageValidators(),
			},
			"start": schema.BoolAttribute{
				MarkdownDescription: "Whether the guest runs after the restore. Defaults to its power state before the " +
					"restore (a new guest stays stopped).",
				Optional: true,
			},
			"unique": schema.BoolAttribute{
				MarkdownDescription: "Give the restored guest new unique properties (random MAC addresses). Defaults to `false`.",
				Optional:            true,
			},
			"bandwidth_limit": schema.Int64Attribute{
				MarkdownDescription: "Restore I/O bandwidth limit in KiB/s (`bwlimit`); unset means PVE's configured restore limit.",
				Optional:            true,
				Validators:          []validator.Int64{int64validator.AtLeast(0)},
			},
			"safety_backup": schema.BoolAttribute{
				MarkdownDescription: "Back up the guest's current state before overwriting it (default `true`). Not " +
					"taken for a new guest.",
				Optional: true,
			},
			"safety_backup_storage": schema.StringAttribute{
				MarkdownDescription: "Storage for the safety backup. Defaults to the storage of `backup`.",
				Optional:            true,
				Validators:          storageValidators(),
			},
			"shutdown_timeout": schema.StringAttribute{
				MarkdownDescription: "How long a running guest gets to shut down gracefully before it is stopped, as a " +
					"duration such as `90s`, `3m` or `1h` (default `" + defaultShutdownTimeout + "`).",
				Optional:   true,
				Validators: []validator.String{durationValidator{min: time.Second}},
			},
			"timeouts": timeouts.AttributesWithOpts(ctx, timeouts.Opts{
				InvokeDescription: "How long the whole restore may take, as a duration such as `30m` or `2h` (default " +
					"`2h`). A quarter of it is spent at most waiting for another operation's lock on the guest.",
			}),
		},
	}
}

// ModifyPlan refuses, when the restore is planned, what cheaply and certainly
// fails: a backup of the wrong guest type for an existing guest, or a node
// that is not the guest's. It runs only for a planned invocation, with one
// cluster lookup; anything it cannot decide is left to the invocation.
func (a *restoreAction) ModifyPlan(ctx context.Context, req action.ModifyPlanRequest, resp *action.ModifyPlanResponse) {
	if a.data == nil {
		return
	}
	var cfg restoreActionModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() || cfg.VMID.IsUnknown() || cfg.Backup.IsUnknown() || cfg.Backup.IsNull() {
		return
	}
	bn, err := pve.ParseBackupVolID(cfg.Backup.ValueString())
	if err != nil {
		return // the validator reports it
	}
	vmid := int(cfg.VMID.ValueInt64())
	g, err := a.data.client.FindGuest(ctx, vmid)
	if err != nil {
		tflog.Debug(ctx, "plan-time guest lookup skipped", map[string]any{"vmid": vmid, "error": err.Error()})
		return
	}
	if g.Type != bn.GuestType {
		resp.Diagnostics.AddAttributeError(path.Root("backup"), "Backup does not fit the guest",
			fmt.Sprintf("%s is a %s backup, but guest %d (%s on node %s) is a %s. A %s backup can only be restored "+
				"onto a %s, or into a vmid that does not exist yet. Nothing was changed.",
				cfg.Backup.ValueString(), pve.GuestTypeName(bn.GuestType), vmid, g.Name, g.Node, pve.GuestTypeName(g.Type),
				pve.GuestTypeName(bn.GuestType), pve.GuestTypeName(bn.GuestType)))
	}
	if node := cfg.Node; !node.IsUnknown() && !node.IsNull() && node.ValueString() != g.Node {
		resp.Diagnostics.AddAttributeError(path.Root("node"), "Guest is on another node",
			fmt.Sprintf("guest %d is on node %s, not on node %s: PVE can only restore over a guest on its own node. "+
				"Leave node unset or set it to %q. Nothing was changed.", vmid, g.Node, node.ValueString(), g.Node))
	}
}

func (a *restoreAction) Invoke(ctx context.Context, req action.InvokeRequest, resp *action.InvokeResponse) {
	var cfg restoreActionModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if a.data == nil {
		resp.Diagnostics.AddError("Provider not configured", "The proxmoxapp provider was not configured before the action ran; this is a provider bug.")
		return
	}
	timeout, diags := cfg.Timeouts.Invoke(ctx, defaultRestoreCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	shutdown, err := time.ParseDuration(stringOr(cfg.ShutdownTimeout, defaultShutdownTimeout))
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("shutdown_timeout"), "Invalid shutdown_timeout", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	opts := pve.RestoreOptions{
		VMID:                int(cfg.VMID.ValueInt64()),
		Node:                cfg.Node.ValueString(),
		Backup:              cfg.Backup.ValueString(),
		Storage:             cfg.Storage.ValueString(),
		Unique:              cfg.Unique.ValueBool(),
		BandwidthLimitKiB:   cfg.BandwidthLimit.ValueInt64(),
		SafetyBackup:        cfg.SafetyBackup.IsNull() || cfg.SafetyBackup.ValueBool(),
		SafetyBackupStorage: cfg.SafetyBackupStorage.ValueString(),
		ShutdownTimeout:     shutdown,
		LockWaitTimeout:     timeout / restoreLockWaitDivisor,
	}
	if !cfg.Start.IsNull() {
		start := cfg.Start.ValueBool()
		opts.Start = &start
	}

	progress := actionProgress(resp)
	progress(fmt.Sprintf("restoring %s onto guest %d", opts.Backup, opts.VMID))
	tflog.Info(ctx, "action: starting restore", map[string]any{"vmid": opts.VMID, "backup": opts.Backup, "node": opts.Node})
	res, err := a.data.client.Restore(ctx, opts, progress)
	if err != nil {
		var re *pve.RestoreError
		if errors.As(err, &re) {
			// The error names the step, PVE's message and task log tail, the
			// state the guest was left in and the safety backup.
			resp.Diagnostics.AddError(fmt.Sprintf("Restore of guest %d failed at step %q", opts.VMID, re.Step), re.Error())
			return
		}
		resp.Diagnostics.AddError("Restore failed", fmt.Sprintf("restoring %s onto guest %d: %s", opts.Backup, opts.VMID, err))
		return
	}
	tflog.Info(ctx, "action: restore finished", map[string]any{
		"vmid": opts.VMID, "node": res.Node, "upid": res.UPID, "previous_status": res.PreviousStatus,
		"final_status": res.FinalStatus, "safety_backup": res.SafetyBackupVolID,
	})
	safety := "no safety backup taken"
	if res.SafetyBackupVolID != "" {
		safety = "safety backup " + res.SafetyBackupVolID
	}
	progress(fmt.Sprintf("restore of guest %d done: %s restored on node %s, guest was %s and is %s; %s",
		opts.VMID, opts.Backup, res.Node, res.PreviousStatus, res.FinalStatus, safety))
}
