package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// TestRestorePlanWarnsWhenNotRestoringAgain checks the plan-time warning that
// a changed backup (or other argument) of a restore that already ran is only
// recorded, and that a triggers change, which does restore, does not warn.
func TestRestorePlanWarnsWhenNotRestoringAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := NewRestoreResource().(*restoreResource)
	var sch resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &sch)

	ran := restoreModel{
		ID: types.StringValue("UPID:pve1:00000001:00000001:68E10C40:vzrestore:100:root@pam:"), VMID: types.Int64Value(100),
		Backup: types.StringValue("local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst"), Node: types.StringValue("pve1"),
		Storage: types.StringNull(), Start: types.BoolNull(), Unique: types.BoolValue(false), BandwidthLimit: types.Int64Null(),
		SafetyBackup: types.BoolValue(true), SafetyBackupStorage: types.StringNull(), ShutdownTimeout: types.StringValue("3m"),
		Triggers: types.MapValueMust(types.StringType, map[string]attr.Value{"run": types.StringValue("1")}),
		TaskID:   types.StringValue("UPID:pve1:00000001:00000001:68E10C40:vzrestore:100:root@pam:"), RestoredAt: types.StringValue("2025-10-04T12:00:00Z"),
		PreviousStatus: types.StringValue("running"), SafetyBackupVolID: types.StringValue("local:backup/vzdump-lxc-100-2025_10_04-12_00_05.tar.zst"),
		Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType})},
	}
	newLatest := ran
	newLatest.Backup = types.StringValue("local:backup/vzdump-lxc-100-2025_10_05-12_00_00.tar.zst")
	moved := ran
	moved.Node = types.StringValue("pve2")
	moved.Storage = types.StringValue("local-lvm")
	moved.ShutdownTimeout = types.StringValue("5m")
	rerun := newLatest
	rerun.Triggers = types.MapValueMust(types.StringType, map[string]attr.Value{"run": types.StringValue("2")})

	cases := []struct {
		name string
		plan restoreModel
		want string // "" = no warning
	}{
		{"unchanged", ran, ""},
		{"new latest backup", newLatest, "Changed: backup. The restore already ran"},
		// Every recorded change is listed, node included.
		{"node, storage, shutdown_timeout", moved, "Changed: node, shutdown_timeout, storage. The restore already ran, " +
			"so the new values are only recorded and guest 100 is not touched. To restore again, change triggers."},
		{"triggers changed", rerun, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := tfsdk.State{Schema: sch.Schema, Raw: tftypes.NewValue(sch.Schema.Type().TerraformType(ctx), nil)}
			plan := tfsdk.Plan{Schema: sch.Schema, Raw: tftypes.NewValue(sch.Schema.Type().TerraformType(ctx), nil)}
			if d := state.Set(ctx, &ran); d.HasError() {
				t.Fatal(d)
			}
			if d := plan.Set(ctx, &tc.plan); d.HasError() {
				t.Fatal(d)
			}
			resp := resource.ModifyPlanResponse{Plan: plan}
			r.ModifyPlan(ctx, resource.ModifyPlanRequest{Plan: plan, State: state}, &resp)
			if resp.Diagnostics.HasError() {
				t.Fatalf("errors: %v", resp.Diagnostics)
			}
			var got string
			for _, w := range resp.Diagnostics.Warnings() {
				got += w.Summary() + ": " + w.Detail()
			}
			switch {
			case tc.want == "" && got != "":
				t.Fatalf("unexpected warning: %s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Fatalf("warning %q, want it to contain %q", got, tc.want)
			}
		})
	}
}
