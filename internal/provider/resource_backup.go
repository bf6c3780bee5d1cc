package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

var (
	_ resource.Resource                = (*backupResource)(nil)
	_ resource.ResourceWithConfigure   = (*backupResource)(nil)
	_ resource.ResourceWithImportState = (*backupResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*backupResource)(nil)
)

const (
	defaultBackupCreateTimeout = 2 * time.Hour
	defaultBackupDeleteTimeout = 10 * time.Minute

	// privateNotesRendered keeps the notes as PVE rendered them, so a notes
	// template such as "{{guestname}}" is not reported as drift on every plan.
	privateNotesRendered = "notes_rendered"
)

var (
	backupModes     = []string{"snapshot", "suspend", "stop"}
	compressionAlgs = []string{"zstd", "gzip", "lzo", "none"}
)

// NewBackupResource is the factory of proxmoxapp_backup.
func NewBackupResource() resource.Resource { return &backupResource{} }

type backupResource struct {
	data *providerData
}

func (r *backupResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backup"
	// a rotation writes a new archive: its identity (the volid) changes
	resp.ResourceBehavior.MutableIdentity = true
}

func (r *backupResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &r.data)...)
}

// Schema is declarative, one entry per attribute with its documentation, so
// it is as long as the resource has arguments.
func (r *backupResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keepString := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	keepInt := []planmodifier.Int64{int64planmodifier.UseStateForUnknown()}

	resp.Schema = schema.Schema{
		MarkdownDescription: "A vzdump backup of one Proxmox VE guest (LXC container or QEMU VM). Creating it runs " +
			"vzdump and waits for the task; destroying it deletes the archive. `notes` and `protected` change in " +
			"place. Any other argument change **rotates** the backup in one in-place update: the new archive is " +
			"taken first, and only then is the old one deleted (unprotected first when it is protected, since the " +
			"resource owns it), so a failed new backup never leaves you without the old one.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The backup's volume ID (same as `volid`).",
				Computed:            true,
				PlanModifiers:       keepString,
			},
			"vmid": schema.Int64Attribute{
				MarkdownDescription: "ID of the guest to back up (100–999999999). Changing it rotates the backup (new archive first, then the old one is deleted).",
				Required:            true,
				Validators:          vmidValidators(),
			},
			"node": schema.StringAttribute{
				MarkdownDescription: "Node the guest runs on. Found from the cluster when omitted. Changing it rotates the backup (new archive first, then the old one is deleted).",
				Optional:            true,
				Computed:            true,
				Validators:          nodeValidators(),
				PlanModifiers:       keepString,
			},
			"storage": schema.StringAttribute{
				MarkdownDescription: "Storage the archive is written to (it must allow `backup` content). When omitted, " +
					"PVE's default applies (`/etc/vzdump.conf`, else `local`) and the storage used is reported. " +
					"Changing it rotates the backup (new archive first, then the old one is deleted).",
				Optional:      true,
				Computed:      true,
				Validators:    storageValidators(),
				PlanModifiers: keepString,
			},
			"mode": schema.StringAttribute{
				MarkdownDescription: "Backup mode: `snapshot` (default, no downtime), `suspend` or `stop` (the guest is " +
					"stopped for the backup and started again). A stopped guest is always backed up in stop mode. " +
					"Changing it rotates the backup (new archive first, then the old one is deleted).",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString("snapshot"),
				Validators: []validator.String{stringvalidator.OneOf(backupModes...)},
				// an imported backup whose configuration leaves mode unset keeps it unset
				PlanModifiers: []planmodifier.String{modeStaysNullAfterImport{}},
			},
			"compress": schema.StringAttribute{
				MarkdownDescription: "Compression: `zstd` (default), `gzip`, `lzo` or `none`. Note that PVE's API " +
					"itself defaults to no compression. Ignored by Proxmox Backup Server storages. Changing it rotates the backup (new archive first, then the old one is deleted).",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString("zstd"),
				Validators: []validator.String{stringvalidator.OneOf(compressionAlgs...)},
			},
			"notes": schema.StringAttribute{
				MarkdownDescription: "Notes shown with the backup in PVE. One line of at most 1024 bytes (UTF-8; a non-ASCII character counts 2–4); a line " +
					"break is written `\\n`. May use vzdump's template variables `{{cluster}}`, `{{guestname}}`, " +
					"`{{node}}` and `{{vmid}}`, which PVE fills in; the template stays in state, so it causes no diff. " +
					"Changes in place: PVE stores edited notes verbatim, so the provider fills the variables in itself " +
					"(`{{cluster}}` needs `Sys.Audit` on `/`; a variable it cannot read is kept as written).",
				Optional:   true,
				Validators: []validator.String{notesValidator{}},
			},
			"protected": schema.BoolAttribute{
				MarkdownDescription: "Protect the backup from pruning and deletion. Defaults to `false`. Changes in " +
					"place. A protected backup cannot be destroyed: set it to `false` and apply first.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"bandwidth_limit": schema.Int64Attribute{
				MarkdownDescription: "I/O bandwidth limit in KiB/s (vzdump `bwlimit`); 0 or unset means unlimited. " +
					"Changing it rotates the backup (new archive first, then the old one is deleted).",
				Optional:   true,
				Validators: []validator.Int64{int64validator.AtLeast(0)},
			},
			"exclude_paths": schema.ListAttribute{
				MarkdownDescription: "Paths to leave out of an LXC backup (shell globs, vzdump `exclude-path`). " +
					"Changing it rotates the backup (new archive first, then the old one is deleted).",
				Optional:    true,
				ElementType: types.StringType,
				Validators:  []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1))},
			},
			"zstd_threads": schema.Int64Attribute{
				MarkdownDescription: "Threads for zstd compression; 0 means half of the node's cores. PVE's default is 1. " +
					"Changing it rotates the backup (new archive first, then the old one is deleted).",
				Optional:   true,
				Validators: []validator.Int64{int64validator.Between(0, 256)},
			},
			"triggers": schema.MapAttribute{
				MarkdownDescription: "Arbitrary values that, when changed, take a new backup and then delete the old one, " +
					"e.g. `{ app_version = var.app_version }`. The new archive exists before the old one is deleted, " +
					"also when the old one is protected; no `create_before_destroy` is needed.",
				Optional:    true,
				ElementType: types.StringType,
			},
			"volid": schema.StringAttribute{
				MarkdownDescription: "Volume ID of the archive, e.g. `local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst`.",
				Computed:            true,
				PlanModifiers:       keepString,
			},
			"filename": schema.StringAttribute{
				MarkdownDescription: "Archive name on the storage (the volume ID without `<storage>:backup/`).",
				Computed:            true,
				PlanModifiers:       keepString,
			},
			"format": schema.StringAttribute{
				MarkdownDescription: "Archive format as PVE lists it: `tar.zst`, `tar.gz`, `vma.zst`, `pbs-ct`, ...",
				Computed:            true,
				PlanModifiers:       keepString,
			},
			"guest_type": schema.StringAttribute{
				MarkdownDescription: "`lxc` or `qemu`.",
				Computed:            true,
				PlanModifiers:       keepString,
			},
			"size": schema.Int64Attribute{
				MarkdownDescription: "Archive size in bytes, as the storage reports it.",
				Computed:            true,
				PlanModifiers:       keepInt,
			},
			"status": schema.StringAttribute{
				MarkdownDescription: "`available` while the storage lists the archive; on Proxmox Backup Server " +
					"`verified` or `verification_failed` once verified.",
				Computed:      true,
				PlanModifiers: keepString,
			},
			"created_at": schema.StringAttribute{
				MarkdownDescription: "When the backup was taken (RFC 3339).",
				Computed:            true,
				PlanModifiers:       keepString,
			},
			"task_id": schema.StringAttribute{
				MarkdownDescription: "UPID of the vzdump task that wrote the archive (empty after import).",
				Computed:            true,
				PlanModifiers:       keepString,
			},
			"verification": schema.StringAttribute{
				MarkdownDescription: "Proxmox Backup Server verification state (`ok`, `failed`), empty when not verified.",
				Computed:            true,
				PlanModifiers:       keepString,
			},
			"encrypted": schema.BoolAttribute{
				MarkdownDescription: "Whether the backup is encrypted (Proxmox Backup Server client-side encryption).",
				Computed:            true,
				// Fixed when the archive is written: an in-place edit keeps it.
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Delete: true}),
		},
	}
}

