package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

var (
	_ resource.Resource                   = (*backupJobResource)(nil)
	_ resource.ResourceWithConfigure      = (*backupJobResource)(nil)
	_ resource.ResourceWithImportState    = (*backupJobResource)(nil)
	_ resource.ResourceWithValidateConfig = (*backupJobResource)(nil)
)

// jobIDPattern is PVE's pve-configid (the section-config id of jobs.cfg).
var jobIDPattern = regexp.MustCompile(`^(?i)[a-z][a-z0-9_-]+$`)

var (
	jobCompressions         = []string{"zstd", "gzip", "lzo", "none"}
	jobMailNotifications    = []string{"always", "failure"}
	jobNotificationModes    = []string{"auto", "legacy-sendmail", "notification-system"}
	jobPBSDetectionModes    = []string{"legacy", "data", "metadata"}
	retentionKeys           = []string{"keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"}
	backupJobManagedPVEKeys = []string{"vmid", "all", "exclude", "pool", "node", "storage", "mode", "compress", "prune-backups",
		"notes-template", "protected", "mailto", "mailnotification", "notification-mode", "bwlimit", "zstd", "ionice",
		"fleecing", "performance", "repeat-missed", "comment", "pbs-change-detection-mode"}
)

// NewBackupJobResource is the factory of proxmoxapp_backup_job.
func NewBackupJobResource() resource.Resource { return &backupJobResource{} }

type backupJobResource struct {
	data *providerData
}

type retentionModel struct {
	KeepAll     types.Bool  `tfsdk:"keep_all"`
	KeepLast    types.Int64 `tfsdk:"keep_last"`
	KeepHourly  types.Int64 `tfsdk:"keep_hourly"`
	KeepDaily   types.Int64 `tfsdk:"keep_daily"`
	KeepWeekly  types.Int64 `tfsdk:"keep_weekly"`
	KeepMonthly types.Int64 `tfsdk:"keep_monthly"`
	KeepYearly  types.Int64 `tfsdk:"keep_yearly"`
}

func (r *retentionModel) values() map[string]types.Int64 {
	return map[string]types.Int64{"keep_last": r.KeepLast, "keep_hourly": r.KeepHourly, "keep_daily": r.KeepDaily,
		"keep_weekly": r.KeepWeekly, "keep_monthly": r.KeepMonthly, "keep_yearly": r.KeepYearly}
}

type fleecingModel struct {
	Enabled types.Bool   `tfsdk:"enabled"`
	Storage types.String `tfsdk:"storage"`
}

type performanceModel struct {
	MaxWorkers    types.Int64 `tfsdk:"max_workers"`
	PBSEntriesMax types.Int64 `tfsdk:"pbs_entries_max"`
}

type backupJobModel struct {
	ID                     types.String      `tfsdk:"id"`
	JobID                  types.String      `tfsdk:"job_id"`
	Schedule               types.String      `tfsdk:"schedule"`
	Enabled                types.Bool        `tfsdk:"enabled"`
	Comment                types.String      `tfsdk:"comment"`
	VMIDs                  types.Set         `tfsdk:"vmids"`
	All                    types.Bool        `tfsdk:"all"`
	Exclude                types.Set         `tfsdk:"exclude"`
	Pool                   types.String      `tfsdk:"pool"`
	Node                   types.String      `tfsdk:"node"`
	Storage                types.String      `tfsdk:"storage"`
	Mode                   types.String      `tfsdk:"mode"`
	Compress               types.String      `tfsdk:"compress"`
	Retention              *retentionModel   `tfsdk:"retention"`
	NotesTemplate          types.String      `tfsdk:"notes_template"`
	Protected              types.Bool        `tfsdk:"protected"`
	MailTo                 types.List        `tfsdk:"mail_to"`
	MailNotification       types.String      `tfsdk:"mail_notification"`
	NotificationMode       types.String      `tfsdk:"notification_mode"`
	BandwidthLimit         types.Int64       `tfsdk:"bandwidth_limit"`
	ZstdThreads            types.Int64       `tfsdk:"zstd_threads"`
	IOPriority             types.Int64       `tfsdk:"io_priority"`
	Fleecing               *fleecingModel    `tfsdk:"fleecing"`
	Performance            *performanceModel `tfsdk:"performance"`
	PBSChangeDetectionMode types.String      `tfsdk:"pbs_change_detection_mode"`
	RepeatMissed           types.Bool        `tfsdk:"repeat_missed"`
	NextRun                types.String      `tfsdk:"next_run"`
}

