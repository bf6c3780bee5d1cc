package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

var (
	_ datasource.DataSource                   = (*backupRetentionDataSource)(nil)
	_ datasource.DataSourceWithConfigure      = (*backupRetentionDataSource)(nil)
	_ datasource.DataSourceWithValidateConfig = (*backupRetentionDataSource)(nil)
)

// NewBackupRetentionDataSource is the factory of proxmoxapp_backup_retention.
func NewBackupRetentionDataSource() datasource.DataSource { return &backupRetentionDataSource{} }

type backupRetentionDataSource struct {
	data *providerData
}

type backupRetentionModel struct {
	retentionPolicyModel
	ID        types.String         `tfsdk:"id"`
	Policy    types.String         `tfsdk:"policy"`
	Backups   []retentionMarkModel `tfsdk:"backups"`
	Keep      []types.String       `tfsdk:"keep"`
	Remove    []types.String       `tfsdk:"remove"`
	Protected []types.String       `tfsdk:"protected"`
	Renamed   []types.String       `tfsdk:"renamed"`
}

type retentionMarkModel struct {
	VolID     types.String `tfsdk:"volid"`
	VMID      types.Int64  `tfsdk:"vmid"`
	GuestType types.String `tfsdk:"guest_type"`
	CreatedAt types.String `tfsdk:"created_at"`
	Mark      types.String `tfsdk:"mark"`
}

func (d *backupRetentionDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backup_retention"
}

func (d *backupRetentionDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &d.data)...)
}

func (d *backupRetentionDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	attrs := retentionDataSourceAttributes()
	volids := func(what string) schema.ListAttribute {
		return schema.ListAttribute{MarkdownDescription: "Volume IDs of the backups marked `" + what + "`, sorted.",
			Computed: true, ElementType: types.StringType}
	}
	attrs["id"] = schema.StringAttribute{MarkdownDescription: "`<node>/<storage>` with the filters.", Computed: true}
	attrs["policy"] = schema.StringAttribute{MarkdownDescription: "The policy evaluated, as PVE's `prune-backups` " +
		"property string; empty when the storage's own was used.", Computed: true}
	attrs["keep"], attrs["remove"], attrs["protected"], attrs["renamed"] = volids("keep"), volids("remove"), volids("protected"), volids("renamed")
	attrs["backups"] = schema.ListNestedAttribute{
		MarkdownDescription: "Every backup the policy was evaluated on, sorted by volume ID, with its mark.",
		Computed:            true,
		NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
			"volid":      schema.StringAttribute{MarkdownDescription: "Volume ID of the backup.", Computed: true},
			"vmid":       schema.Int64Attribute{MarkdownDescription: "Guest the backup belongs to; null when its name has none.", Computed: true},
			"guest_type": schema.StringAttribute{MarkdownDescription: "`lxc`, `qemu`, `openvz` or `unknown`.", Computed: true},
			"created_at": schema.StringAttribute{MarkdownDescription: "Creation time PVE uses for the policy (RFC 3339, UTC).", Computed: true},
			"mark": schema.StringAttribute{MarkdownDescription: "`keep`, `remove` (a prune with this policy deletes it), " +
				"`protected` (never pruned) or `renamed` (not a standard vzdump name: never pruned).", Computed: true},
		}},
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Evaluates a retention policy on a storage's backups through PVE's own dry run " +
			"(`GET /nodes/{node}/storage/{storage}/prunebackups`) and returns each backup with its mark. Nothing is " +
			"deleted; `proxmoxapp_backup_prune` applies a policy.\n\n" + policyIntro,
		Attributes: attrs,
	}
}

func (d *backupRetentionDataSource) ValidateConfig(ctx context.Context, req datasource.ValidateConfigRequest, resp *datasource.ValidateConfigResponse) {
	var m backupRetentionModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	_, diags := m.policy()
	resp.Diagnostics.Append(diags...)
}

func (d *backupRetentionDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m backupRetentionModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c := d.data.client
	node, err := c.PruneNode(ctx, m.Node.ValueString(), m.Storage.ValueString(), int(m.VMID.ValueInt64()))
	if err != nil {
		resp.Diagnostics.AddError("Could not pick a node for the retention dry run", err.Error())
		return
	}
	opts, diags := m.pruneOptions(node)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	entries, err := c.PruneDryRun(ctx, opts)
	if err != nil {
		resp.Diagnostics.AddError("Retention dry run failed", dryRunErrorDetail(err))
		return
	}
	m.Node = types.StringValue(node)
	m.Policy = types.StringValue(opts.Policy.String())
	m.ID = types.StringValue(retentionID(node, opts))
	m.Backups = []retentionMarkModel{}
	m.Keep, m.Remove, m.Protected, m.Renamed = []types.String{}, []types.String{}, []types.String{}, []types.String{}
	for _, e := range entries {
		vmid := types.Int64Null()
		if e.VMID > 0 {
			vmid = types.Int64Value(int64(e.VMID))
		}
		m.Backups = append(m.Backups, retentionMarkModel{VolID: types.StringValue(e.VolID), VMID: vmid,
			GuestType: types.StringValue(e.GuestType), CreatedAt: types.StringValue(e.CreatedAt.Format(time.RFC3339)),
			Mark: types.StringValue(e.Mark)})
		v := types.StringValue(e.VolID)
		switch e.Mark {
		case pve.MarkKeep:
			m.Keep = append(m.Keep, v)
		case pve.MarkRemove:
			m.Remove = append(m.Remove, v)
		case pve.MarkProtected:
			m.Protected = append(m.Protected, v)
		case pve.MarkRenamed:
			m.Renamed = append(m.Renamed, v)
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func retentionID(node string, o pve.PruneOptions) string {
	id := node + "/" + o.Storage
	if o.VMID > 0 {
		id += fmt.Sprintf("/%d", o.VMID)
	}
	if o.GuestType != "" {
		id += "/" + o.GuestType
	}
	return id
}
