package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

var (
	_ resource.Resource               = (*restoreResource)(nil)
	_ resource.ResourceWithConfigure  = (*restoreResource)(nil)
	_ resource.ResourceWithModifyPlan = (*restoreResource)(nil)
)

const (
	defaultRestoreCreateTimeout = 2 * time.Hour
	defaultShutdownTimeout      = "3m"
	// A restore waits for someone else's lock (a running backup, a snapshot)
	// to go for the create timeout divided by restoreLockWaitDivisor.
	restoreLockWaitDivisor = 4
)

// NewRestoreResource is the factory of proxmoxapp_restore.
func NewRestoreResource() resource.Resource { return &restoreResource{} }

// restoreResource is action-style: creating it restores a backup onto a
// guest, and that is all it does. Only a triggers change requires
// replacement, which runs the restore again. Every other change (backup,
// node, storage, timeouts, ...) is an Update that only records the new values
// (the plan warns about it). Read never re-runs or forgets the restore, and
// Delete only removes it from the state: the guest and its restored data are
// left as they are.
type restoreResource struct {
	data *providerData
}

type restoreModel struct {
	ID                  types.String   `tfsdk:"id"`
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
	Triggers            types.Map      `tfsdk:"triggers"`
	TaskID              types.String   `tfsdk:"task_id"`
	RestoredAt          types.String   `tfsdk:"restored_at"`
	PreviousStatus      types.String   `tfsdk:"previous_status"`
	SafetyBackupVolID   types.String   `tfsdk:"safety_backup_volid"`
	Timeouts            timeouts.Value `tfsdk:"timeouts"`
}

func (r *restoreResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_restore"
}

func (r *restoreResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &r.data)...)
}