func (r *backupJobResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backup_job"
}

func (r *backupJobResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &r.data)...)
}

// Schema is declarative, one entry per attribute with its documentation, so
// it is as long as the resource has arguments.
func (r *backupJobResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keepInt := func(desc string, v ...validator.Int64) schema.Int64Attribute {
		return schema.Int64Attribute{MarkdownDescription: desc, Optional: true, Validators: v}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A scheduled backup job that Proxmox VE runs itself (`/cluster/backup`, stored in " +
			"`jobs.cfg`, run by `pvescheduler`): which guests, when, where to, and how many backups to keep. " +
			"Every setting changes in place; an optional setting removed from the configuration is removed from " +
			"the job on PVE (it falls back to PVE's default, or to the storage's retention). Settings this resource " +
			"does not manage (for example `exclude-path`, `script`) are left as they are. Needs `Sys.Modify` on `/` " +
			"and `Datastore.Allocate` on the storage (`Sys.Audit` on `/` to read).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The job ID (same as `job_id`).",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"job_id": schema.StringAttribute{
				MarkdownDescription: "ID of the job in PVE: a letter, then letters, digits, `-` or `_` (at least two characters). " +
					"Changing it replaces the job.",
				Required: true,
				Validators: []validator.String{
					stringvalidator.LengthBetween(2, 50),
					stringvalidator.RegexMatches(jobIDPattern, "must start with a letter and hold only letters, digits, '-' and '_'"),
				},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"schedule": schema.StringAttribute{
				MarkdownDescription: "When PVE runs the job, as a PVE calendar event (a subset of systemd's): `daily`, " +
					"`02:30`, `mon..fri 21:00`, `sat 03:00`, `*/15`, `2025-12-24 18:00`, ... in the node's time zone " +
					"(append ` UTC` for UTC). Checked at plan time with PVE's grammar.",
				Required:   true,
				Validators: []validator.String{calendarEventValidator{}, stringvalidator.LengthAtMost(128)},
			},
			"enabled": schema.BoolAttribute{
				MarkdownDescription: "Whether the scheduler runs the job. Defaults to `true`.",
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(true),
			},
			"comment": schema.StringAttribute{
				MarkdownDescription: "Description of the job (at most 512 characters).",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.LengthBetween(1, 512)},
			},
			"vmids": schema.SetAttribute{
				MarkdownDescription: "The guests to back up. Exactly one of `vmids`, `all` and `pool` selects the guests.",
				Optional:            true,
				ElementType:         types.Int64Type,
				Validators: []validator.Set{setvalidator.SizeAtLeast(1),
					setvalidator.ValueInt64sAre(int64validator.Between(minVMID, maxVMID))},
			},
			"all": schema.BoolAttribute{
				MarkdownDescription: "Back up every guest of the cluster (of `node`, when set), except `exclude`. Set it to `true` or leave it out.",
				Optional:            true,
			},
			"exclude": schema.SetAttribute{
				MarkdownDescription: "Guests to leave out when `all = true`.",
				Optional:            true,
				ElementType:         types.Int64Type,
				Validators: []validator.Set{setvalidator.SizeAtLeast(1),
					setvalidator.ValueInt64sAre(int64validator.Between(minVMID, maxVMID))},
			},
			"pool": schema.StringAttribute{
				MarkdownDescription: "Back up the guests of this resource pool (its members when the job runs).",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"node": schema.StringAttribute{
				MarkdownDescription: "Run the job only on this node (and so back up only guests on it). Unset: every node backs up its own guests.",
				Optional:            true,
				Validators:          nodeValidators(),
			},
			"storage": schema.StringAttribute{
				MarkdownDescription: "Storage the archives are written to (it must allow `backup` content).",
				Required:            true,
				Validators:          storageValidators(),
			},
			"mode": schema.StringAttribute{
				MarkdownDescription: "Backup mode: `snapshot`, `suspend` or `stop`. Unset: PVE's default (`snapshot`).",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.OneOf(backupModes...)},
			},
			"compress": schema.StringAttribute{
				MarkdownDescription: "Compression: `zstd`, `gzip`, `lzo` or `none`. Unset: PVE's default (none). " +
					"Ignored by Proxmox Backup Server storages.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf(jobCompressions...)},
			},
			"retention": schema.SingleNestedAttribute{
				MarkdownDescription: "How many backups of each guest to keep (vzdump `prune-backups`); older ones are " +
					"pruned after each backup. Unset: the storage's retention applies. `keep_all = true` keeps every " +
					"backup and cannot be combined with the `keep_*` counts.",
				Optional: true,
				Attributes: map[string]schema.Attribute{
					"keep_all": schema.BoolAttribute{
						MarkdownDescription: "Keep every backup. Set it to `true` or leave it out.",
						Optional:            true,
					},
					"keep_last":    keepInt("Keep the last N backups.", int64validator.AtLeast(1)),
					"keep_hourly":  keepInt("Keep the last backup of each of the last N hours that have one.", int64validator.AtLeast(1)),
					"keep_daily":   keepInt("Keep the last backup of each of the last N days that have one.", int64validator.AtLeast(1)),
					"keep_weekly":  keepInt("Keep the last backup of each of the last N weeks that have one.", int64validator.AtLeast(1)),
					"keep_monthly": keepInt("Keep the last backup of each of the last N months that have one.", int64validator.AtLeast(1)),
					"keep_yearly":  keepInt("Keep the last backup of each of the last N years that have one.", int64validator.AtLeast(1)),
				},
			},
			"notes_template": schema.StringAttribute{
				MarkdownDescription: "Notes for each backup; `{{cluster}}`, `{{guestname}}`, `{{node}}` and `{{vmid}}` are " +
					"filled in by vzdump. One line of at most 1024 characters (a line break is written `\\n`).",
				Optional:   true,
				Validators: []validator.String{notesValidator{}},
			},
			"protected": schema.BoolAttribute{
				MarkdownDescription: "Mark the job's backups as protected (never pruned or deleted until unprotected).",
				Optional:            true,
			},
			"mail_to": schema.ListAttribute{
				MarkdownDescription: "E-mail addresses or users to notify (vzdump `mailto`; deprecated in PVE 8.1+ in favour of notification targets).",
				Optional:            true,
				ElementType:         types.StringType,
				Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1))},
			},
			"mail_notification": schema.StringAttribute{
				MarkdownDescription: "When to send mail: `always` or `failure` (legacy mail notifications).",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.OneOf(jobMailNotifications...)},
			},
			"notification_mode": schema.StringAttribute{
				MarkdownDescription: "`auto`, `legacy-sendmail` or `notification-system`.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.OneOf(jobNotificationModes...)},
			},
			"bandwidth_limit": schema.Int64Attribute{
				MarkdownDescription: "I/O bandwidth limit in KiB/s (vzdump `bwlimit`); 0 means unlimited. Needs `Sys.Modify` on `/` for non-root users.",
				Optional:            true,
				Validators:          []validator.Int64{int64validator.AtLeast(0)},
			},
			"zstd_threads": schema.Int64Attribute{
				MarkdownDescription: "Threads for zstd compression; 0 means half of the node's cores.",
				Optional:            true,
				Validators:          []validator.Int64{int64validator.Between(0, 256)},
			},
			"io_priority": schema.Int64Attribute{
				MarkdownDescription: "I/O priority with the BFQ scheduler (vzdump `ionice`, 0–8; 8 is idle).",
				Optional:            true,
				Validators:          []validator.Int64{int64validator.Between(0, 8)},
			},
			"fleecing": schema.SingleNestedAttribute{
				MarkdownDescription: "Backup fleecing (VMs only): cache blocks the guest overwrites during the backup on a fast local storage.",
				Optional:            true,
				Attributes: map[string]schema.Attribute{
					"enabled": schema.BoolAttribute{MarkdownDescription: "Use fleecing.", Optional: true},
					"storage": schema.StringAttribute{MarkdownDescription: "Storage for the fleecing images (required when enabled).",
						Optional: true, Validators: storageValidators()},
				},
			},
			"performance": schema.SingleNestedAttribute{
				MarkdownDescription: "Performance settings.",
				Optional:            true,
				Attributes: map[string]schema.Attribute{
					"max_workers": schema.Int64Attribute{MarkdownDescription: "VMs: IO workers at the same time (1–256).",
						Optional: true, Validators: []validator.Int64{int64validator.Between(1, 256)}},
					"pbs_entries_max": schema.Int64Attribute{MarkdownDescription: "Containers to Proxmox Backup Server: entries held in memory.",
						Optional: true, Validators: []validator.Int64{int64validator.AtLeast(1)}},
				},
			},
			"pbs_change_detection_mode": schema.StringAttribute{
				MarkdownDescription: "How container backups to Proxmox Backup Server find changed files: `legacy`, `data` or `metadata`.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.OneOf(jobPBSDetectionModes...)},
			},
			"repeat_missed": schema.BoolAttribute{
				MarkdownDescription: "Run a run missed while the scheduler was down as soon as possible.",
				Optional:            true,
			},
			"next_run": schema.StringAttribute{
				MarkdownDescription: "When PVE will run the job next (RFC 3339, as PVE reports it); null when it will not run (disabled, or a schedule with no future date).",
				Computed:            true,
			},
		},
	}
}

