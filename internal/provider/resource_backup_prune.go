package provider

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

var (
	_ resource.Resource                   = (*backupPruneResource)(nil)
	_ resource.ResourceWithConfigure      = (*backupPruneResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*backupPruneResource)(nil)
	_ resource.ResourceWithValidateConfig = (*backupPruneResource)(nil)
)

// NewBackupPruneResource is the factory of proxmoxapp_backup_prune.
func NewBackupPruneResource() resource.Resource { return &backupPruneResource{} }

// backupPruneResource applies a retention policy. Every plan runs PVE's dry
// run and puts the exact deletion list into `deletions`; the apply deletes
// that list and nothing else.
type backupPruneResource struct {
	data *providerData
}

type backupPruneModel struct {
	retentionPolicyModel
	ID            types.String `tfsdk:"id"`
	ManagedVolIDs types.Set    `tfsdk:"managed_volids"`
	PruneManaged  types.Bool   `tfsdk:"prune_managed"`
	Deletions     types.List   `tfsdk:"deletions"`
	HeldBack      types.List   `tfsdk:"held_back"`
	PrunedAt      types.String `tfsdk:"pruned_at"`
}

func (r *backupPruneResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backup_prune"
}

func (r *backupPruneResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &r.data)...)
}

func (r *backupPruneResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	attrs := retentionResourceAttributes()
	attrs["id"] = schema.StringAttribute{MarkdownDescription: "`<node>/<storage>` with the filters.", Computed: true,
		PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}
	attrs["managed_volids"] = schema.SetAttribute{
		MarkdownDescription: "Backups that other resources manage, typically `[proxmoxapp_backup.nightly.volid, ...]`: " +
			"never deleted, even when the policy marks them `remove` (they are listed in `held_back` instead), unless " +
			"`prune_managed` is set. Deleting the archive of a `proxmoxapp_backup` behind its back would make the next " +
			"apply take that backup again.",
		Optional: true, ElementType: types.StringType,
	}
	attrs["prune_managed"] = schema.BoolAttribute{
		MarkdownDescription: "Delete backups listed in `managed_volids` too when the policy marks them `remove`. Default `false`.",
		Optional:            true, Computed: true, Default: booldefault.StaticBool(false),
	}
	attrs["deletions"] = schema.ListAttribute{
		MarkdownDescription: "In a plan: the volume IDs this apply deletes, exactly (sorted). In the state: the volume IDs " +
			"the last apply that deleted anything deleted. A plan with nothing to delete leaves it unchanged.",
		Computed: true, ElementType: types.StringType,
	}
	attrs["held_back"] = schema.ListAttribute{
		MarkdownDescription: "Backups the policy marks `remove` but that are kept because they are in `managed_volids`.",
		Computed:            true, ElementType: types.StringType,
	}
	attrs["pruned_at"] = schema.StringAttribute{
		MarkdownDescription: "When the last apply that deleted anything ran (RFC 3339, UTC).",
		Computed:            true,
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Applies a retention policy to a storage's backups, with the deletions in the plan. Every " +
			"plan runs PVE's dry run (`GET /nodes/{node}/storage/{storage}/prunebackups`) and lists in `deletions`, by " +
			"volume ID, exactly what the apply will delete. The apply runs the dry run again and deletes exactly that " +
			"list: when the backups changed since the plan so that it would delete something else, it deletes nothing " +
			"and asks for a new plan. With nothing held back it lets PVE prune (`DELETE .../prunebackups`); otherwise it " +
			"deletes the listed backups one by one.\n\n" + policyIntro + "\n\n" +
			"When an argument is not known at plan time (for example `managed_volids` from a backup created in the same " +
			"apply), the deletion list is only known at apply; the plan says so in a warning. Destroying the resource " +
			"deletes nothing.",
		Attributes: attrs,
	}
}

func (r *backupPruneResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m backupPruneModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	_, diags := m.policy()
	resp.Diagnostics.Append(diags...)
}

func (m backupPruneModel) held(ctx context.Context) (map[string]bool, bool) {
	held := map[string]bool{}
	if m.PruneManaged.ValueBool() || m.ManagedVolIDs.IsNull() {
		return held, true
	}
	if m.ManagedVolIDs.IsUnknown() {
		return nil, false
	}
	var ids []types.String
	m.ManagedVolIDs.ElementsAs(ctx, &ids, false)
	for _, v := range ids {
		if v.IsUnknown() {
			return nil, false
		}
		held[v.ValueString()] = true
	}
	return held, true
}

func stringList(v []string) types.List {
	vals := make([]string, len(v))
	copy(vals, v)
	l, _ := types.ListValueFrom(context.Background(), types.StringType, vals)
	return l
}

func listStrings(ctx context.Context, l types.List) []string {
	var out []string
	if l.IsNull() || l.IsUnknown() {
		return nil
	}
	l.ElementsAs(ctx, &out, false)
	return out
}