type backupModel struct {
	ID             types.String   `tfsdk:"id"`
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
	Triggers       types.Map      `tfsdk:"triggers"`
	VolID          types.String   `tfsdk:"volid"`
	Filename       types.String   `tfsdk:"filename"`
	Format         types.String   `tfsdk:"format"`
	GuestType      types.String   `tfsdk:"guest_type"`
	Size           types.Int64    `tfsdk:"size"`
	Status         types.String   `tfsdk:"status"`
	CreatedAt      types.String   `tfsdk:"created_at"`
	TaskID         types.String   `tfsdk:"task_id"`
	Verification   types.String   `tfsdk:"verification"`
	Encrypted      types.Bool     `tfsdk:"encrypted"`
	Timeouts       timeouts.Value `tfsdk:"timeouts"`
}

func (r *backupResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan backupModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultBackupCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	result := r.takeBackup(ctx, &plan, &resp.Diagnostics)
	if result == nil {
		return
	}
	plan.TaskID = types.StringValue(result.UPID)
	plan.applyBackup(&result.Backup)
	if plan.Notes.IsNull() && result.Backup.Notes != "" {
		// Should not happen (no template sent), but never hide what PVE holds.
		plan.Notes = types.StringValue(result.Backup.Notes)
	}
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateNotesRendered, encodePrivateString(result.Backup.Notes))...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	resp.Diagnostics.Append(setBackupIdentity(ctx, resp.Identity, &plan)...)
}