// calendarEventValidator checks a schedule with PVE's calendar-event grammar.
type calendarEventValidator struct{}

func (calendarEventValidator) Description(context.Context) string {
	return "a Proxmox VE calendar event such as daily, 02:30 or mon..fri 21:00"
}

func (v calendarEventValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (calendarEventValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	if err := pve.ValidateCalendarEvent(s); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid schedule",
			fmt.Sprintf("schedule %q is not a Proxmox VE calendar event (PVE says: %s). Use a calendar event such as "+
				"\"daily\", \"02:30\", \"mon..fri 21:00\" or \"sat 03:00\"; cron lines are not accepted.", s, err))
	}
}

func (r *backupJobResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m backupJobModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if m.VMIDs.IsUnknown() || m.All.IsUnknown() || m.Pool.IsUnknown() {
		return
	}
	var chosen []string
	if !m.VMIDs.IsNull() {
		chosen = append(chosen, "vmids")
	}
	if !m.All.IsNull() {
		if !m.All.ValueBool() {
			resp.Diagnostics.AddAttributeError(path.Root("all"), "Invalid selection",
				"all = false selects nothing: set all = true to back up every guest, or leave all out and use vmids or pool.")
			return
		}
		chosen = append(chosen, "all")
	}
	if !m.Pool.IsNull() {
		chosen = append(chosen, "pool")
	}
	switch {
	case len(chosen) == 0:
		resp.Diagnostics.AddAttributeError(path.Root("vmids"), "No guests selected",
			"a backup job needs exactly one of vmids (a list of guests), all = true (every guest) or pool (a resource pool).")
	case len(chosen) > 1:
		resp.Diagnostics.AddAttributeError(path.Root(chosen[1]), "Conflicting guest selection",
			fmt.Sprintf("%s and %s are both set; PVE selects guests by exactly one of vmids, all and pool (it rejects %s with \"option conflicts with option 'vmid'\"). Keep one.",
				chosen[0], chosen[1], chosen[1]))
	}
	if !m.Exclude.IsNull() && !m.Exclude.IsUnknown() && (m.All.IsNull() || !m.All.ValueBool()) {
		resp.Diagnostics.AddAttributeError(path.Root("exclude"), "exclude needs all = true",
			"exclude leaves guests out of all = true; with vmids, list only the guests to back up.")
	}
	if rt := m.Retention; rt != nil {
		if !rt.KeepAll.IsNull() && !rt.KeepAll.IsUnknown() {
			if !rt.KeepAll.ValueBool() {
				resp.Diagnostics.AddAttributeError(path.Root("retention").AtName("keep_all"), "Invalid retention",
					"retention.keep_all = false has no meaning: set keep_all = true to keep every backup, or leave it out and set keep_* counts.")
			}
			for _, k := range retentionKeys {
				if v := rt.values()[k]; !v.IsNull() && rt.KeepAll.ValueBool() {
					resp.Diagnostics.AddAttributeError(path.Root("retention").AtName("keep_all"), "Invalid retention",
						fmt.Sprintf("retention.keep_all = true conflicts with retention.%s = %s (PVE: \"keep-all cannot be set together with other options.\"). "+
							"Remove keep_all to prune by the keep_* counts, or remove the counts to keep every backup.", k, v.String()))
					break
				}
			}
		} else if rt.KeepAll.IsNull() {
			empty := true
			for _, v := range rt.values() {
				if !v.IsNull() {
					empty = false
				}
			}
			if empty {
				resp.Diagnostics.AddAttributeError(path.Root("retention"), "Empty retention",
					"retention sets nothing, which PVE reads as keep-all. Set keep_all = true, or keep_* counts such as keep_daily = 7, or remove retention to use the storage's.")
			}
		}
	}
	if f := m.Fleecing; f != nil && !f.Enabled.IsUnknown() && f.Enabled.ValueBool() && f.Storage.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("fleecing").AtName("storage"), "Fleecing storage missing",
			"fleecing.enabled = true needs fleecing.storage (PVE: \"'storage' parameter is required when 'enabled' is set\").")
	}
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func int64Set(ctx context.Context, s types.Set, diags *diag.Diagnostics) string {
	var ids []int64
	diags.Append(s.ElementsAs(ctx, &ids, false)...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

// options renders the model as PVE job options (wire values).
func (m *backupJobModel) options(ctx context.Context) (map[string]string, diag.Diagnostics) {
	var diags diag.Diagnostics
	o := map[string]string{"schedule": m.Schedule.ValueString(), "enabled": b01(m.Enabled.ValueBool()), "storage": m.Storage.ValueString()}
	setStr := func(k string, v types.String) {
		if !v.IsNull() && !v.IsUnknown() {
			o[k] = v.ValueString()
		}
	}
	setInt := func(k string, v types.Int64) {
		if !v.IsNull() && !v.IsUnknown() {
			o[k] = strconv.FormatInt(v.ValueInt64(), 10)
		}
	}
	setBool := func(k string, v types.Bool) {
		if !v.IsNull() && !v.IsUnknown() {
			o[k] = b01(v.ValueBool())
		}
	}
	setStr("comment", m.Comment)
	if !m.VMIDs.IsNull() {
		o["vmid"] = int64Set(ctx, m.VMIDs, &diags)
	}
	if m.All.ValueBool() {
		o["all"] = "1"
	}
	if !m.Exclude.IsNull() {
		o["exclude"] = int64Set(ctx, m.Exclude, &diags)
	}
	setStr("pool", m.Pool)
	setStr("node", m.Node)
	setStr("mode", m.Mode)
	if !m.Compress.IsNull() {
		c := m.Compress.ValueString()
		if c == "none" {
			c = "0"
		}
		o["compress"] = c
	}
	if m.Retention != nil {
		o["prune-backups"] = m.Retention.propertyString()
	}
	setStr("notes-template", m.NotesTemplate)
	setBool("protected", m.Protected)
	if !m.MailTo.IsNull() {
		var to []string
		diags.Append(m.MailTo.ElementsAs(ctx, &to, false)...)
		o["mailto"] = strings.Join(to, ",")
	}
	setStr("mailnotification", m.MailNotification)
	setStr("notification-mode", m.NotificationMode)
	setInt("bwlimit", m.BandwidthLimit)
	setInt("zstd", m.ZstdThreads)
	setInt("ionice", m.IOPriority)
	if v := m.Fleecing.propertyString(); v != "" {
		o["fleecing"] = v
	}
	if v := m.Performance.propertyString(); v != "" {
		o["performance"] = v
	}
	setStr("pbs-change-detection-mode", m.PBSChangeDetectionMode)
	setBool("repeat-missed", m.RepeatMissed)
	return o, diags
}

// propertyString is the retention as PVE's prune-backups property string.
func (rt *retentionModel) propertyString() string {
	var parts []string
	if rt.KeepAll.ValueBool() {
		parts = append(parts, "keep-all=1")
	}
	for _, k := range retentionKeys {
		if v := rt.values()[k]; !v.IsNull() {
			parts = append(parts, strings.ReplaceAll(k, "_", "-")+"="+strconv.FormatInt(v.ValueInt64(), 10))
		}
	}
	return pve.NormalizePropertyString(strings.Join(parts, ","))
}

// propertyString is the fleecing setting as PVE's property string, "" when
// nothing is set.
func (f *fleecingModel) propertyString() string {
	if f == nil {
		return ""
	}
	var parts []string
	if !f.Enabled.IsNull() {
		parts = append(parts, "enabled="+b01(f.Enabled.ValueBool()))
	}
	if !f.Storage.IsNull() {
		parts = append(parts, "storage="+f.Storage.ValueString())
	}
	return pve.NormalizePropertyString(strings.Join(parts, ","))
}

// propertyString is the performance setting as PVE's property string, ""
// when nothing is set.
func (p *performanceModel) propertyString() string {
	if p == nil {
		return ""
	}
	var parts []string
	if !p.MaxWorkers.IsNull() {
		parts = append(parts, "max-workers="+strconv.FormatInt(p.MaxWorkers.ValueInt64(), 10))
	}
	if !p.PBSEntriesMax.IsNull() {
		parts = append(parts, "pbs-entries-max="+strconv.FormatInt(p.PBSEntriesMax.ValueInt64(), 10))
	}
	return pve.NormalizePropertyString(strings.Join(parts, ","))
}

func propertyMap(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

func int64SetValue(list string) (types.Set, diag.Diagnostics) {
	var elems []attr.Value
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			var d diag.Diagnostics
			d.AddError("Unexpected guest list from PVE", fmt.Sprintf("%q is not a VM ID list", list))
			return types.SetNull(types.Int64Type), d
		}
		elems = append(elems, types.Int64Value(n))
	}
	return types.SetValue(types.Int64Type, elems)
}

func optString(o map[string]string, k string) types.String {
	if v, ok := o[k]; ok && v != "" {
		return types.StringValue(v)
	}
	return types.StringNull()
}

func optInt(o map[string]string, k string) types.Int64 {
	if v, ok := o[k]; ok && v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return types.Int64Value(n)
		}
	}
	return types.Int64Null()
}

