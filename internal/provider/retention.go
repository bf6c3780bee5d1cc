package provider

import (
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	dsschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	rsschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// Shared by data.proxmoxapp_backup_retention and proxmoxapp_backup_prune:
// the selection (storage, node, vmid, guest_type) and the policy (keep_*).

// retentionPolicyModel is embedded in both models.
type retentionPolicyModel struct {
	Storage     types.String `tfsdk:"storage"`
	Node        types.String `tfsdk:"node"`
	VMID        types.Int64  `tfsdk:"vmid"`
	GuestType   types.String `tfsdk:"guest_type"`
	KeepAll     types.Bool   `tfsdk:"keep_all"`
	KeepLast    types.Int64  `tfsdk:"keep_last"`
	KeepHourly  types.Int64  `tfsdk:"keep_hourly"`
	KeepDaily   types.Int64  `tfsdk:"keep_daily"`
	KeepWeekly  types.Int64  `tfsdk:"keep_weekly"`
	KeepMonthly types.Int64  `tfsdk:"keep_monthly"`
	KeepYearly  types.Int64  `tfsdk:"keep_yearly"`
}

type keepAttr struct {
	name, key, what string
}

var keepAttrs = []keepAttr{
	{"keep_last", "keep-last", "the last N backups"},
	{"keep_hourly", "keep-hourly", "the newest backup of each of the last N hours that have backups"},
	{"keep_daily", "keep-daily", "the newest backup of each of the last N days that have backups"},
	{"keep_weekly", "keep-weekly", "the newest backup of each of the last N ISO weeks that have backups"},
	{"keep_monthly", "keep-monthly", "the newest backup of each of the last N months that have backups"},
	{"keep_yearly", "keep-yearly", "the newest backup of each of the last N years that have backups"},
}

const policyIntro = "PVE applies the options from the shortest period to the longest (`keep_last` first); each only " +
	"considers backups no earlier option kept. Periods are in the node's local time. Protected backups are never " +
	"removed and count for no option; backups whose names are not PVE's standard vzdump names are listed as " +
	"`renamed` and left alone. Leave every keep_* and `keep_all` unset to use the storage's own `prune-backups`."

func (m retentionPolicyModel) keepValue(name string) types.Int64 {
	switch name {
	case "keep_last":
		return m.KeepLast
	case "keep_hourly":
		return m.KeepHourly
	case "keep_daily":
		return m.KeepDaily
	case "keep_weekly":
		return m.KeepWeekly
	case "keep_monthly":
		return m.KeepMonthly
	default:
		return m.KeepYearly
	}
}

// unknownInputs names the selection or policy attributes that are not known yet.
func (m retentionPolicyModel) unknownInputs() []string {
	var out []string
	for name, v := range map[string]interface{ IsUnknown() bool }{
		"storage": m.Storage, "vmid": m.VMID, "guest_type": m.GuestType, "keep_all": m.KeepAll,
	} {
		if v.IsUnknown() {
			out = append(out, name)
		}
	}
	for _, k := range keepAttrs {
		if m.keepValue(k.name).IsUnknown() {
			out = append(out, k.name)
		}
	}
	return out
}

// policy turns the attributes into a PVE policy; it reports keep_all set
// together with a positive keep_* (PVE refuses that) on the attributes.
func (m retentionPolicyModel) policy() (pve.Retention, diag.Diagnostics) {
	var diags diag.Diagnostics
	r := pve.Retention{KeepAll: m.KeepAll.ValueBool()}
	var set []string
	for _, k := range keepAttrs {
		v := m.keepValue(k.name)
		if v.IsNull() || v.IsUnknown() {
			continue
		}
		if r.Keep == nil {
			r.Keep = map[string]int{}
		}
		r.Keep[k.key] = int(v.ValueInt64())
		if v.ValueInt64() > 0 {
			set = append(set, fmt.Sprintf("%s = %d", k.name, v.ValueInt64()))
		}
	}
	if r.KeepAll && len(set) > 0 {
		diags.AddAttributeError(path.Root("keep_all"), "keep_all conflicts with keep_*",
			fmt.Sprintf("keep_all = true keeps every backup, so it cannot be combined with %s (PVE: keep-all cannot be "+
				"set together with other options). Remove keep_all, or the keep_* options.", strings.Join(set, ", ")))
	}
	if !r.KeepAll && len(r.Keep) > 0 && len(set) == 0 {
		r = pve.Retention{KeepAll: true} // no positive option: PVE keeps everything
	}
	return r, diags
}

func (m retentionPolicyModel) pruneOptions(node string) (pve.PruneOptions, diag.Diagnostics) {
	p, diags := m.policy()
	return pve.PruneOptions{Node: node, Storage: m.Storage.ValueString(), VMID: int(m.VMID.ValueInt64()),
		GuestType: m.GuestType.ValueString(), Policy: p}, diags
}

func guestTypeValidators() []validator.String {
	return []validator.String{stringvalidator.OneOf(pve.GuestTypeLXC, pve.GuestTypeQEMU)}
}

func keepDescription(k keepAttr) string {
	return fmt.Sprintf("`%s`: keep %s.", k.key, k.what)
}

// retentionDataSourceAttributes are the selection and policy arguments of the data source.
func retentionDataSourceAttributes() map[string]dsschema.Attribute {
	a := map[string]dsschema.Attribute{
		"storage": dsschema.StringAttribute{MarkdownDescription: "Backup storage to evaluate.", Required: true, Validators: storageValidators()},
		"node": dsschema.StringAttribute{MarkdownDescription: "Node to ask. Defaults to the guest's node when `vmid` is set, " +
			"else the first online node with the storage.", Optional: true, Computed: true, Validators: nodeValidators()},
		"vmid": dsschema.Int64Attribute{MarkdownDescription: "Only the backups of this guest.", Optional: true, Validators: vmidValidators()},
		"guest_type": dsschema.StringAttribute{MarkdownDescription: "Only backups of this guest type: `lxc` or `qemu`.",
			Optional: true, Validators: guestTypeValidators()},
		"keep_all": dsschema.BoolAttribute{MarkdownDescription: "`keep-all`: keep every backup. Conflicts with the keep_* options.", Optional: true},
	}
	for _, k := range keepAttrs {
		a[k.name] = dsschema.Int64Attribute{MarkdownDescription: keepDescription(k), Optional: true,
			Validators: []validator.Int64{int64validator.AtLeast(0)}}
	}
	return a
}

// retentionResourceAttributes are the same arguments for the prune resource.
func retentionResourceAttributes() map[string]rsschema.Attribute {
	a := map[string]rsschema.Attribute{
		"storage": rsschema.StringAttribute{MarkdownDescription: "Backup storage to prune.", Required: true, Validators: storageValidators()},
		"node": rsschema.StringAttribute{MarkdownDescription: "Node to prune through. Defaults to the guest's node when `vmid` " +
			"is set, else the first online node with the storage.", Optional: true, Computed: true, Validators: nodeValidators()},
		"vmid": rsschema.Int64Attribute{MarkdownDescription: "Only prune the backups of this guest.", Optional: true, Validators: vmidValidators()},
		"guest_type": rsschema.StringAttribute{MarkdownDescription: "Only prune backups of this guest type: `lxc` or `qemu`.",
			Optional: true, Validators: guestTypeValidators()},
		"keep_all": rsschema.BoolAttribute{MarkdownDescription: "`keep-all`: keep every backup. Conflicts with the keep_* options.", Optional: true},
	}
	for _, k := range keepAttrs {
		a[k.name] = rsschema.Int64Attribute{MarkdownDescription: keepDescription(k), Optional: true,
			Validators: []validator.Int64{int64validator.AtLeast(0)}}
	}
	return a
}

// dryRunErrorDetail adds the fix to PVE's "no prune-backups options" refusal.
func dryRunErrorDetail(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "no prune-backups options configured") {
		msg += "\n\nNo keep_* (or keep_all) is set, so the storage's own prune-backups applies, and the storage has " +
			"none: set keep_* here, or prune-backups on the storage."
	}
	return msg
}
