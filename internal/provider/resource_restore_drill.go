package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/float64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

var (
	_ resource.Resource               = (*restoreDrillResource)(nil)
	_ resource.ResourceWithConfigure  = (*restoreDrillResource)(nil)
	_ resource.ResourceWithModifyPlan = (*restoreDrillResource)(nil)
)

const (
	defaultDrillCreateTimeout = time.Hour
	defaultDrillSettle        = "30s"
	defaultDrillStartTimeout  = "5m"
	// drillCleanupGrace is added to the create timeout for the leftover
	// deadline written into the scratch guest: the drill's own clean-up
	// may run that long after the timeout.
	drillCleanupGrace = 10 * time.Minute
	drillPassed       = "passed"
	drillFailed       = "failed"
)

// NewRestoreDrillResource is the factory of proxmoxapp_restore_drill.
func NewRestoreDrillResource() resource.Resource { return &restoreDrillResource{} }

// restoreDrillResource is action-style like proxmoxapp_restore: creating it
// runs one drill and records the result; triggers (or a new backup) run it
// again. The scratch guest never outlives the apply.
type restoreDrillResource struct {
	data *providerData
}

type restoreDrillModel struct {
	ID              types.String   `tfsdk:"id"`
	Backup          types.String   `tfsdk:"backup"`
	Node            types.String   `tfsdk:"node"`
	VMID            types.Int64    `tfsdk:"vmid"`
	Storage         types.String   `tfsdk:"storage"`
	ConnectNetwork  types.Bool     `tfsdk:"connect_network"`
	Settle          types.String   `tfsdk:"settle"`
	StartTimeout    types.String   `tfsdk:"start_timeout"`
	FailOnError     types.Bool     `tfsdk:"fail_on_error"`
	Triggers        types.Map      `tfsdk:"triggers"`
	Outcome         types.String   `tfsdk:"outcome"`
	FailedStep      types.String   `tfsdk:"failed_step"`
	FailureReason   types.String   `tfsdk:"failure_reason"`
	RestoreSeconds  types.Float64  `tfsdk:"restore_seconds"`
	RecoverySeconds types.Float64  `tfsdk:"recovery_seconds"`
	RestoredBytes   types.Int64    `tfsdk:"restored_bytes"`
	RanAt           types.String   `tfsdk:"ran_at"`
	TaskID          types.String   `tfsdk:"task_id"`
	Timeouts        timeouts.Value `tfsdk:"timeouts"`
}

func (r *restoreDrillResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_restore_drill"
}

func (r *restoreDrillResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &r.data)...)
}

