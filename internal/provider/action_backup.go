package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/action/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/action"
	"github.com/hashicorp/terraform-plugin-framework/action/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

var (
	_ action.Action               = (*backupAction)(nil)
	_ action.ActionWithConfigure  = (*backupAction)(nil)
	_ action.ActionWithModifyPlan = (*backupAction)(nil)
)

// defaultActionBackupNotes marks backups taken by the action, which no
// Terraform state tracks, so they can be told apart in PVE and in listings.
const defaultActionBackupNotes = "{{guestname}}: taken by the proxmoxapp_backup action"

// NewBackupAction is the factory of action "proxmoxapp_backup".
func NewBackupAction() action.Action { return &backupAction{} }

// backupAction takes one backup now. Unlike the resource it keeps nothing in
// state: the archive stays until pruned or deleted, and its volume ID is
// reported as the last progress message and in the log.
type backupAction struct {
	data *providerData
}

type backupActionModel struct {
	VMID           types.Int64    `tfsdk:"vmid"`
	Node           types.String   `tfsdk:"node"`
	Storage        types.String   `tfsdk:"storage"`
	Mode           types.String   `tfsdk:"mode"`
	Compress       types.String   `tfsdk:"compress"`
	Notes          types.String   `tfsdk:"notes"`
	Protected      types.Bool     `tfsdk:"protected"`
	BandwidthLimit types.Int64    `tfsdk:"bandwidth_limit"`
	ExcludePaths   types.List     `tfsdk:"exclude_paths"`
	ZstdThreads    types.Int64    `tfsdk:"zstd_threads"`
	Timeouts       timeouts.Value `tfsdk:"timeouts"`
}

func (a *backupAction) Metadata(_ context.Context, req action.MetadataRequest, resp *action.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backup"
}

func (a *backupAction) Configure(_ context.Context, req action.ConfigureRequest, resp *action.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &a.data)...)
}

func (a *backupAction) Schema(ctx context.Context, _ action.SchemaRequest, resp *action.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Takes a vzdump backup of one Proxmox VE guest now and waits for it, streaming the task's " +
			"log as progress. **Needs Terraform 1.14 or later.** Run it on demand with " +
			"`terraform apply -invoke=action.proxmoxapp_backup.<name>`, or right before another resource changes the app " +
			"with `lifecycle { action_trigger { events = [before_update] actions = [action.proxmoxapp_backup.<name>] } }`: " +
			"when the backup fails, that change is not made.\n\n" +
			"An action has no state: the backup's volume ID is the last progress message (and in the log), and the " +
			"archive is **not** deleted by Terraform. Keep such backups in check with the storage's retention " +
			"(`prune-backups`), or find them with `list \"proxmoxapp_backup\"` and the `proxmoxapp_backups` data source; " +
			"their notes say they were taken by this action unless `notes` is set. Use the `proxmoxapp_backup` " +
			"resource instead for a backup whose lifetime Terraform should manage.",
		Attributes: map[string]schema.Attribute{
			"vmid": schema.Int64Attribute{
				MarkdownDescription: "ID of the guest to back up (100–999999999).",
				Required:            true,
				Validators:          vmidValidators(),
			},
			"node": schema.StringAttribute{
				MarkdownDescription: "Node the guest runs on. Found from the cluster when omitted; when set and the guest " +
					"is elsewhere, the plan fails instead of vzdump backing up nothing.",
				Optional:   true,
				Validators: nodeValidators(),
			},
			"storage": schema.StringAttribute{
				MarkdownDescription: "Storage the archive is written to (it must allow `backup` content). When omitted, " +
					"PVE's default applies (`/etc/vzdump.conf`, else `local`).",
				Optional:   true,
				Validators: storageValidators(),
			},
			"mode": schema.StringAttribute{
				MarkdownDescription: "Backup mode: `snapshot` (default, no downtime), `suspend` or `stop` (the guest is " +
					"stopped for the backup and started again).",
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf(backupModes...)},
			},
			"compress": schema.StringAttribute{
				MarkdownDescription: "Compression: `zstd` (default), `gzip`, `lzo` or `none`.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.OneOf(compressionAlgs...)},
			},
			"notes": schema.StringAttribute{
				MarkdownDescription: "Notes shown with the backup in PVE: one line of at most 1024 characters, with " +
					"vzdump's template variables `{{cluster}}`, `{{guestname}}`, `{{node}}` and `{{vmid}}`. Defaults to `" +
					defaultActionBackupNotes + "`; `\"\"` means none.",
				Optional:   true,
				Validators: []validator.String{notesValidator{}},
			},
			"protected": schema.BoolAttribute{
				MarkdownDescription: "Protect the backup from pruning and deletion. Defaults to `false`. A protected " +
					"backup taken by the action stays until someone unprotects and deletes it.",
				Optional: true,
			},
			"bandwidth_limit": schema.Int64Attribute{
				MarkdownDescription: "I/O bandwidth limit in KiB/s (vzdump `bwlimit`); 0 or unset means unlimited.",
				Optional:            true,
				Validators:          []validator.Int64{int64validator.AtLeast(0)},
			},
			"exclude_paths": schema.ListAttribute{
				MarkdownDescription: "Paths to leave out of an LXC backup (shell globs, vzdump `exclude-path`).",
				Optional:            true,
				ElementType:         types.StringType,
				Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1))},
			},
			"zstd_threads": schema.Int64Attribute{
				MarkdownDescription: "Threads for zstd compression; 0 means half of the node's cores. PVE's default is 1.",
				Optional:            true,
				Validators:          []validator.Int64{int64validator.Between(0, 256)},
			},
			"timeouts": timeouts.AttributesWithOpts(ctx, timeouts.Opts{
				InvokeDescription: "How long the backup may take, as a duration such as `30m` or `2h` (default `2h`).",
			}),
		},
	}
}