func optBool(o map[string]string, k string) types.Bool {
	if v, ok := o[k]; ok && v != "" {
		return types.BoolValue(v == "1" || v == "true")
	}
	return types.BoolNull()
}

// apply sets the model from the job PVE holds.
func (m *backupJobModel) apply(j *pve.BackupJob) diag.Diagnostics {
	var diags diag.Diagnostics
	o := j.Options
	m.ID, m.JobID = types.StringValue(j.ID), types.StringValue(j.ID)
	m.Schedule = types.StringValue(o["schedule"])
	m.Enabled = types.BoolValue(o["enabled"] != "0")
	m.Comment = optString(o, "comment")
	m.VMIDs, m.Exclude = types.SetNull(types.Int64Type), types.SetNull(types.Int64Type)
	if v := o["vmid"]; v != "" {
		s, d := int64SetValue(v)
		diags.Append(d...)
		m.VMIDs = s
	}
	if v := o["exclude"]; v != "" {
		s, d := int64SetValue(v)
		diags.Append(d...)
		m.Exclude = s
	}
	m.All = types.BoolNull()
	if o["all"] == "1" || o["exclude"] != "" && o["pool"] == "" {
		m.All = types.BoolValue(true)
	}
	m.Pool = optString(o, "pool")
	m.Node = optString(o, "node")
	m.Storage = optString(o, "storage")
	m.Mode = optString(o, "mode")
	m.Compress = optString(o, "compress")
	switch o["compress"] {
	case "0":
		m.Compress = types.StringValue("none")
	case "1":
		m.Compress = types.StringValue("lzo")
	}
	m.Retention = nil
	if pb := o["prune-backups"]; pb != "" {
		pm := propertyMap(pb)
		rt := &retentionModel{KeepAll: types.BoolNull()}
		if pm["keep-all"] == "1" {
			rt.KeepAll = types.BoolValue(true)
		}
		rt.KeepLast, rt.KeepHourly, rt.KeepDaily = optInt(pm, "keep-last"), optInt(pm, "keep-hourly"), optInt(pm, "keep-daily")
		rt.KeepWeekly, rt.KeepMonthly, rt.KeepYearly = optInt(pm, "keep-weekly"), optInt(pm, "keep-monthly"), optInt(pm, "keep-yearly")
		m.Retention = rt
	}
	m.NotesTemplate = optString(o, "notes-template")
	m.Protected = optBool(o, "protected")
	m.MailTo = types.ListNull(types.StringType)
	if v := o["mailto"]; v != "" {
		var elems []attr.Value
		for _, a := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
			elems = append(elems, types.StringValue(a))
		}
		l, d := types.ListValue(types.StringType, elems)
		diags.Append(d...)
		m.MailTo = l
	}
	m.MailNotification = optString(o, "mailnotification")
	m.NotificationMode = optString(o, "notification-mode")
	m.BandwidthLimit = optInt(o, "bwlimit")
	m.ZstdThreads = optInt(o, "zstd")
	m.IOPriority = optInt(o, "ionice")
	m.Fleecing = nil
	if v := o["fleecing"]; v != "" {
		pm := propertyMap(v)
		m.Fleecing = &fleecingModel{Enabled: optBool(pm, "enabled"), Storage: optString(pm, "storage")}
	}
	m.Performance = nil
	if v := o["performance"]; v != "" {
		pm := propertyMap(v)
		m.Performance = &performanceModel{MaxWorkers: optInt(pm, "max-workers"), PBSEntriesMax: optInt(pm, "pbs-entries-max")}
	}
	m.PBSChangeDetectionMode = optString(o, "pbs-change-detection-mode")
	m.RepeatMissed = optBool(o, "repeat-missed")
	m.NextRun = types.StringNull()
	if !j.NextRun.IsZero() {
		m.NextRun = types.StringValue(j.NextRun.UTC().Format(time.RFC3339))
	}
	return diags
}