// Schema is declarative, one entry per attribute with its documentation, so
// it is as long as the resource has arguments.
func (r *restoreDrillResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	const again = "Changing it runs the drill again."
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Proves a backup by restoring it: a **restore drill**. Creating the resource restores the backup " +
			"into a scratch guest (never the original: a vmid that does not exist, with new MAC addresses and, unless " +
			"`connect_network` is set, every network interface's link down), starts it, checks that it is running and " +
			"stays running for `settle`, and then destroys the scratch guest with its disks, whatever happened. The " +
			"result is recorded: `outcome` (`passed` or `failed`, with `failed_step` and `failure_reason`), the restore " +
			"time, the **recovery time** (`recovery_seconds`: from the start of the restore until the guest runs), the " +
			"restored size and the scratch vmid.\n\n" +
			"A failed drill is a result, not a failed apply, unless `fail_on_error` is set. Changing `backup` or " +
			"`triggers` runs the drill again (for example `triggers = { backup = data.proxmoxapp_backups.app.latest.volid }` " +
			"drills every new backup).\n\n" +
			"The scratch guest is tagged `" + pve.DrillTag + "` and its description says until when it may exist. If an " +
			"apply is killed before the drill could destroy it, the next drill destroys it once that deadline has passed " +
			"(at once when `vmid` is set and the leftover sits on it); a guest without that tag and description is never " +
			"touched. Destroying the resource only removes it from the state (and destroys its scratch guest if one was " +
			"left behind).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "Identifier of the drill run: `<node>/<vmid>/<ran_at>`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"backup": schema.StringAttribute{
				MarkdownDescription: "Volume ID of the backup to drill, e.g. `data.proxmoxapp_backups.app.latest.volid` or " +
					"`proxmoxapp_backup.nightly.volid`. " + again,
				Required:      true,
				Validators:    []validator.String{backupVolIDValidator{}},
				PlanModifiers: replace,
			},
			"node": schema.StringAttribute{
				MarkdownDescription: "Node to restore on. Defaults to a node that sees the backup. " + again,
				Optional:            true,
				Computed:            true,
				Validators:          nodeValidators(),
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplaceIfConfigured(),
					stringplanmodifier.UseStateForUnknown()},
			},
			"vmid": schema.Int64Attribute{
				MarkdownDescription: "vmid of the scratch guest. It must not exist and must not be the vmid the backup was " +
					"taken of (both are refused at plan time when they can be checked, and again before the restore). " +
					"Defaults to the next free vmid (`/cluster/nextid`); the vmid used is recorded here. " + again,
				Optional:   true,
				Computed:   true,
				Validators: vmidValidators(),
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplaceIfConfigured(),
					int64planmodifier.UseStateForUnknown()},
			},
			"storage": schema.StringAttribute{
				MarkdownDescription: "Storage for the scratch guest's disks. Defaults to the node's first active storage " +
					"for container root filesystems (containers) or the storages recorded in the backup (VMs). " + again,
				Optional:      true,
				Validators:    storageValidators(),
				PlanModifiers: replace,
			},
			"connect_network": schema.BoolAttribute{
				MarkdownDescription: "Restore the network interfaces connected. By default (`false`) every interface of the " +
					"scratch guest has `link_down=1`, so it cannot take the live app's addresses. " + again,
				Optional:      true,
				Computed:      true,
				Default:       booldefault.StaticBool(false),
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.RequiresReplace()},
			},
			"settle": schema.StringAttribute{
				MarkdownDescription: "How long the scratch guest must stay running after it started, as a duration " +
					"(default `30s`; `0s`: running once is enough). " + again,
				Optional:      true,
				Computed:      true,
				Default:       stringdefault.StaticString(defaultDrillSettle),
				Validators:    []validator.String{durationValidator{min: 0}},
				PlanModifiers: replace,
			},
			"start_timeout": schema.StringAttribute{
				MarkdownDescription: "How long the scratch guest may take from the start request until it runs " +
					"(default `5m`). " + again,
				Optional:      true,
				Computed:      true,
				Default:       stringdefault.StaticString(defaultDrillStartTimeout),
				Validators:    []validator.String{durationValidator{min: time.Second}},
				PlanModifiers: replace,
			},
			"fail_on_error": schema.BoolAttribute{
				MarkdownDescription: "Make a failed drill fail the apply (the resource is then tainted, so the next apply " +
					"drills again). Default `false`: a failed drill is recorded in `outcome` and reported as a warning. " +
					"Changing it does not run the drill again.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"triggers": schema.MapAttribute{
				MarkdownDescription: "Arbitrary values that, when changed, run the drill again, e.g. " +
					"`{ backup = data.proxmoxapp_backups.app.latest.volid }` or `{ night = var.run_date }`.",
				Optional:      true,
				ElementType:   types.StringType,
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"outcome": schema.StringAttribute{
				MarkdownDescription: "`passed` or `failed`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"failed_step": schema.StringAttribute{
				MarkdownDescription: "Where a failed drill failed: `check backup`, `restore`, `start` or `settle`; null when it passed.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"failure_reason": schema.StringAttribute{
				MarkdownDescription: "Why a failed drill failed: PVE's message and the task log tail; null when it passed.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"restore_seconds": schema.Float64Attribute{
				MarkdownDescription: "How long the restore took, in seconds; null when it did not finish.",
				Computed:            true,
				PlanModifiers:       []planmodifier.Float64{float64planmodifier.UseStateForUnknown()},
			},
			"recovery_seconds": schema.Float64Attribute{
				MarkdownDescription: "The measured recovery time: seconds from the start of the restore until the scratch " +
					"guest was running; null when it never ran.",
				Computed:      true,
				PlanModifiers: []planmodifier.Float64{float64planmodifier.UseStateForUnknown()},
			},
			"restored_bytes": schema.Int64Attribute{
				MarkdownDescription: "Bytes restored, as the restore task reports them (or the guest's disk usage); null " +
					"when the restore did not finish.",
				Computed:      true,
				PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
			},
			"ran_at": schema.StringAttribute{
				MarkdownDescription: "When the drill started (RFC 3339, UTC).",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"task_id": schema.StringAttribute{
				MarkdownDescription: "UPID of the restore task; null when the restore was not started.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true}),
		},
	}
}

