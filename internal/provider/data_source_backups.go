package provider

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

var (
	_ datasource.DataSource              = (*backupsDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*backupsDataSource)(nil)
)

// NewBackupsDataSource is the factory of the proxmoxapp_backups data source.
func NewBackupsDataSource() datasource.DataSource { return &backupsDataSource{} }

type backupsDataSource struct {
	data *providerData
}

type backupsDataSourceModel struct {
	ID      types.String       `tfsdk:"id"`
	VMID    types.Int64        `tfsdk:"vmid"`
	Node    types.String       `tfsdk:"node"`
	Storage types.String       `tfsdk:"storage"`
	Backups []backupEntryModel `tfsdk:"backups"`
	Latest  *backupEntryModel  `tfsdk:"latest"`
}

// backupEntryModel is one backup as the data source reports it.
type backupEntryModel struct {
	VolID        types.String `tfsdk:"volid"`
	Node         types.String `tfsdk:"node"`
	Storage      types.String `tfsdk:"storage"`
	VMID         types.Int64  `tfsdk:"vmid"`
	GuestType    types.String `tfsdk:"guest_type"`
	Filename     types.String `tfsdk:"filename"`
	Format       types.String `tfsdk:"format"`
	Size         types.Int64  `tfsdk:"size"`
	CreatedAt    types.String `tfsdk:"created_at"`
	Notes        types.String `tfsdk:"notes"`
	Protected    types.Bool   `tfsdk:"protected"`
	Verification types.String `tfsdk:"verification"`
	Encrypted    types.Bool   `tfsdk:"encrypted"`
}

func (d *backupsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backups"
}

func (d *backupsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &d.data)...)
}

// backupEntryAttributes describes one backup; shared by `backups` and `latest`.
func backupEntryAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"volid": schema.StringAttribute{
			MarkdownDescription: "Volume ID of the archive, e.g. `local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst` " +
				"or `pbs:backup/ct/100/2025-10-04T12:00:00Z`. Use it as the `backup` of a `proxmoxapp_restore`.",
			Computed: true,
		},
		"node": schema.StringAttribute{
			MarkdownDescription: "Node the storage was read from.",
			Computed:            true,
		},
		"storage": schema.StringAttribute{
			MarkdownDescription: "Storage holding the archive.",
			Computed:            true,
		},
		"vmid": schema.Int64Attribute{
			MarkdownDescription: "ID of the guest the backup was taken of.",
			Computed:            true,
		},
		"guest_type": schema.StringAttribute{
			MarkdownDescription: "`lxc` (container) or `qemu` (VM).",
			Computed:            true,
		},
		"filename": schema.StringAttribute{
			MarkdownDescription: "Archive name on the storage (the volume ID without `<storage>:backup/`).",
			Computed:            true,
		},
		"format": schema.StringAttribute{
			MarkdownDescription: "Archive format as PVE lists it: `tar.zst`, `tar.gz`, `vma.zst`, `pbs-ct`, `pbs-vm`, ...",
			Computed:            true,
		},
		"size": schema.Int64Attribute{
			MarkdownDescription: "Archive size in bytes, as the storage reports it.",
			Computed:            true,
		},
		"created_at": schema.StringAttribute{
			MarkdownDescription: "When the backup was taken (RFC 3339, UTC).",
			Computed:            true,
		},
		"notes": schema.StringAttribute{
			MarkdownDescription: "First line of the backup's notes; empty when it has none.",
			Computed:            true,
		},
		"protected": schema.BoolAttribute{
			MarkdownDescription: "Whether the backup is protected from pruning and deletion.",
			Computed:            true,
		},
		"verification": schema.StringAttribute{
			MarkdownDescription: "Proxmox Backup Server verification state (`ok`, `failed`); empty when not verified.",
			Computed:            true,
		},
		"encrypted": schema.BoolAttribute{
			MarkdownDescription: "Whether the backup is encrypted (Proxmox Backup Server client-side encryption).",
			Computed:            true,
		},
	}
}