func (r *backupJobResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan backupJobModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	opts, diags := plan.options(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := plan.JobID.ValueString()
	tflog.Info(ctx, "creating backup job", map[string]any{"job_id": id, "schedule": opts["schedule"]})
	if err := r.data.client.CreateBackupJob(ctx, id, opts, nil); err != nil {
		resp.Diagnostics.AddError("Unable to create backup job", err.Error())
		return
	}
	r.readInto(ctx, id, &plan, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *backupJobResource) readInto(ctx context.Context, id string, m *backupJobModel, diags *diag.Diagnostics) {
	j, err := r.data.client.GetBackupJob(ctx, id)
	if err != nil {
		diags.AddError("Unable to read backup job", err.Error())
		return
	}
	diags.Append(m.apply(j)...)
}

func (r *backupJobResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state backupJobModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := state.ID.ValueString()
	j, err := r.data.client.GetBackupJob(ctx, id)
	if errors.Is(err, pve.ErrJobNotFound) {
		resp.Diagnostics.AddWarning("Backup job removed outside Terraform",
			fmt.Sprintf("backup job %q no longer exists on PVE; the next apply creates it again.", id))
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Unable to read backup job", err.Error())
		return
	}
	resp.Diagnostics.Append(state.apply(j)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *backupJobResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan backupJobModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	opts, diags := plan.options(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := plan.JobID.ValueString()
	current, err := r.data.client.GetBackupJob(ctx, id)
	if err != nil {
		resp.Diagnostics.AddError("Unable to read backup job", err.Error())
		return
	}
	// settings the configuration no longer has are removed on PVE
	var remove []string
	for _, k := range backupJobManagedPVEKeys {
		if _, has := current.Options[k]; has {
			if _, want := opts[k]; !want {
				remove = append(remove, k)
			}
		}
	}
	tflog.Info(ctx, "updating backup job", map[string]any{"job_id": id, "delete": strings.Join(remove, ",")})
	if err := r.data.client.UpdateBackupJob(ctx, id, opts, nil, remove); err != nil {
		resp.Diagnostics.AddError("Unable to update backup job", err.Error())
		return
	}
	r.readInto(ctx, id, &plan, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *backupJobResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state backupJobModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.data.client.DeleteBackupJob(ctx, state.ID.ValueString())
	if err != nil && !errors.Is(err, pve.ErrJobNotFound) {
		resp.Diagnostics.AddError("Unable to delete backup job", err.Error())
	}
}

func (r *backupJobResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !jobIDPattern.MatchString(req.ID) {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("expected a backup job ID such as \"backup-1a2b3c4d\" (see Datacenter → Backup, or GET /cluster/backup), got %q.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("job_id"), req.ID)...)
}