// Schema is declarative, one entry per attribute with its documentation, so
// it is as long as the resource has arguments.
func (r *restoreResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	// Only triggers re-run a restore. A backup argument that follows
	// data.proxmoxapp_backups.x.latest.volid changes whenever a new backup is
	// taken; re-running on that would overwrite the guest without anyone
	// asking, so such changes are only recorded.
	const again = "Changing it later is recorded without restoring again; change `triggers` to restore again."
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}

	resp.Schema = schema.Schema{
		MarkdownDescription: "Restores a backup onto a Proxmox VE guest. This is an action: creating the resource runs " +
			"the restore once, and it runs again only when `triggers` change. Changes to any other argument are recorded " +
			"in place without restoring (so `backup = data.proxmoxapp_backups.x.latest.volid` does not roll the guest " +
			"back whenever a new backup appears); the plan warns about them.\n\n" +
			"Over an existing guest it first takes a **safety backup** of the guest's current state (on by default; " +
			"its volume ID is exported as `safety_backup_volid`), shuts the guest down (and stops it after " +
			"`shutdown_timeout`), restores with overwrite, and starts the guest again if it was running (or as `start` " +
			"says). A guest locked by another operation is waited for during a quarter of the create timeout, then " +
			"refused; a guest with protection enabled is refused. Restoring into a vmid that does not exist creates the " +
			"guest. Everything that can be checked without touching the guest (the backup, the guest's lock and " +
			"protection, the target and safety-backup storages) is checked before the safety backup. A run that " +
			"ends before the restore task (an error, or Ctrl-C) starts the guest again and removes its own safety " +
			"backup; once the restore task runs, Ctrl-C no longer abandons it. PVE may remove the old guest when an " +
			"overwrite fails, so a failed restore reports the step that failed, PVE's message, the state the guest " +
			"was left in and the safety backup to recover from, and stays in the state as tainted with that safety " +
			"backup: the next apply restores again, brings the guest to the power state it had before the first " +
			"attempt, and keeps recording that safety backup.\n\n" +
			"Reading the resource never re-runs or forgets the restore, even when the guest has vanished since. " +
			"**Destroying the resource only removes it from the Terraform state**: the guest and its restored data are " +
			"not touched.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "Identifier of the restore run: the UPID of its restore task (same as `task_id`).",
				Computed:            true,
				PlanModifiers:       keep,
			},
			"vmid": schema.Int64Attribute{
				MarkdownDescription: "ID of the guest to restore onto (100–999999999). It may differ from the vmid the " +
					"backup was taken of; a vmid that does not exist is created. " + again,
				Required:   true,
				Validators: vmidValidators(),
			},
			"backup": schema.StringAttribute{
				MarkdownDescription: "Volume ID of the backup to restore, e.g. `local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst` " +
					"or `pbs:backup/ct/100/2025-10-04T12:00:00Z` (typically `data.proxmoxapp_backups.<name>.latest.volid` or " +
					"`proxmoxapp_backup.<name>.volid`). A container backup restores onto a container, a VM backup onto a VM. " +
					"When it follows `latest` of a listing, keep the safety backups out of that listing (`safety_backup_storage` " +
					"on another storage, or the data source's `storage` filter): otherwise the safety backup becomes the next " +
					"`latest`. " + again,
				Required:   true,
				Validators: []validator.String{backupVolIDValidator{}},
			},
			"node": schema.StringAttribute{
				MarkdownDescription: "Node to restore on. Defaults to the guest's node, or for a new guest the first node " +
					"that sees the backup (the state then holds the node used). " + again,
				Optional:      true,
				Computed:      true,
				Validators:    nodeValidators(),
				PlanModifiers: keep,
			},
			"storage": schema.StringAttribute{
				MarkdownDescription: "Target storage for the restored root filesystem / disks. A container needs a storage " +
					"with `rootdir` content. Defaults to the storage of the guest's current root filesystem (containers), " +
					"the storages recorded in the backup (VMs), or for a new container the first storage that can hold " +
					"containers. " + again,
				Optional:   true,
				Validators: storageValidators(),
			},
			"start": schema.BoolAttribute{
				MarkdownDescription: "Whether the guest runs after the restore. Defaults to its power state before the " +
					"restore (a new guest stays stopped). " + again,
				Optional: true,
			},
			"unique": schema.BoolAttribute{
				MarkdownDescription: "Give the restored guest new unique properties (random MAC addresses), e.g. when " +
					"restoring a copy next to the original. Defaults to `false`. " + again,
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"bandwidth_limit": schema.Int64Attribute{
				MarkdownDescription: "Restore I/O bandwidth limit in KiB/s (`bwlimit`); unset means PVE's configured " +
					"restore limit. " + again,
				Optional:   true,
				Validators: []validator.Int64{int64validator.AtLeast(0)},
			},
			"safety_backup": schema.BoolAttribute{
				MarkdownDescription: "Back up the guest's current state before overwriting it (default `true`). Its " +
					"volume ID is exported as `safety_backup_volid`; restore it from there if the restore fails or was a " +
					"mistake. Not taken for a new guest. " + again,
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"safety_backup_storage": schema.StringAttribute{
				MarkdownDescription: "Storage for the safety backup. Defaults to the storage of `backup`. " + again,
				Optional:            true,
				Validators:          storageValidators(),
			},
			"shutdown_timeout": schema.StringAttribute{
				MarkdownDescription: "How long a running guest gets to shut down gracefully before it is stopped, as a " +
					"duration such as `90s`, `3m` or `1h` (default `3m`). " + again,
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(defaultShutdownTimeout),
				Validators: []validator.String{durationValidator{min: time.Second}},
			},
			"triggers": schema.MapAttribute{
				MarkdownDescription: "Arbitrary values that, when changed, run the restore again, e.g. " +
					"`{ run = var.rollback_id }`.",
				Optional:      true,
				ElementType:   types.StringType,
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"task_id": schema.StringAttribute{
				MarkdownDescription: "UPID of the restore task (`vzrestore` or `qmrestore`).",
				Computed:            true,
				PlanModifiers:       keep,
			},
			"restored_at": schema.StringAttribute{
				MarkdownDescription: "When the restore task finished (RFC 3339, UTC); null for a run that failed.",
				Computed:            true,
				PlanModifiers:       keep,
			},
			"previous_status": schema.StringAttribute{
				MarkdownDescription: "The guest's power state before the restore: `running`, `stopped`, or `absent` " +
					"when the restore created it.",
				Computed:      true,
				PlanModifiers: keep,
			},
			"safety_backup_volid": schema.StringAttribute{
				MarkdownDescription: "Volume ID of the safety backup taken before the restore; null when none was taken " +
					"(`safety_backup = false`, or a new guest).",
				Computed:      true,
				PlanModifiers: keep,
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true}),
		},
	}
}