func (d *backupsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The backups of one Proxmox VE guest (\"app\"), newest first. Without `storage`, every " +
			"enabled and active storage with `backup` content on the node is read (a shared storage once). A guest " +
			"that no longer exists still gets the backups the storages hold for it, read from every online node, so " +
			"this data source is the starting point of a disaster recovery. A storage that cannot be read is an error " +
			"naming it, never a silently shorter list. Only the backups the credentials may see are listed (PVE hides " +
			"backups from a token with `Datastore.Audit` alone).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "Identifier of this listing: `<vmid>/<node>/<storage>`, with `*` for a filter not set.",
				Computed:            true,
			},
			"vmid": schema.Int64Attribute{
				MarkdownDescription: "ID of the guest whose backups are listed (100–999999999). It need not exist any more.",
				Required:            true,
				Validators:          vmidValidators(),
			},
			"node": schema.StringAttribute{
				MarkdownDescription: "Node to read the storages from. Defaults to the guest's node; when the guest no " +
					"longer exists, every online node.",
				Optional:   true,
				Validators: nodeValidators(),
			},
			"storage": schema.StringAttribute{
				MarkdownDescription: "Read only this storage. Defaults to every enabled, active storage with `backup` content.",
				Optional:            true,
				Validators:          storageValidators(),
			},
			"backups": schema.ListNestedAttribute{
				MarkdownDescription: "The guest's backups, newest first (by creation time). Empty when there are none.",
				Computed:            true,
				NestedObject:        schema.NestedAttributeObject{Attributes: backupEntryAttributes()},
			},
			"latest": schema.SingleNestedAttribute{
				MarkdownDescription: "The newest backup (the first of `backups`), or null when there is none.",
				Computed:            true,
				Attributes:          backupEntryAttributes(),
			},
		},
	}
}

func (d *backupsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg backupsDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if d.data == nil {
		resp.Diagnostics.AddError("Provider not configured", "The proxmoxapp provider was not configured; this is a provider bug.")
		return
	}

	opts := pve.ListOptions{
		VMID:    int(cfg.VMID.ValueInt64()),
		Node:    cfg.Node.ValueString(),
		Storage: cfg.Storage.ValueString(),
	}
	list, failure := listForDataSource(ctx, d.data.client, opts)
	if failure != nil {
		if failure.attribute != "" {
			resp.Diagnostics.AddAttributeError(path.Root(failure.attribute), failure.summary, failure.detail)
		} else {
			resp.Diagnostics.AddError(failure.summary, failure.detail)
		}
		return
	}
	cfg.ID = types.StringValue(listingID(opts))
	raw, err := backupsStateValue(ctx, resp.State.Schema.Type().TerraformType(ctx), cfg, list)
	if err != nil {
		resp.Diagnostics.AddError("Unable to record the backups", err.Error())
		return
	}
	resp.State.Raw = raw
}

// dataSourceFailure is an error for the user: summary and detail, and the
// argument it is about ("" for none).
type dataSourceFailure struct{ summary, detail, attribute string }

// listForDataSource lists the backups, or says why it could not.
func listForDataSource(ctx context.Context, client *pve.Client, opts pve.ListOptions) ([]pve.Backup, *dataSourceFailure) {
	tflog.Debug(ctx, "listing backups", map[string]any{"vmid": opts.VMID, "node": opts.Node, "storage": opts.Storage})
	list, err := client.ListBackups(ctx, opts)
	if err != nil {
		where := "its storages"
		if opts.Storage != "" {
			where = fmt.Sprintf("storage %q", opts.Storage)
		}
		if opts.Node != "" {
			where += fmt.Sprintf(" on node %q", opts.Node)
		}
		if opts.Storage != "" && pve.IsNotFound(err) {
			// The listing only says that no usable storage matched; say
			// which it is: absent from the node, or without backup content.
			if pe := pve.AsPreflight(client.ExplainStorage(ctx, opts.VMID, opts.Node, opts.Storage)); pe != nil {
				return nil, &dataSourceFailure{pe.Summary, fmt.Sprintf("Listing the backups of guest %d: %s", opts.VMID, pe.Detail), "storage"}
			}
		}
		return nil, &dataSourceFailure{"Unable to list backups",
			fmt.Sprintf("Listing the backups of guest %d on %s failed: %s", opts.VMID, where, err), ""}
	}
	return list, nil
}