// backupOptions maps the model's arguments to a vzdump run.
func (m *backupModel) backupOptions(ctx context.Context) (pve.BackupOptions, diag.Diagnostics) {
	opts := pve.BackupOptions{
		VMID:          int(m.VMID.ValueInt64()),
		Node:          m.Node.ValueString(), // "" while unknown: the guest's node
		Storage:       m.Storage.ValueString(),
		Mode:          m.Mode.ValueString(),
		Compress:      m.Compress.ValueString(),
		NotesTemplate: m.Notes.ValueString(),
		Protected:     m.Protected.ValueBool(),
	}
	if !m.BandwidthLimit.IsNull() {
		opts.BandwidthLimitKiB = m.BandwidthLimit.ValueInt64()
	}
	if !m.ZstdThreads.IsNull() {
		n := m.ZstdThreads.ValueInt64()
		opts.ZstdThreads = &n
	}
	var diags diag.Diagnostics
	if !m.ExcludePaths.IsNull() {
		diags.Append(m.ExcludePaths.ElementsAs(ctx, &opts.ExcludePaths, false)...)
	}
	return opts, diags
}

// takeBackup runs vzdump for the planned arguments. It returns the archive to
// record, or nil after adding an error. An interrupted run whose task had
// already finished still returns its archive (with a warning): it exists, so
// it must be in the state.
func (r *backupResource) takeBackup(ctx context.Context, plan *backupModel, diags *diag.Diagnostics) *pve.BackupResult {
	opts, d := plan.backupOptions(ctx)
	diags.Append(d...)
	if diags.HasError() {
		return nil
	}
	result, err := r.data.client.CreateBackup(ctx, opts, nil)
	var ie *pve.InterruptedError
	switch {
	case result != nil && errors.As(err, &ie):
		diags.AddWarning("Backup interrupted after it had finished",
			fmt.Sprintf("%s. The archive is recorded in the state like any other.", ie.Error()))
	case errors.As(err, &ie):
		diags.AddError("Backup interrupted", ie.Error())
		return nil
	case err != nil:
		diags.AddError("Backup failed",
			fmt.Sprintf("vzdump of guest %d to storage %q did not produce a backup: %s", opts.VMID, storageLabel(opts.Storage), err))
		return nil
	}
	tflog.Info(ctx, "vzdump finished", map[string]any{"vmid": opts.VMID, "node": result.Backup.Node,
		"storage": result.Backup.Storage, "volid": result.Backup.VolID, "upid": result.UPID})
	for _, w := range result.Warnings {
		diags.AddWarning("Backup finished with warnings", fmt.Sprintf("guest %d: %s", opts.VMID, w))
	}
	if result.Unconfirmed != nil {
		diags.AddWarning("Backup taken, but not read back",
			fmt.Sprintf("task %s wrote %s, but the storage could not be listed afterwards (%s). The archive is recorded "+
				"from the task log; its size and details are read on the next refresh.", result.UPID, result.Backup.VolID, result.Unconfirmed))
	}
	return result
}

