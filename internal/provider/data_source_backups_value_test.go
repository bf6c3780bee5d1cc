package provider

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// The data source builds its state as a Terraform value directly (no
// reflection); it must be exactly what State.Set makes of the model.
func TestBackupsStateValueMatchesStateSet(t *testing.T) {
	ctx := context.Background()
	var sresp datasource.SchemaResponse
	NewBackupsDataSource().Schema(ctx, datasource.SchemaRequest{}, &sresp)
	typ := sresp.Schema.Type().TerraformType(ctx)
	list := []pve.Backup{
		{VolID: "local:backup/vzdump-lxc-100-2026_01_02-03_04_05.tar.zst", Node: "pve1", Storage: "local", VMID: 100, GuestType: "lxc",
			Filename: "vzdump-lxc-100-2026_01_02-03_04_05.tar.zst", Format: "tar.zst", Size: 123456789012, CreatedAt: time.Unix(1767323045, 0),
			Notes: "web", Protected: true, Verification: "ok", Encrypted: true},
		{VolID: "pbs:backup/ct/100/2026-01-01T00:00:00Z", Node: "pve1", Storage: "pbs", VMID: 100, GuestType: "lxc", CreatedAt: time.Unix(1767225600, 0)},
	}
	for _, backups := range [][]pve.Backup{list, nil} {
		cfg := backupsDataSourceModel{ID: types.StringValue("100/*/*"), VMID: types.Int64Value(100), Node: types.StringNull(), Storage: types.StringNull()}
		got, err := backupsStateValue(ctx, typ, cfg, backups)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Backups = make([]backupEntryModel, 0, len(backups))
		for i := range backups {
			cfg.Backups = append(cfg.Backups, newBackupEntry(&backups[i]))
		}
		if len(cfg.Backups) > 0 {
			latest := cfg.Backups[0]
			cfg.Latest = &latest
		}
		want := tfsdk.State{Schema: sresp.Schema, Raw: tftypes.NewValue(typ, nil)}
		if diags := want.Set(ctx, &cfg); diags.HasError() {
			t.Fatal(diags)
		}
		if !got.Equal(want.Raw) {
			t.Fatalf("%d backups: the value differs from State.Set's\n got: %s\nwant: %s", len(backups), got, want.Raw)
		}
	}
}