// ModifyPlan computes the exact deletion list with PVE's dry run.
func (r *backupPruneResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy deletes nothing
	}
	var plan backupPruneModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var state *backupPruneModel
	if !req.State.Raw.IsNull() {
		state = &backupPruneModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	unknownAll := func() {
		plan.Deletions, plan.HeldBack, plan.PrunedAt = types.ListUnknown(types.StringType), types.ListUnknown(types.StringType), types.StringUnknown()
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
	}
	held, heldKnown := plan.held(ctx)
	unknown := plan.unknownInputs()
	if !heldKnown {
		unknown = append(unknown, "managed_volids")
	}
	if plan.Node.IsUnknown() && state != nil && !state.Node.IsNull() {
		plan.Node = state.Node
	}
	if len(unknown) > 0 || r.data == nil {
		if len(unknown) > 0 {
			sort.Strings(unknown)
			resp.Diagnostics.AddWarning("Prune deletions not known until apply",
				fmt.Sprintf("%s not known yet, so the deletion list is computed at apply time from PVE's dry run then. "+
					"To see it in the plan, apply the resources it depends on first (or run the prune in a later apply).",
					strings.Join(unknown, ", ")))
		}
		unknownAll()
		return
	}
	c := r.data.client
	node := plan.Node.ValueString()
	if plan.Node.IsUnknown() || plan.Node.IsNull() {
		n, err := c.PruneNode(ctx, "", plan.Storage.ValueString(), int(plan.VMID.ValueInt64()))
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("node"), "Could not pick a node for the prune", err.Error())
			return
		}
		node = n
		plan.Node = types.StringValue(n)
	}
	opts, diags := plan.pruneOptions(node)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	entries, err := c.PruneDryRun(ctx, opts)
	if err != nil {
		resp.Diagnostics.AddError("Prune dry run failed", dryRunErrorDetail(err))
		return
	}
	deletions, heldBack := pve.PruneDeletions(entries, held)
	plan.ID = types.StringValue(retentionID(node, opts))
	plan.HeldBack = stringList(heldBack)
	switch {
	case len(deletions) > 0:
		plan.Deletions = stringList(deletions)
		plan.PrunedAt = types.StringUnknown()
	case state != nil:
		plan.Deletions, plan.PrunedAt = state.Deletions, state.PrunedAt
	default:
		plan.Deletions, plan.PrunedAt = stringList(nil), types.StringNull()
	}
	tflog.Info(ctx, "prune plan", map[string]any{"storage": opts.Storage, "policy": opts.Policy.String(),
		"deletions": deletions, "held_back": heldBack})
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *backupPruneResource) apply(ctx context.Context, plan *backupPruneModel, state *backupPruneModel) (diags []string) {
	c := r.data.client
	node := plan.Node.ValueString()
	if plan.Node.IsUnknown() || plan.Node.IsNull() {
		n, err := c.PruneNode(ctx, "", plan.Storage.ValueString(), int(plan.VMID.ValueInt64()))
		if err != nil {
			return []string{err.Error()}
		}
		node = n
	}
	plan.Node = types.StringValue(node)
	opts, d := plan.pruneOptions(node)
	if d.HasError() {
		return []string{"invalid policy"}
	}
	held, _ := plan.held(ctx)
	plan.ID = types.StringValue(retentionID(node, opts))
	// The plan marks an apply that deletes with an unknown pruned_at; an
	// unknown deletion list means the plan could not run the dry run.
	var planned []string
	run := plan.PrunedAt.IsUnknown()
	if plan.Deletions.IsUnknown() {
		entries, err := c.PruneDryRun(ctx, opts)
		if err != nil {
			return []string{err.Error()}
		}
		var heldBack []string
		planned, heldBack = pve.PruneDeletions(entries, held)
		plan.HeldBack = stringList(heldBack)
		run = len(planned) > 0
	} else {
		planned = listStrings(ctx, plan.Deletions)
	}
	if plan.HeldBack.IsUnknown() {
		plan.HeldBack = stringList(nil)
	}
	switch {
	case run && len(planned) > 0:
		tflog.Info(ctx, "pruning", map[string]any{"storage": opts.Storage, "deletions": planned})
		deleted, err := c.PruneExactly(ctx, opts, planned, held, nil)
		if err != nil {
			return []string{err.Error()}
		}
		plan.Deletions = stringList(deleted)
		plan.PrunedAt = types.StringValue(time.Now().UTC().Format(time.RFC3339))
	case state != nil && (plan.Deletions.IsUnknown() || plan.PrunedAt.IsUnknown()):
		plan.Deletions, plan.PrunedAt = state.Deletions, state.PrunedAt
	case plan.Deletions.IsUnknown() || plan.PrunedAt.IsUnknown():
		plan.Deletions, plan.PrunedAt = stringList(nil), types.StringNull()
	}
	return nil
}

func (r *backupPruneResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan backupPruneModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	for _, e := range r.apply(ctx, &plan, nil) {
		resp.Diagnostics.AddError("Prune failed", e)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *backupPruneResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state backupPruneModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	for _, e := range r.apply(ctx, &plan, &state) {
		resp.Diagnostics.AddError("Prune failed", e)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read keeps the state: what the next apply deletes is worked out in the plan.
func (r *backupPruneResource) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {}

// Delete deletes no backup: it only stops applying the policy.
func (r *backupPruneResource) Delete(ctx context.Context, _ resource.DeleteRequest, _ *resource.DeleteResponse) {
	tflog.Info(ctx, "removing the prune policy from the state; no backup is deleted")
}