func (r *backupResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state backupModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// a listing of the storage shared by all refreshes of this run
	b, err := r.data.client.RefreshBackup(ctx, state.Node.ValueString(), state.ID.ValueString())
	if pve.IsNotFound(err) {
		tflog.Warn(ctx, "backup no longer on the storage; removing it from state", map[string]any{"volid": state.ID.ValueString()})
		resp.Diagnostics.AddWarning("Backup removed outside Terraform",
			fmt.Sprintf("%s is no longer on storage %q; the next apply takes a new backup.", state.ID.ValueString(), state.Storage.ValueString()))
		// The framework wants an identity even for a removed resource when
		// Terraform (< 1.12) sent none.
		resp.Diagnostics.Append(setBackupIdentity(ctx, resp.Identity, &state)...)
		resp.State.RemoveResource(ctx)
		return
	}
	if pve.IsForbidden(err) {
		// Hidden is not deleted: keep it in the state.
		resp.Diagnostics.AddError("Backup not visible to these credentials",
			fmt.Sprintf("%s. It stays in the state; grant the privileges (or use credentials that have them) and refresh again.", err))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to read backup", fmt.Sprintf("reading %s: %s", state.ID.ValueString(), err))
		return
	}

	rendered, diags := req.Private.GetKey(ctx, privateNotesRendered)
	resp.Diagnostics.Append(diags...)
	if b.Notes != pve.FirstLine(decodePrivateString(rendered)) || (state.Notes.IsNull() && b.Notes != "") {
		// Someone changed the notes outside Terraform: show PVE's value.
		if b.Notes == "" {
			state.Notes = types.StringNull()
		} else {
			state.Notes = types.StringValue(b.Notes)
		}
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateNotesRendered, encodePrivateString(b.Notes))...)
	}
	state.applyBackup(b)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
	resp.Diagnostics.Append(setBackupIdentity(ctx, resp.Identity, &state)...)
}

func (r *backupResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state backupModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	imported, d := isImported(ctx, req.Private)
	resp.Diagnostics.Append(d...)
	// the configuration's values are adopted (or rotated) now
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateImported, nil)...)
	if rotates(plan, state, imported) {
		r.rotate(ctx, req, resp, plan, state)
		return
	}
	node, volid := state.Node.ValueString(), state.ID.ValueString()

	var notes *string
	var rendered string
	if !plan.Notes.Equal(state.Notes) {
		rendered = expandNotes(plan.Notes.ValueString(), r.notesVariables(ctx, state))
		notes = &rendered
	}
	var protected *bool
	if !plan.Protected.Equal(state.Protected) {
		p := plan.Protected.ValueBool()
		protected = &p
	}
	if notes != nil || protected != nil {
		if err := r.data.client.UpdateBackup(ctx, node, volid, notes, protected); err != nil {
			resp.Diagnostics.AddError("Unable to update backup", fmt.Sprintf("updating %s: %s", volid, err))
			return
		}
	}
	b, err := r.data.client.GetBackup(ctx, node, volid)
	if err != nil {
		resp.Diagnostics.AddError("Unable to read backup after update", fmt.Sprintf("reading %s: %s", volid, err))
		return
	}
	if notes != nil {
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateNotesRendered, encodePrivateString(b.Notes))...)
	}
	plan.TaskID = state.TaskID
	plan.applyBackup(b)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	resp.Diagnostics.Append(setBackupIdentity(ctx, resp.Identity, &plan)...)
}

func (r *backupResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state backupModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultBackupDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// archives an earlier rotation could not delete go with this one
	superseded, d := readSuperseded(ctx, req.Private)
	resp.Diagnostics.Append(d...)
	if left := r.deleteSuperseded(ctx, superseded); len(left) > 0 {
		resp.Diagnostics.AddError("Unable to delete an earlier backup",
			fmt.Sprintf("earlier backups of this resource could not be deleted: %s", strings.Join(left, "; ")))
		return
	}

	volid := state.ID.ValueString()
	err := r.data.client.DeleteBackup(ctx, state.Node.ValueString(), volid, nil)
	if pve.IsProtected(err) {
		// err already says that the backup is protected and what to do, once;
		// only PVE's own answer (when there was one) is worth adding.
		detail := fmt.Sprintf("%s is protected, so PVE will not delete it. Set protected = false and apply first, then destroy.", volid)
		if reason := pveReason(err); reason != "" {
			detail += " PVE said: " + reason
		}
		resp.Diagnostics.AddError("Backup is protected", detail)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to delete backup", fmt.Sprintf("deleting %s: %s", volid, err))
	}
}