// ModifyPlan runs the plan-time checks of a restore about to run, and warns
// about changes that an existing restore only records.
//
// A restore about to run (a new resource, or a triggers change, which
// Terraform plans again as a create) is refused at plan time when the answer
// is cheap and certain: a backup of the wrong guest type for an existing
// guest, a node that is not the guest's, a backup its storage does not list
// as seen from the restore's node, a target storage that cannot hold the
// guest, a safety-backup storage that cannot hold backups. Anything it cannot
// decide (unknown values, a node that is down) is left to the apply.
func (r *restoreResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	if !req.State.Raw.IsNull() {
		warnRecordedWithoutRestore(ctx, req, resp)
		return
	}
	if r.data == nil {
		return // no client yet
	}
	var plan restoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || plan.VMID.IsUnknown() || plan.Backup.IsUnknown() {
		return
	}
	bn, err := pve.ParseBackupVolID(plan.Backup.ValueString())
	if err != nil {
		return // the validator reports it
	}
	vmid := int(plan.VMID.ValueInt64())
	g, err := r.data.client.FindGuest(ctx, vmid)
	switch {
	case pve.IsNotFound(err):
		g = nil // the restore creates the guest
	case err != nil:
		tflog.Debug(ctx, "plan-time guest lookup skipped", map[string]any{"vmid": vmid, "error": err.Error()})
		return
	}
	if g != nil && g.Type != bn.GuestType {
		who := fmt.Sprintf("on node %s", g.Node)
		if g.Name != "" {
			who = g.Name + " " + who
		}
		resp.Diagnostics.AddAttributeError(path.Root("backup"), "Backup does not fit the guest",
			fmt.Sprintf("%s is a %s backup, but guest %d (%s) is a %s. A %s backup can only be restored "+
				"onto a %s, or into a vmid that does not exist yet.",
				plan.Backup.ValueString(), pve.GuestTypeName(bn.GuestType), vmid, who, pve.GuestTypeName(g.Type),
				pve.GuestTypeName(bn.GuestType), pve.GuestTypeName(bn.GuestType)))
	}
	if node := plan.Node; g != nil && !node.IsUnknown() && !node.IsNull() && node.ValueString() != g.Node {
		resp.Diagnostics.AddAttributeError(path.Root("node"), "Guest is on another node",
			fmt.Sprintf("guest %d is on node %s, not on node %s: PVE can only restore over a guest on its own node. "+
				"Leave node unset or set it to %q.", vmid, g.Node, node.ValueString(), g.Node))
	}
	if resp.Diagnostics.HasError() {
		return
	}
	r.checkRestorePlan(ctx, req, plan, bn, g, &resp.Diagnostics)
}

// restoreResults are the attributes a restore run sets; they are never
// "changed" by a plan.
var restoreResults = map[string]bool{
	"id": true, "task_id": true, "restored_at": true, "previous_status": true, "safety_backup_volid": true,
}

// warnRecordedWithoutRestore tells the user, at plan time, that changed
// arguments of an existing restore do not restore again unless triggers
// change. It compares every argument of the schema, so an argument added
// later is listed too.
func warnRecordedWithoutRestore(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	var plan, state map[string]tftypes.Value
	if err := req.Plan.Raw.As(&plan); err != nil {
		resp.Diagnostics.AddError("Unexpected plan", err.Error())
		return
	}
	if err := req.State.Raw.As(&state); err != nil {
		resp.Diagnostics.AddError("Unexpected state", err.Error())
		return
	}
	if !plan["triggers"].Equal(state["triggers"]) {
		return // a triggers change replaces the resource: a new restore, as asked
	}
	var names []string
	for name, v := range plan {
		if restoreResults[name] || v.Equal(state[name]) {
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	var vmid types.Int64
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("vmid"), &vmid)...)
	resp.Diagnostics.AddWarning("This change does not restore again",
		fmt.Sprintf("Changed: %s. The restore already ran, so the new values are only recorded and guest %s is "+
			"not touched. To restore again, change triggers.", strings.Join(names, ", "), vmid.String()))
}

// restoreOptions maps the model's arguments to a restore run; timeout is the
// create timeout, a part of which may go to waiting for someone else's lock.
func (m *restoreModel) restoreOptions(timeout time.Duration) (pve.RestoreOptions, error) {
	shutdown, err := time.ParseDuration(m.ShutdownTimeout.ValueString())
	if err != nil {
		return pve.RestoreOptions{}, err
	}
	opts := pve.RestoreOptions{
		VMID:                int(m.VMID.ValueInt64()),
		Node:                m.Node.ValueString(), // "" while unknown: the guest's node
		Backup:              m.Backup.ValueString(),
		Storage:             m.Storage.ValueString(),
		Unique:              m.Unique.ValueBool(),
		BandwidthLimitKiB:   m.BandwidthLimit.ValueInt64(),
		SafetyBackup:        m.SafetyBackup.ValueBool(),
		SafetyBackupStorage: m.SafetyBackupStorage.ValueString(),
		ShutdownTimeout:     shutdown,
		LockWaitTimeout:     timeout / restoreLockWaitDivisor,
	}
	if !m.Start.IsNull() && !m.Start.IsUnknown() {
		start := m.Start.ValueBool()
		opts.Start = &start
	}
	return opts, nil
}