// listingID is the data source's id: <vmid>/<node>/<storage>, * for unset.
func listingID(opts pve.ListOptions) string {
	return fmt.Sprintf("%d/%s/%s", opts.VMID, orStar(opts.Node), orStar(opts.Storage))
}

// backupsStateValue builds the data source's state directly as a Terraform
// value. State.Set would walk 10,000 backups × 13 fields by reflection, which
// made the provider's CPU the larger share of a plan; the values are the same.
func backupsStateValue(ctx context.Context, typ tftypes.Type, cfg backupsDataSourceModel, list []pve.Backup) (tftypes.Value, error) {
	obj, ok := typ.(tftypes.Object)
	if !ok {
		return tftypes.Value{}, fmt.Errorf("the data source's schema is not an object (%s): this is a provider bug", typ)
	}
	listType, ok := obj.AttributeTypes["backups"].(tftypes.List)
	if !ok {
		return tftypes.Value{}, fmt.Errorf("the data source's backups attribute is not a list: this is a provider bug")
	}
	entryType := listType.ElementType
	entries := make([]tftypes.Value, len(list))
	for i := range list {
		entries[i] = backupEntryValue(entryType, &list[i])
	}
	latest := tftypes.NewValue(entryType, nil)
	if len(entries) > 0 {
		latest = entries[0]
	}
	attrs := map[string]tftypes.Value{
		"backups": tftypes.NewValue(listType, entries),
		"latest":  latest,
	}
	for name, v := range map[string]attr.Value{"id": cfg.ID, "vmid": cfg.VMID, "node": cfg.Node, "storage": cfg.Storage} {
		tv, err := v.ToTerraformValue(ctx)
		if err != nil {
			return tftypes.Value{}, err
		}
		attrs[name] = tv
	}
	return tftypes.NewValue(obj, attrs), nil
}

// backupEntryField is one attribute of a backup entry: a string, an int64 or
// a bool value.
type backupEntryField struct {
	name  string
	value any
}

// backupEntryFields is the one mapping of a backup to the data source's entry
// attributes, for both ways the entries are written (tftypes values, and the
// direct wire encoding in server.go).
func backupEntryFields(b *pve.Backup) []backupEntryField {
	return []backupEntryField{
		{"volid", b.VolID},
		{"node", b.Node},
		{"storage", b.Storage},
		{"vmid", int64(b.VMID)},
		{"guest_type", b.GuestType},
		{"filename", b.Filename},
		{"format", b.Format},
		{"size", b.Size},
		{"created_at", b.CreatedAt.UTC().Format(time.RFC3339)},
		{"notes", b.Notes},
		{"protected", b.Protected},
		{"verification", b.Verification},
		{"encrypted", b.Encrypted},
	}
}

// backupEntryValue is one backup as a Terraform object value.
func backupEntryValue(typ tftypes.Type, b *pve.Backup) tftypes.Value {
	attrs := map[string]tftypes.Value{}
	for _, f := range backupEntryFields(b) {
		switch v := f.value.(type) {
		case string:
			attrs[f.name] = tftypes.NewValue(tftypes.String, v)
		case int64:
			attrs[f.name] = tftypes.NewValue(tftypes.Number, new(big.Float).SetInt64(v))
		case bool:
			attrs[f.name] = tftypes.NewValue(tftypes.Bool, v)
		}
	}
	return tftypes.NewValue(typ, attrs)
}

func orStar(s string) string {
	if s == "" {
		return "*"
	}
	return s
}
