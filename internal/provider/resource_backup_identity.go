package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/identityschema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// The resource identity of proxmoxapp_backup (Terraform 1.12+): what names
// one archive across the cluster. `list "proxmoxapp_backup"` returns it and
// `import { identity = {...} }` takes it. Older Terraform never asks for it.

var _ resource.ResourceWithIdentity = (*backupResource)(nil)

// backupIdentityModel is the identity: the volume ID, and the node whose
// storage listing shows it (a shared storage is seen from every node).
type backupIdentityModel struct {
	Node  types.String `tfsdk:"node"`
	VolID types.String `tfsdk:"volid"`
}

func (r *backupResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = identityschema.Schema{
		Attributes: map[string]identityschema.Attribute{
			"volid": identityschema.StringAttribute{
				Description:       "Volume ID of the archive, e.g. local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst.",
				RequiredForImport: true,
			},
			"node": identityschema.StringAttribute{
				Description:       "Node the archive's storage is read from. When omitted on import, the node of the guest the backup was taken of.",
				OptionalForImport: true,
			},
		},
	}
}

// setBackupIdentity writes the identity of the backup in m; a nil identity
// (the resource has none in this request) is left alone.
func setBackupIdentity(ctx context.Context, identity *tfsdk.ResourceIdentity, m *backupModel) diag.Diagnostics {
	if identity == nil {
		return nil
	}
	return identity.Set(ctx, backupIdentityModel{Node: m.Node, VolID: m.ID})
}

// backupImportIDFromIdentity turns an import identity into the import ID
// ImportState already understands: "<node>/<volid>" or "<volid>".
func backupImportIDFromIdentity(ctx context.Context, identity *tfsdk.ResourceIdentity) (string, diag.Diagnostics) {
	var diags diag.Diagnostics
	if identity == nil || identity.Raw.IsNull() {
		diags.AddError("Missing import ID", "Import a proxmoxapp_backup by its volume ID (id = \"<volid>\" or \"<node>/<volid>\") "+
			"or by identity (identity = { volid = \"...\", node = \"...\" }).")
		return "", diags
	}
	var id backupIdentityModel
	diags.Append(identity.Get(ctx, &id)...)
	if diags.HasError() {
		return "", diags
	}
	if id.VolID.ValueString() == "" {
		diags.AddAttributeError(path.Root("volid"), "Missing volid in the import identity",
			"identity.volid must be the backup's volume ID, e.g. local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst.")
		return "", diags
	}
	if node := id.Node.ValueString(); node != "" {
		if !nodeNamePattern.MatchString(node) {
			diags.AddAttributeError(path.Root("node"), "Invalid node in the import identity",
				fmt.Sprintf("identity.node must be a Proxmox VE node name (letters, digits and '-'), got %q.", node))
			return "", diags
		}
		return node + "/" + id.VolID.ValueString(), diags
	}
	return id.VolID.ValueString(), diags
}

// modeStaysNullAfterImport keeps mode null on an imported backup whose
// configuration does not set it. vzdump does not record the mode, so an
// import leaves it null; without this the default ("snapshot") would show
// as a change on the first plan after every import, and the configuration
// `terraform query -generate-config-out` writes would never plan empty.
type modeStaysNullAfterImport struct{}

var _ planmodifier.String = modeStaysNullAfterImport{}

func (modeStaysNullAfterImport) Description(context.Context) string {
	return "An imported backup keeps no mode unless the configuration sets one."
}

func (m modeStaysNullAfterImport) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (modeStaysNullAfterImport) PlanModifyString(_ context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() {
		return // create or destroy
	}
	if req.StateValue.IsNull() && req.ConfigValue.IsNull() {
		resp.PlanValue = types.StringNull()
	}
}
