package provider

import (
	"context"
	"encoding/json"
	"math/big"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

const backupTypeName = "proxmoxapp_backup"

// ReadResource answers the refresh of a proxmoxapp_backup whose archive the
// shared listing shows exactly as the state records it with the state,
// private state and identity Terraform sent: that is what the resource's Read
// would return, without the framework's decoding, reflection and re-encoding
// of the whole object (in a plan of 500 backups, the framework's Read was a
// fifth of the provider's CPU). Any difference, an archive the listing does
// not show, or any error goes to the framework's Read, which says why
// (TestBackupReadUnchangedMatchesFramework).
func (s *server) ReadResource(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	if req.TypeName == backupTypeName {
		if resp := s.readUnchangedBackup(ctx, req); resp != nil {
			return resp, nil
		}
	}
	return callReleasing(ctx, req, s.frameworkServer.ReadResource)
}

// backupTypes are the Terraform types of proxmoxapp_backup's state and
// identity, from its schemas.
type backupTypes struct {
	state, identity tftypes.Object
}

func (s *server) backupResourceTypes(ctx context.Context) backupTypes {
	s.backupTypesOnce.Do(func() {
		r := NewBackupResource()
		var sresp resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &sresp)
		s.backupTypes.state, _ = sresp.Schema.Type().TerraformType(ctx).(tftypes.Object)
		if ir, ok := r.(resource.ResourceWithIdentity); ok {
			var iresp resource.IdentitySchemaResponse
			ir.IdentitySchema(ctx, resource.IdentitySchemaRequest{}, &iresp)
			s.backupTypes.identity, _ = iresp.IdentitySchema.Type().TerraformType(ctx).(tftypes.Object)
		}
	})
	return s.backupTypes
}

// readUnchangedBackup returns nil unless the backup is unchanged.
func (s *server) readUnchangedBackup(ctx context.Context, req *tfprotov6.ReadResourceRequest) *tfprotov6.ReadResourceResponse {
	data := s.p.configured.Load()
	types := s.backupResourceTypes(ctx)
	if data == nil || req.CurrentState == nil || types.state.AttributeTypes == nil || types.identity.AttributeTypes == nil {
		return nil
	}
	v, err := req.CurrentState.Unmarshal(types.state)
	if err != nil || v.IsNull() || !v.IsFullyKnown() {
		return nil
	}
	var st stateAttrs
	if v.As(&st.attrs) != nil {
		return nil
	}
	node, volid := st.str("node"), st.str("id")
	if node == nil || volid == nil || st.str("task_id") == nil {
		return nil
	}
	b, listed, err := data.client.ListedBackup(ctx, *node, *volid)
	if err != nil || !listed || !st.records(b) {
		return nil
	}
	rendered, ok := privateKey(req.Private, privateNotesRendered)
	if !ok || b.Notes != pve.FirstLine(decodePrivateString(rendered)) || (st.attrs["notes"].IsNull() && b.Notes != "") {
		return nil // notes changed outside Terraform: the framework's Read shows PVE's value
	}
	identity, ok := unchangedBackupIdentity(req.CurrentIdentity, types.identity, *node, *volid)
	if !ok {
		return nil
	}
	tflog.Debug(ctx, "backup unchanged on the storage", map[string]any{"volid": *volid, "node": *node})
	return &tfprotov6.ReadResourceResponse{NewState: req.CurrentState, Private: req.Private, NewIdentity: identity}
}

// stateAttrs reads attributes of a decoded state.
type stateAttrs struct{ attrs map[string]tftypes.Value }

// str is the attribute's string, nil when null or not a string.
func (s stateAttrs) str(name string) *string {
	var p *string
	if s.attrs[name].As(&p) != nil {
		return nil
	}
	return p
}

func (s stateAttrs) strIs(name, want string) bool {
	p := s.str(name)
	return p != nil && *p == want
}

func (s stateAttrs) intIs(name string, want int64) bool {
	var f big.Float
	if s.attrs[name].IsNull() || s.attrs[name].As(&f) != nil {
		return false
	}
	n, acc := f.Int64()
	return acc == big.Exact && n == want
}

func (s stateAttrs) boolIs(name string, want bool) bool {
	var p *bool
	return s.attrs[name].As(&p) == nil && p != nil && *p == want
}

// records reports whether the state holds exactly what the resource's Read
// would write from b (backupModel.applyBackup).
func (s stateAttrs) records(b *pve.Backup) bool {
	return s.strIs("id", b.VolID) && s.strIs("volid", b.VolID) && s.strIs("node", b.Node) &&
		s.strIs("storage", b.Storage) && s.intIs("vmid", int64(b.VMID)) &&
		s.strIs("filename", b.Filename) && s.strIs("format", b.Format) && s.strIs("guest_type", b.GuestType) &&
		s.intIs("size", b.Size) && s.strIs("created_at", b.CreatedAt.UTC().Format(time.RFC3339)) &&
		s.boolIs("protected", b.Protected) && s.strIs("verification", b.Verification) &&
		s.boolIs("encrypted", b.Encrypted) && s.strIs("status", backupStatus(b))
}

// privateKey is one provider key of the framework's private state (a JSON
// object of base64 values); ok is false when the private state cannot be
// read, so that the framework judges it.
func privateKey(private []byte, key string) (value []byte, ok bool) {
	if len(private) == 0 {
		return nil, true
	}
	var m map[string][]byte
	if json.Unmarshal(private, &m) != nil {
		return nil, false
	}
	return m[key], true
}

// unchangedBackupIdentity is the identity the resource's Read would return:
// Terraform's own when it names the same archive, or a new one when
// Terraform (before 1.12) sent none.
func unchangedBackupIdentity(current *tfprotov6.ResourceIdentityData, typ tftypes.Object, node, volid string) (*tfprotov6.ResourceIdentityData, bool) {
	if current != nil && current.IdentityData != nil {
		v, err := current.IdentityData.Unmarshal(typ)
		if err != nil || v.IsNull() || !v.IsFullyKnown() {
			return nil, false
		}
		id := stateAttrs{}
		if v.As(&id.attrs) != nil || !id.strIs("node", node) || !id.strIs("volid", volid) {
			return nil, false
		}
		return current, true
	}
	dv, err := tfprotov6.NewDynamicValue(typ, tftypes.NewValue(typ, map[string]tftypes.Value{
		"node":  tftypes.NewValue(tftypes.String, node),
		"volid": tftypes.NewValue(tftypes.String, volid),
	}))
	if err != nil {
		return nil, false
	}
	return &tfprotov6.ResourceIdentityData{IdentityData: &dv}, true
}
