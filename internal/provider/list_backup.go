package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/list"
	"github.com/hashicorp/terraform-plugin-framework/list/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

var (
	_ list.ListResource              = (*backupListResource)(nil)
	_ list.ListResourceWithConfigure = (*backupListResource)(nil)
)

// NewBackupListResource is the factory of `list "proxmoxapp_backup"`.
func NewBackupListResource() list.ListResource { return &backupListResource{} }

// backupListResource finds existing backups for `terraform query`, as
// proxmoxapp_backup identities (and, on request, the state an import of each
// would produce), so `-generate-config-out` can write import blocks for them.
type backupListResource struct {
	data *providerData
}

type backupListConfigModel struct {
	VMID    types.Int64  `tfsdk:"vmid"`
	Node    types.String `tfsdk:"node"`
	Storage types.String `tfsdk:"storage"`
}

func (l *backupListResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backup"
}

func (l *backupListResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &l.data)...)
}

func (l *backupListResource) ListResourceConfigSchema(_ context.Context, _ list.ListResourceSchemaRequest, resp *list.ListResourceSchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lists existing vzdump backups as `proxmoxapp_backup` resources for `terraform query` " +
			"(**Terraform 1.14 or later**), newest first: those of one guest, of one node, of one storage, or of the " +
			"whole cluster when nothing is set. `terraform query -generate-config-out=backups.tf` writes an `import` " +
			"block (by resource identity) and a `resource` block for each, so existing backups come under Terraform's " +
			"management; the import plan is then empty.\n\n" +
			"A storage that cannot be read (offline, or not visible to the API token) fails the query with its name " +
			"rather than listing fewer backups than exist.",
		Attributes: map[string]schema.Attribute{
			"vmid": schema.Int64Attribute{
				MarkdownDescription: "Only the backups of this guest (100–999999999). The guest may no longer exist: its " +
					"backups are then looked for on every online node.",
				Optional:   true,
				Validators: vmidValidators(),
			},
			"node": schema.StringAttribute{
				MarkdownDescription: "Only the storages of this node. Defaults to the guest's node when `vmid` is set, " +
					"otherwise every online node (a shared storage is listed once).",
				Optional:   true,
				Validators: nodeValidators(),
			},
			"storage": schema.StringAttribute{
				MarkdownDescription: "Only this storage. Defaults to every enabled, active storage with `backup` content.",
				Optional:            true,
				Validators:          storageValidators(),
			},
		},
	}
}

func (l *backupListResource) List(ctx context.Context, req list.ListRequest, stream *list.ListResultsStream) {
	var cfg backupListConfigModel
	if diags := req.Config.Get(ctx, &cfg); diags.HasError() {
		stream.Results = list.ListResultsStreamDiagnostics(diags)
		return
	}
	if l.data == nil {
		result := req.NewListResult(ctx)
		result.Diagnostics.AddError("Provider not configured", "The proxmoxapp provider was not configured before the list ran; this is a provider bug.")
		stream.Results = list.ListResultsStreamDiagnostics(result.Diagnostics)
		return
	}
	opts := pve.ListOptions{
		VMID:    int(cfg.VMID.ValueInt64()),
		Node:    cfg.Node.ValueString(),
		Storage: cfg.Storage.ValueString(),
	}
	backups, err := l.data.client.ListBackups(ctx, opts)
	if err != nil {
		result := req.NewListResult(ctx)
		result.Diagnostics.AddError("Unable to list backups", fmt.Sprintf("listing the backups of %s: %s", listScope(opts), err))
		stream.Results = list.ListResultsStreamDiagnostics(result.Diagnostics)
		return
	}
	tflog.Debug(ctx, "listed backups", map[string]any{"count": len(backups), "scope": listScope(opts)})

	stream.Results = func(push func(list.ListResult) bool) {
		for i := range backups {
			if req.Limit > 0 && int64(i) >= req.Limit {
				return
			}
			b := &backups[i]
			result := req.NewListResult(ctx)
			result.DisplayName = backupDisplayName(b)
			m := importedBackupModel(b)
			result.Diagnostics.Append(setBackupIdentity(ctx, result.Identity, &m)...)
			if req.IncludeResource {
				result.Diagnostics.Append(result.Resource.Set(ctx, &m)...)
			}
			if !push(result) {
				return
			}
		}
	}
}

// importedBackupModel is the state importing b gives (ImportState, then
// Read): the arguments vzdump does not record stay null, compress follows the
// archive's format, notes are PVE's. The configuration generated from it
// therefore plans no change after the import.
func importedBackupModel(b *pve.Backup) backupModel {
	m := backupModel{
		Mode:           types.StringNull(),
		Notes:          types.StringNull(),
		BandwidthLimit: types.Int64Null(),
		ExcludePaths:   types.ListNull(types.StringType),
		ZstdThreads:    types.Int64Null(),
		Triggers:       types.MapNull(types.StringType),
		TaskID:         types.StringValue(""),
		Compress:       types.StringPointerValue(compressFromFormat(b.Format)),
		Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{
			"create": types.StringType, "delete": types.StringType,
		})},
	}
	if b.Notes != "" {
		m.Notes = types.StringValue(b.Notes)
	}
	m.applyBackup(b)
	return m
}

func backupDisplayName(b *pve.Backup) string {
	name := fmt.Sprintf("%s on %s (guest %d, %s UTC, %s", b.Filename, b.Storage, b.VMID, b.CreatedAt.UTC().Format(time.DateTime), humanBytes(b.Size))
	if b.Protected {
		name += ", protected"
	}
	name += ")"
	if b.Notes != "" {
		name += ": " + b.Notes
	}
	return name
}

func listScope(o pve.ListOptions) string {
	scope := "the cluster"
	if o.VMID > 0 {
		scope = fmt.Sprintf("guest %d", o.VMID)
	}
	if o.Node != "" {
		scope += " on node " + o.Node
	}
	if o.Storage != "" {
		scope += " on storage " + o.Storage
	}
	return scope
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