func (r *restoreResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan restoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultRestoreCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	opts, err := plan.restoreOptions(timeout)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("shutdown_timeout"), "Invalid shutdown_timeout", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	tflog.Info(ctx, "starting restore", map[string]any{"vmid": opts.VMID, "backup": opts.Backup, "node": opts.Node})
	res, err := r.data.client.Restore(ctx, opts, nil)
	if err != nil {
		var re *pve.RestoreError
		if errors.As(err, &re) {
			summary := fmt.Sprintf("Restore of guest %d failed at step %q", opts.VMID, re.Step)
			// The error names the step, PVE's message and task log tail, the
			// state the guest was left in and the safety backup.
			resp.Diagnostics.AddError(summary, re.Error())
			if re.SafetyBackupVolID != "" {
				// Keep the safety backup recorded: Terraform stores this
				// failed run as tainted, and the next apply runs it again.
				plan.ID = types.StringValue("unfinished:" + re.SafetyBackupVolID)
				plan.TaskID = types.StringValue("")
				plan.Node = types.StringValue(re.Node)
				plan.RestoredAt = types.StringNull()
				plan.PreviousStatus = types.StringValue(re.PreviousStatus)
				plan.SafetyBackupVolID = types.StringValue(re.SafetyBackupVolID)
				resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
			}
			return
		}
		resp.Diagnostics.AddError("Restore failed",
			fmt.Sprintf("restoring %s onto guest %d: %s", opts.Backup, opts.VMID, err))
		return
	}

	plan.ID = types.StringValue(res.UPID)
	plan.TaskID = types.StringValue(res.UPID)
	plan.Node = types.StringValue(res.Node)
	restoredAt := res.RestoredAt
	if restoredAt.IsZero() {
		restoredAt = time.Now()
	}
	plan.RestoredAt = types.StringValue(restoredAt.UTC().Format(time.RFC3339))
	plan.PreviousStatus = types.StringValue(res.PreviousStatus)
	plan.SafetyBackupVolID = types.StringNull()
	if res.SafetyBackupVolID != "" {
		plan.SafetyBackupVolID = types.StringValue(res.SafetyBackupVolID)
	}
	tflog.Info(ctx, "restore finished", map[string]any{
		"vmid": opts.VMID, "node": res.Node, "upid": res.UPID, "previous_status": res.PreviousStatus,
		"final_status": res.FinalStatus, "safety_backup": res.SafetyBackupVolID,
	})
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read keeps the state as it is: a restore is a past event, and dropping it
// from the state would make the next apply restore again without being asked.
// A vanished target guest is only logged.
func (r *restoreResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state restoreModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || r.data == nil {
		return
	}
	vmid := int(state.VMID.ValueInt64())
	if _, err := r.data.client.FindGuest(ctx, vmid); err != nil {
		if pve.IsNotFound(err) {
			tflog.Warn(ctx, "the restored guest no longer exists; keeping the restore in state (it is not re-run)",
				map[string]any{"vmid": vmid, "task_id": state.TaskID.ValueString()})
		} else {
			tflog.Warn(ctx, "could not look up the restored guest; keeping the restore in state",
				map[string]any{"vmid": vmid, "error": err.Error()})
		}
	}
	// Nothing to refresh: state stays exactly as the restore left it.
}

// Update records changed arguments without restoring again (only triggers
// re-run a restore; ModifyPlan warns about the rest). It stores the new
// arguments as planned, node included, so the state matches the plan, and
// keeps the results of the run that happened: task, time, previous status and
// safety backup.
func (r *restoreResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state restoreModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	plan.ID = state.ID
	plan.TaskID = state.TaskID
	if plan.Node.IsUnknown() {
		plan.Node = state.Node // node removed from the configuration: keep where it ran
	}
	plan.RestoredAt = state.RestoredAt
	plan.PreviousStatus = state.PreviousStatus
	plan.SafetyBackupVolID = state.SafetyBackupVolID
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete only forgets the restore: the guest and the data restored onto it
// stay as they are. Undoing a restore means restoring another backup (such
// as safety_backup_volid).
func (r *restoreResource) Delete(ctx context.Context, req resource.DeleteRequest, _ *resource.DeleteResponse) {
	var state restoreModel
	if diags := req.State.Get(ctx, &state); !diags.HasError() {
		tflog.Info(ctx, "forgetting the restore; the guest is left as it is",
			map[string]any{"vmid": state.VMID.ValueInt64(), "task_id": state.TaskID.ValueString()})
	}
}