// ImportState accepts "<volid>" or "<node>/<volid>", or the identity.
func (r *backupResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if req.ID == "" {
		var diags diag.Diagnostics
		req.ID, diags = backupImportIDFromIdentity(ctx, req.Identity)
		if resp.Diagnostics.Append(diags...); diags.HasError() {
			return
		}
	}
	node, volid := "", req.ID
	if i := strings.Index(req.ID, "/"); i > 0 && !strings.Contains(req.ID[:i], ":") {
		node, volid = req.ID[:i], req.ID[i+1:]
	}
	name, err := pve.ParseBackupVolID(volid)
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("expected a backup volume ID such as local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst, "+
				"optionally prefixed by the node (pve1/local:backup/...): %s", err))
		return
	}
	if node == "" {
		g, err := r.data.client.FindGuest(ctx, name.VMID)
		if err != nil {
			resp.Diagnostics.AddError("Cannot find the backup's node",
				fmt.Sprintf("guest %d is not in the cluster, so its node is unknown; import as <node>/%s instead: %s", name.VMID, volid, err))
			return
		}
		node = g.Node
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), volid)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("node"), node)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("vmid"), int64(name.VMID))...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("storage"), name.Storage)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("task_id"), "")...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("compress"), compressFromFormat(name.Format))...)
	// until the first update, arguments vzdump does not record are adopted
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateImported, []byte("true"))...)
}

// notesVariables are the values vzdump would give a notes template's
// variables. PUT stores notes verbatim, so an in-place edit fills them in
// here; a variable that cannot be read is left as written (and logged).
func (r *backupResource) notesVariables(ctx context.Context, state backupModel) map[string]string {
	vmid := int(state.VMID.ValueInt64())
	vars := map[string]string{"vmid": fmt.Sprint(vmid), "node": state.Node.ValueString()}
	if g, err := r.data.client.FindGuest(ctx, vmid); err == nil {
		vars["guestname"] = g.Name
	} else {
		tflog.Warn(ctx, "notes: {{guestname}} left as written", map[string]any{"error": err.Error()})
	}
	if name, err := r.data.client.ClusterName(ctx); err == nil {
		vars["cluster"] = name
	} else {
		tflog.Warn(ctx, "notes: {{cluster}} left as written", map[string]any{"error": err.Error()})
	}
	return vars
}

// applyBackup copies what the storage reports into the model.
func (m *backupModel) applyBackup(b *pve.Backup) {
	m.ID = types.StringValue(b.VolID)
	m.VolID = types.StringValue(b.VolID)
	m.Node = types.StringValue(b.Node)
	m.Storage = types.StringValue(b.Storage)
	m.VMID = types.Int64Value(int64(b.VMID))
	m.Filename = types.StringValue(b.Filename)
	m.Format = types.StringValue(b.Format)
	m.GuestType = types.StringValue(b.GuestType)
	m.Size = types.Int64Value(b.Size)
	m.CreatedAt = types.StringValue(b.CreatedAt.UTC().Format(time.RFC3339))
	m.Protected = types.BoolValue(b.Protected)
	m.Verification = types.StringValue(b.Verification)
	m.Encrypted = types.BoolValue(b.Encrypted)
	m.Status = types.StringValue(backupStatus(b))
	if m.TaskID.IsNull() || m.TaskID.IsUnknown() {
		m.TaskID = types.StringValue("")
	}
	if m.Mode.IsNull() || m.Mode.IsUnknown() {
		m.Mode = types.StringNull()
	}
}

func backupStatus(b *pve.Backup) string {
	switch b.Verification {
	case "ok":
		return "verified"
	case "failed":
		return "verification_failed"
	}
	return "available"
}

// compressFromFormat maps a listing format back to the compress argument;
// PBS formats carry no vzdump compression, so they give null.
func compressFromFormat(format string) *string {
	var c string
	switch {
	case strings.HasSuffix(format, ".zst"):
		c = "zstd"
	case strings.HasSuffix(format, ".gz"), format == "tgz":
		c = "gzip"
	case strings.HasSuffix(format, ".lzo"):
		c = "lzo"
	case format == "tar" || format == "vma":
		c = "none"
	default:
		return nil
	}
	return &c
}

// pveReason is PVE's message in err (an HTTP error or a failed task), "" when
// err holds none.
func pveReason(err error) string {
	var ae *pve.APIError
	if errors.As(err, &ae) {
		return ae.Reason()
	}
	var te *pve.TaskError
	if errors.As(err, &te) {
		return te.ExitStatus
	}
	return ""
}

func storageLabel(s string) string {
	if s == "" {
		return "(PVE default)"
	}
	return s
}