// ModifyPlan refuses, when the backup is planned, a node the guest is not
// on: vzdump would back up nothing there. A guest that does not exist yet is
// left to the invocation, since the same apply may create it.
func (a *backupAction) ModifyPlan(ctx context.Context, req action.ModifyPlanRequest, resp *action.ModifyPlanResponse) {
	if a.data == nil {
		return
	}
	var cfg backupActionModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() || cfg.VMID.IsUnknown() || cfg.Node.IsUnknown() || cfg.Node.IsNull() {
		return
	}
	vmid := int(cfg.VMID.ValueInt64())
	g, err := a.data.client.FindGuest(ctx, vmid)
	if err != nil {
		tflog.Debug(ctx, "plan-time guest lookup skipped", map[string]any{"vmid": vmid, "error": err.Error()})
		return
	}
	if node := cfg.Node.ValueString(); node != g.Node {
		resp.Diagnostics.AddAttributeError(path.Root("node"), "Guest is on another node",
			fmt.Sprintf("guest %d is on node %s, not on node %s: vzdump only backs up guests of its own node. "+
				"Leave node unset or set it to %q.", vmid, g.Node, node, g.Node))
	}
}

func (a *backupAction) Invoke(ctx context.Context, req action.InvokeRequest, resp *action.InvokeResponse) {
	var cfg backupActionModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if a.data == nil {
		resp.Diagnostics.AddError("Provider not configured", "The proxmoxapp provider was not configured before the action ran; this is a provider bug.")
		return
	}
	timeout, diags := cfg.Timeouts.Invoke(ctx, defaultBackupCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	opts := pve.BackupOptions{
		VMID:          int(cfg.VMID.ValueInt64()),
		Node:          cfg.Node.ValueString(),
		Storage:       cfg.Storage.ValueString(),
		Mode:          stringOr(cfg.Mode, "snapshot"),
		Compress:      stringOr(cfg.Compress, "zstd"),
		NotesTemplate: defaultActionBackupNotes,
		Protected:     cfg.Protected.ValueBool(),
	}
	if !cfg.Notes.IsNull() {
		opts.NotesTemplate = cfg.Notes.ValueString() // "" means no notes
	}
	if !cfg.BandwidthLimit.IsNull() {
		opts.BandwidthLimitKiB = cfg.BandwidthLimit.ValueInt64()
	}
	if !cfg.ZstdThreads.IsNull() {
		n := cfg.ZstdThreads.ValueInt64()
		opts.ZstdThreads = &n
	}
	if !cfg.ExcludePaths.IsNull() {
		resp.Diagnostics.Append(cfg.ExcludePaths.ElementsAs(ctx, &opts.ExcludePaths, false)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}

	progress := actionProgress(resp)
	progress(fmt.Sprintf("backing up guest %d to storage %s (mode %s)", opts.VMID, storageLabel(opts.Storage), opts.Mode))
	tflog.Info(ctx, "action: starting vzdump", map[string]any{"vmid": opts.VMID, "node": opts.Node, "storage": opts.Storage})
	result, err := a.data.client.CreateBackup(ctx, opts, progress)
	var ie *pve.InterruptedError
	switch {
	case result != nil && errors.As(err, &ie):
		// the task had finished: the archive exists and is named below
		resp.Diagnostics.AddWarning("Backup interrupted after it had finished",
			fmt.Sprintf("the action was interrupted, but task %s had already written %s; it is kept.", ie.UPID, result.Backup.VolID))
	case errors.As(err, &ie):
		resp.Diagnostics.AddError("Backup interrupted", ie.Error())
		return
	case err != nil:
		resp.Diagnostics.AddError("Backup failed",
			fmt.Sprintf("vzdump of guest %d to storage %q did not produce a backup: %s", opts.VMID, storageLabel(opts.Storage), err))
		return
	}
	for _, w := range result.Warnings {
		resp.Diagnostics.AddWarning("Backup finished with warnings", fmt.Sprintf("guest %d: %s", opts.VMID, w))
	}
	b := result.Backup
	tflog.Info(ctx, "action: backup taken", map[string]any{
		"vmid": opts.VMID, "node": b.Node, "volid": b.VolID, "size": b.Size, "upid": result.UPID,
	})
	progress(fmt.Sprintf("backup of guest %d done: %s (%s, %d bytes, node %s)", opts.VMID, b.VolID, b.Format, b.Size, b.Node))
}

// actionProgress sends each line as an action progress event (Terraform
// prints it as it happens); the client has logged it already.
func actionProgress(resp *action.InvokeResponse) pve.ProgressFunc {
	return func(line string) {
		line = strings.TrimRight(line, "\r\n")
		if resp.SendProgress != nil && line != "" {
			resp.SendProgress(action.InvokeProgressEvent{Message: line})
		}
	}
}

// stringOr is the value of s, or def when s is null, unknown or empty.
func stringOr(s types.String, def string) string {
	if s.IsNull() || s.IsUnknown() || s.ValueString() == "" {
		return def
	}
	return s.ValueString()
}