// ModifyPlan refuses, at plan time, a scratch vmid that is the backup's own
// guest or that exists (and is not a leftover drill guest the drill removes).
func (r *restoreDrillResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || (!req.State.Raw.IsNull() && len(resp.RequiresReplace) == 0) {
		return
	}
	var plan restoreDrillModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || plan.VMID.IsUnknown() || plan.VMID.IsNull() || plan.Backup.IsUnknown() {
		return
	}
	vmid := int(plan.VMID.ValueInt64())
	if bn, err := pve.ParseBackupVolID(plan.Backup.ValueString()); err == nil && bn.VMID == vmid {
		resp.Diagnostics.AddAttributeError(path.Root("vmid"), "Scratch vmid is the original guest",
			fmt.Sprintf("vmid %d is the guest %s was taken of. A drill never restores over the original: choose a "+
				"vmid that does not exist, or leave vmid unset to take the next free one.", vmid, plan.Backup.ValueString()))
		return
	}
	if r.data == nil {
		return
	}
	g, scratch, err := r.data.client.IsDrillScratch(ctx, vmid)
	if err != nil {
		tflog.Debug(ctx, "plan-time scratch vmid check skipped", map[string]any{"vmid": vmid, "error": err.Error()})
		return
	}
	if !scratch {
		resp.Diagnostics.AddAttributeError(path.Root("vmid"), "Scratch vmid exists",
			fmt.Sprintf("guest %d already exists (%s on node %s, %s). A drill restores only into a vmid that does not "+
				"exist: choose a free vmid, or leave vmid unset to take the next free one.", vmid, g.Type, g.Node, g.Status))
	}
}

func parseDrillDurations(plan restoreDrillModel) (settle, start time.Duration, diags []string) {
	settle, err := time.ParseDuration(plan.Settle.ValueString())
	if err != nil {
		diags = append(diags, "settle: "+err.Error())
	}
	start, err = time.ParseDuration(plan.StartTimeout.ValueString())
	if err != nil {
		diags = append(diags, "start_timeout: "+err.Error())
	}
	return settle, start, diags
}

func (r *restoreDrillResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan restoreDrillModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultDrillCreateTimeout)
	resp.Diagnostics.Append(diags...)
	settle, start, bad := parseDrillDurations(plan)
	for _, b := range bad {
		resp.Diagnostics.AddError("Invalid duration", b)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := pve.DrillOptions{
		Backup:         plan.Backup.ValueString(),
		Node:           plan.Node.ValueString(),
		VMID:           int(plan.VMID.ValueInt64()),
		Storage:        plan.Storage.ValueString(),
		ConnectNetwork: plan.ConnectNetwork.ValueBool(),
		Settle:         settle,
		StartTimeout:   start,
		Deadline:       time.Now().Add(timeout + drillCleanupGrace),
	}
	tflog.Info(ctx, "starting restore drill", map[string]any{"backup": opts.Backup, "vmid": opts.VMID, "node": opts.Node})
	res, err := r.data.client.Drill(ctx, opts, nil)
	var cleanupErr *pve.DrillCleanupError
	switch {
	case err == nil:
	case pve.IsDrillRefused(err):
		resp.Diagnostics.AddAttributeError(path.Root("vmid"), "Restore drill refused", err.Error())
		return
	case errors.As(err, &cleanupErr):
		if res != nil && res.VMID == cleanupErr.VMID {
			// Keep the result: the resource is tainted, and its destroy (on
			// the next apply's replacement) removes the scratch guest.
			r.setResult(&plan, res)
			resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		}
		resp.Diagnostics.AddError("Restore drill left its scratch guest behind", err.Error())
		return
	case pve.IsForbidden(err):
		resp.Diagnostics.AddError("Restore drill not permitted", err.Error())
		return
	default:
		why := err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			why = fmt.Sprintf("the create timeout (%s) ran out; raise timeouts.create", timeout)
		}
		resp.Diagnostics.AddError("Restore drill interrupted",
			fmt.Sprintf("the drill of %s did not finish: %s. Its scratch guest, if one was created, has been destroyed.", opts.Backup, why))
		return
	}
	r.setResult(&plan, res)
	tflog.Info(ctx, "restore drill finished", map[string]any{"outcome": plan.Outcome.ValueString(), "vmid": res.VMID,
		"recovery_seconds": res.TimeToRunning.Seconds(), "leftovers_removed": res.LeftoversRemoved})
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	if !res.Passed {
		summary := fmt.Sprintf("Restore drill of %s failed at step %q", opts.Backup, res.FailedStep)
		detail := res.Reason + fmt.Sprintf("\n\nThe scratch guest %d has been destroyed.", res.VMID)
		if res.VMID == 0 {
			detail = res.Reason
		}
		if plan.FailOnError.ValueBool() {
			resp.Diagnostics.AddError(summary, detail)
		} else {
			resp.Diagnostics.AddWarning(summary, detail+"\n\nSet fail_on_error = true to make a failed drill fail the apply.")
		}
	}
}

