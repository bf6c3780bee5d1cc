package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
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

// The protocol-level Read (server.go) writes msgpack itself; it must decode
// to the same value, with and without node and storage, for 0, 1 and many
// backups (msgpack switches encodings at 16 and 65,536 elements).
func TestBackupsDirectMatchesFramework(t *testing.T) {
	ctx := context.Background()
	var sresp datasource.SchemaResponse
	NewBackupsDataSource().Schema(ctx, datasource.SchemaRequest{}, &sresp)
	typ := sresp.Schema.Type().TerraformType(ctx)
	one := pve.Backup{VolID: "nas:backup/vzdump-qemu-4000000-2026_01_02-03_04_05.vma.zst", Node: "pve2", Storage: "nas", VMID: 4000000,
		GuestType: "qemu", Filename: "vzdump-qemu-4000000-2026_01_02-03_04_05.vma.zst", Format: "vma.zst", Size: 1 << 40,
		CreatedAt: time.Unix(1767323045, 0), Notes: strings.Repeat("n", 300), Protected: true, Verification: "failed", Encrypted: true}
	many := make([]pve.Backup, 70000)
	for i := range many {
		many[i] = one
		many[i].Size = int64(i - 40)
		many[i].Notes = strings.Repeat("x", i%70)
	}
	for _, c := range []struct {
		opts pve.ListOptions
		list []pve.Backup
	}{
		{pve.ListOptions{VMID: 100}, nil},
		{pve.ListOptions{VMID: 4000000, Node: "pve2", Storage: "nas"}, []pve.Backup{one}},
		{pve.ListOptions{VMID: 4000000, Storage: "nas"}, many},
	} {
		got, err := (&tfprotov6.DynamicValue{MsgPack: encodeBackupsState(c.opts, c.list)}).Unmarshal(typ)
		if err != nil {
			t.Fatal(err)
		}
		cfg := backupsDataSourceModel{ID: types.StringValue(listingID(c.opts)), VMID: types.Int64Value(int64(c.opts.VMID)),
			Node: types.StringNull(), Storage: types.StringNull()}
		if c.opts.Node != "" {
			cfg.Node = types.StringValue(c.opts.Node)
		}
		if c.opts.Storage != "" {
			cfg.Storage = types.StringValue(c.opts.Storage)
		}
		want, err := backupsStateValue(ctx, typ, cfg, c.list)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Fatalf("%d backups: the direct encoding differs from the framework value", len(c.list))
		}
	}
}

// newBackupEntry is the model form of one backup, mapped independently of
// backupEntryFields: the expected value is built from it through the
// framework's own State.Set.
func newBackupEntry(b *pve.Backup) backupEntryModel {
	return backupEntryModel{
		VolID:        types.StringValue(b.VolID),
		Node:         types.StringValue(b.Node),
		Storage:      types.StringValue(b.Storage),
		VMID:         types.Int64Value(int64(b.VMID)),
		GuestType:    types.StringValue(b.GuestType),
		Filename:     types.StringValue(b.Filename),
		Format:       types.StringValue(b.Format),
		Size:         types.Int64Value(b.Size),
		CreatedAt:    types.StringValue(b.CreatedAt.UTC().Format(time.RFC3339)),
		Notes:        types.StringValue(b.Notes),
		Protected:    types.BoolValue(b.Protected),
		Verification: types.StringValue(b.Verification),
		Encrypted:    types.BoolValue(b.Encrypted),
	}
}
