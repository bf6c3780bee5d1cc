package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

func backupIdentity(t *testing.T, node, volid *string) *tfsdk.ResourceIdentity {
	t.Helper()
	ctx := context.Background()
	var resp resource.IdentitySchemaResponse
	(&backupResource{}).IdentitySchema(ctx, resource.IdentitySchemaRequest{}, &resp)
	str := func(s *string) tftypes.Value {
		if s == nil {
			return tftypes.NewValue(tftypes.String, nil)
		}
		return tftypes.NewValue(tftypes.String, *s)
	}
	typ := resp.IdentitySchema.Type().TerraformType(ctx)
	return &tfsdk.ResourceIdentity{Schema: resp.IdentitySchema, Raw: tftypes.NewValue(typ, map[string]tftypes.Value{
		"node": str(node), "volid": str(volid),
	})}
}

func ptr(s string) *string { return &s }

// TestBackupImportIDFromIdentity: an import identity becomes the import ID
// ImportState understands, and bad identities name the attribute and fix.
func TestBackupImportIDFromIdentity(t *testing.T) {
	t.Parallel()
	const volid = "local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst"
	for _, tc := range []struct {
		name        string
		node, volid *string
		want        string
		wantErr     string
	}{
		{"volid only", nil, ptr(volid), volid, ""},
		{"with node", ptr("pve2"), ptr(volid), "pve2/" + volid, ""},
		{"empty node", ptr(""), ptr(volid), volid, ""},
		{"no volid", ptr("pve1"), nil, "", "identity.volid must be the backup's volume ID"},
		{"bad node", ptr("pve 1"), ptr(volid), "", `identity.node must be a Proxmox VE node name (letters, digits and '-'), got "pve 1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, diags := backupImportIDFromIdentity(context.Background(), backupIdentity(t, tc.node, tc.volid))
			var errs []string
			for _, d := range diags.Errors() {
				errs = append(errs, d.Detail())
			}
			switch {
			case tc.wantErr == "" && len(errs) > 0:
				t.Fatalf("unexpected errors: %v", errs)
			case tc.wantErr != "" && !strings.Contains(strings.Join(errs, "\n"), tc.wantErr):
				t.Fatalf("errors %v, want one containing %q", errs, tc.wantErr)
			case got != tc.want:
				t.Fatalf("import ID %q, want %q", got, tc.want)
			}
		})
	}
	if _, diags := backupImportIDFromIdentity(context.Background(), nil); !diags.HasError() {
		t.Fatal("no ID and no identity must be an error")
	}
}

// TestModeStaysNullAfterImport: only an existing backup whose state and
// configuration both lack a mode keeps it null; a create gets the default
// and a configured mode is planned as configured.
func TestModeStaysNullAfterImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	existing := tfsdk.State{Raw: tftypes.NewValue(tftypes.Object{}, map[string]tftypes.Value{})}
	absent := tfsdk.State{Raw: tftypes.NewValue(tftypes.Object{}, nil)}
	plan := tfsdk.Plan{Raw: tftypes.NewValue(tftypes.Object{}, map[string]tftypes.Value{})}
	for _, tc := range []struct {
		name          string
		state         tfsdk.State
		stateV, confV types.String
		want          types.String
	}{
		{"imported, not configured", existing, types.StringNull(), types.StringNull(), types.StringNull()},
		{"imported, configured", existing, types.StringNull(), types.StringValue("stop"), types.StringValue("stop")},
		{"taken by Terraform", existing, types.StringValue("snapshot"), types.StringNull(), types.StringValue("snapshot")},
		{"create", absent, types.StringNull(), types.StringNull(), types.StringValue("snapshot")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			planned := types.StringValue("snapshot") // the default, when not configured
			if !tc.confV.IsNull() {
				planned = tc.confV
			}
			req := planmodifier.StringRequest{State: tc.state, Plan: plan, StateValue: tc.stateV, ConfigValue: tc.confV, PlanValue: planned}
			resp := planmodifier.StringResponse{PlanValue: req.PlanValue}
			modeStaysNullAfterImport{}.PlanModifyString(ctx, req, &resp)
			if !resp.PlanValue.Equal(tc.want) {
				t.Fatalf("planned %s, want %s", resp.PlanValue, tc.want)
			}
		})
	}
}

// TestImportedBackupModel: what the list returns for a backup is what an
// import gives: arguments vzdump does not record null, compress from the
// format, PVE's notes, and the identity of the archive.
func TestImportedBackupModel(t *testing.T) {
	t.Parallel()
	b := pve.Backup{
		VolID: "nas:backup/vzdump-qemu-200-2025_10_04-12_00_00.vma.gz", Node: "pve2", Storage: "nas", VMID: 200,
		GuestType: "qemu", Filename: "vzdump-qemu-200-2025_10_04-12_00_00.vma.gz", Format: "vma.gz", Size: 3 << 20,
		CreatedAt: time.Date(2025, 10, 4, 12, 0, 0, 0, time.UTC), Notes: "nightly", Protected: true,
	}
	m := importedBackupModel(&b)
	for name, c := range map[string]struct{ got, want any }{
		"id":       {m.ID, types.StringValue(b.VolID)},
		"node":     {m.Node, types.StringValue("pve2")},
		"compress": {m.Compress, types.StringValue("gzip")},
		"mode":     {m.Mode, types.StringNull()},
		"notes":    {m.Notes, types.StringValue("nightly")},
		"task_id":  {m.TaskID, types.StringValue("")},
		"size":     {m.Size, types.Int64Value(3 << 20)},
		"created":  {m.CreatedAt, types.StringValue("2025-10-04T12:00:00Z")},
		"status":   {m.Status, types.StringValue("available")},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", name, c.got, c.want)
		}
	}
	if got, want := backupDisplayName(&b), "vzdump-qemu-200-2025_10_04-12_00_00.vma.gz on nas (guest 200, 2025-10-04 12:00:00 UTC, 3.0 MiB, protected): nightly"; got != want {
		t.Errorf("display name %q, want %q", got, want)
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