func (r *restoreDrillResource) setResult(plan *restoreDrillModel, res *pve.DrillResult) {
	plan.ID = types.StringValue(fmt.Sprintf("%s/%d/%s", res.Node, res.VMID, res.StartedAt.Format(time.RFC3339)))
	// A drill that failed before it picked a node or vmid keeps what was
	// configured (null when nothing was).
	if res.Node != "" {
		plan.Node = types.StringValue(res.Node)
	} else if plan.Node.IsUnknown() {
		plan.Node = types.StringNull()
	}
	if res.VMID > 0 {
		plan.VMID = types.Int64Value(int64(res.VMID))
	} else if plan.VMID.IsUnknown() {
		plan.VMID = types.Int64Null()
	}
	plan.RanAt = types.StringValue(res.StartedAt.Format(time.RFC3339))
	plan.Outcome = types.StringValue(drillPassed)
	plan.FailedStep, plan.FailureReason = types.StringNull(), types.StringNull()
	if !res.Passed {
		plan.Outcome = types.StringValue(drillFailed)
		plan.FailedStep, plan.FailureReason = types.StringValue(res.FailedStep), types.StringValue(res.Reason)
	}
	plan.RestoreSeconds, plan.RecoverySeconds, plan.RestoredBytes = types.Float64Null(), types.Float64Null(), types.Int64Null()
	if res.RestoreDuration > 0 {
		plan.RestoreSeconds = types.Float64Value(roundSeconds(res.RestoreDuration))
		plan.RestoredBytes = types.Int64Value(res.RestoredBytes)
	}
	if res.TimeToRunning > 0 {
		plan.RecoverySeconds = types.Float64Value(roundSeconds(res.TimeToRunning))
	}
	plan.TaskID = types.StringNull()
	if res.TaskID != "" {
		plan.TaskID = types.StringValue(res.TaskID)
	}
}

// roundSeconds keeps milliseconds.
func roundSeconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond).Milliseconds()) / 1000
}

// Read keeps the recorded drill: it is a past event.
func (r *restoreDrillResource) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {}

// Update only stores fail_on_error and timeouts; the results stay.
func (r *restoreDrillResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state restoreDrillModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	state.FailOnError, state.Timeouts = plan.FailOnError, plan.Timeouts
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Delete forgets the drill. A scratch guest still on the recorded vmid (a
// drill whose clean-up failed) is destroyed, but only if it carries the
// drill's tag and marker.
func (r *restoreDrillResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state restoreDrillModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || state.VMID.IsNull() || state.VMID.ValueInt64() == 0 || state.TaskID.IsNull() {
		return
	}
	vmid := int(state.VMID.ValueInt64())
	_, scratch, err := r.data.client.IsDrillScratch(ctx, vmid)
	switch {
	case pve.IsNotFound(err):
		return
	case err != nil:
		resp.Diagnostics.AddError("Could not check the drill's scratch guest", fmt.Sprintf("guest %d: %s", vmid, err))
		return
	case !scratch:
		tflog.Info(ctx, "vmid of the drill is now another guest; left alone", map[string]any{"vmid": vmid})
		return
	}
	if err := r.data.client.DestroyDrillScratch(ctx, vmid, nil); err != nil {
		resp.Diagnostics.AddError("Could not destroy the drill's scratch guest", fmt.Sprintf("guest %d: %s", vmid, err))
	}
}
