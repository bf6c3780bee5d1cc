package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

var (
	_ datasource.DataSource              = (*backupJobCoverageDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*backupJobCoverageDataSource)(nil)
	_ datasource.DataSource              = (*backupJobResultsDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*backupJobResultsDataSource)(nil)
)

// --- coverage ------------------------------------------------------------------

// NewBackupJobCoverageDataSource is the factory of proxmoxapp_backup_job_coverage.
func NewBackupJobCoverageDataSource() datasource.DataSource { return &backupJobCoverageDataSource{} }

type backupJobCoverageDataSource struct {
	data *providerData
}

type coverageModel struct {
	ID               types.String       `tfsdk:"id"`
	NotBackedUp      []uncoveredModel   `tfsdk:"not_backed_up"`
	NotBackedUpVMIDs []types.Int64      `tfsdk:"not_backed_up_vmids"`
	CoveredVMIDs     []types.Int64      `tfsdk:"covered_vmids"`
	Jobs             []coverageJobModel `tfsdk:"jobs"`
}

type uncoveredModel struct {
	VMID types.Int64  `tfsdk:"vmid"`
	Type types.String `tfsdk:"type"`
	Name types.String `tfsdk:"name"`
}

type coverageJobModel struct {
	JobID    types.String         `tfsdk:"job_id"`
	Enabled  types.Bool           `tfsdk:"enabled"`
	Schedule types.String         `tfsdk:"schedule"`
	NextRun  types.String         `tfsdk:"next_run"`
	VMIDs    []types.Int64        `tfsdk:"vmids"`
	Guests   []coverageGuestModel `tfsdk:"guests"`
}

type coverageGuestModel struct {
	VMID    types.Int64           `tfsdk:"vmid"`
	Type    types.String          `tfsdk:"type"`
	Name    types.String          `tfsdk:"name"`
	Volumes []coverageVolumeModel `tfsdk:"volumes"`
}

type coverageVolumeModel struct {
	Key      types.String `tfsdk:"key"`
	Volume   types.String `tfsdk:"volume"`
	Included types.Bool   `tfsdk:"included"`
	Reason   types.String `tfsdk:"reason"`
}

func (d *backupJobCoverageDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backup_job_coverage"
}

func (d *backupJobCoverageDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &d.data)...)
}

func guestAttrs() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"vmid": schema.Int64Attribute{MarkdownDescription: "Guest ID.", Computed: true},
		"type": schema.StringAttribute{MarkdownDescription: "`lxc` or `qemu` (`unknown` for a configured guest that no longer exists).", Computed: true},
		"name": schema.StringAttribute{MarkdownDescription: "Guest name (hostname of a container).", Computed: true},
	}
}

func (d *backupJobCoverageDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	guest := guestAttrs()
	guest["volumes"] = schema.ListNestedAttribute{
		MarkdownDescription: "The guest's disks and mount points, and whether its backups include them.",
		Computed:            true,
		NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
			"key":      schema.StringAttribute{MarkdownDescription: "Config key: `rootfs`, `mp0`, `scsi0`, ...", Computed: true},
			"volume":   schema.StringAttribute{MarkdownDescription: "The volume, e.g. `local-lvm:vm-100-disk-0`.", Computed: true},
			"included": schema.BoolAttribute{MarkdownDescription: "Whether backups include this volume.", Computed: true},
			"reason":   schema.StringAttribute{MarkdownDescription: "PVE's reason (`rootfs`, `enabled`, `disabled`, `backup=no`, ...).", Computed: true},
		}},
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Which guests the cluster's backup jobs cover, and which no job covers " +
			"(`/cluster/backup-info/not-backed-up` and each job's `included_volumes`). Use it in a `check` block " +
			"or a precondition to fail when an app is not backed up by any job. Every job counts, enabled or not, " +
			"as in PVE. Guests the token cannot audit (`VM.Audit`) are left out by PVE; needs `Sys.Audit` on `/`.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{MarkdownDescription: "Always `coverage`.", Computed: true},
			"not_backed_up": schema.ListNestedAttribute{
				MarkdownDescription: "Guests no backup job includes, by VM ID.",
				Computed:            true,
				NestedObject:        schema.NestedAttributeObject{Attributes: guestAttrs()},
			},
			"not_backed_up_vmids": schema.ListAttribute{
				MarkdownDescription: "The VM IDs of `not_backed_up`, for `contains(...)`.",
				Computed:            true,
				ElementType:         types.Int64Type,
			},
			"covered_vmids": schema.ListAttribute{
				MarkdownDescription: "VM IDs some job includes (guests that exist), sorted.",
				Computed:            true,
				ElementType:         types.Int64Type,
			},
			"jobs": schema.ListNestedAttribute{
				MarkdownDescription: "Every backup job with the guests it includes now.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"job_id":   schema.StringAttribute{MarkdownDescription: "Job ID.", Computed: true},
					"enabled":  schema.BoolAttribute{MarkdownDescription: "Whether the job is enabled.", Computed: true},
					"schedule": schema.StringAttribute{MarkdownDescription: "The job's schedule.", Computed: true},
					"next_run": schema.StringAttribute{MarkdownDescription: "Next run (RFC 3339), null when none.", Computed: true},
					"vmids":    schema.ListAttribute{MarkdownDescription: "VM IDs the job includes.", Computed: true, ElementType: types.Int64Type},
					"guests": schema.ListNestedAttribute{
						MarkdownDescription: "The guests the job includes, with their volumes.",
						Computed:            true,
						NestedObject:        schema.NestedAttributeObject{Attributes: guest},
					},
				}},
			},
		},
	}
}

func (d *backupJobCoverageDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	c := d.data.client
	un, err := c.GuestsNotBackedUp(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Unable to read backup coverage", err.Error())
		return
	}
	jobs, err := c.ListBackupJobs(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Unable to read backup coverage", err.Error())
		return
	}
	m := coverageModel{ID: types.StringValue("coverage"), NotBackedUp: []uncoveredModel{}, NotBackedUpVMIDs: []types.Int64{},
		CoveredVMIDs: []types.Int64{}, Jobs: []coverageJobModel{}}
	for _, g := range un {
		m.NotBackedUp = append(m.NotBackedUp, uncoveredModel{VMID: types.Int64Value(int64(g.VMID)), Type: types.StringValue(g.Type), Name: types.StringValue(g.Name)})
		m.NotBackedUpVMIDs = append(m.NotBackedUpVMIDs, types.Int64Value(int64(g.VMID)))
	}
	covered := map[int]bool{}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].ID < jobs[j].ID })
	for _, j := range jobs {
		inc, err := c.BackupJobIncluded(ctx, j.ID)
		if errors.Is(err, pve.ErrJobNotFound) {
			continue // removed between the two calls
		}
		if err != nil {
			resp.Diagnostics.AddError("Unable to read backup coverage", err.Error())
			return
		}
		jm := coverageJobModel{JobID: types.StringValue(j.ID), Enabled: types.BoolValue(j.Options["enabled"] != "0"),
			Schedule: types.StringValue(j.Options["schedule"]), NextRun: types.StringNull(), VMIDs: []types.Int64{}, Guests: []coverageGuestModel{}}
		if !j.NextRun.IsZero() {
			jm.NextRun = types.StringValue(j.NextRun.UTC().Format(time.RFC3339))
		}
		for _, g := range inc {
			gm := coverageGuestModel{VMID: types.Int64Value(int64(g.VMID)), Type: types.StringValue(g.Type), Name: types.StringValue(g.Name), Volumes: []coverageVolumeModel{}}
			for _, v := range g.Volumes {
				gm.Volumes = append(gm.Volumes, coverageVolumeModel{Key: types.StringValue(v.Key), Volume: types.StringValue(v.Volume),
					Included: types.BoolValue(v.Included), Reason: types.StringValue(v.Reason)})
			}
			jm.Guests = append(jm.Guests, gm)
			jm.VMIDs = append(jm.VMIDs, types.Int64Value(int64(g.VMID)))
			if g.Type != "unknown" {
				covered[g.VMID] = true
			}
		}
		m.Jobs = append(m.Jobs, jm)
	}
	ids := make([]int, 0, len(covered))
	for id := range covered {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		m.CoveredVMIDs = append(m.CoveredVMIDs, types.Int64Value(int64(id)))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// --- results -------------------------------------------------------------------

// NewBackupJobResultsDataSource is the factory of proxmoxapp_backup_job_results.
func NewBackupJobResultsDataSource() datasource.DataSource { return &backupJobResultsDataSource{} }

type backupJobResultsDataSource struct {
	data *providerData
}

type resultsModel struct {
	ID           types.String                `tfsdk:"id"`
	JobID        types.String                `tfsdk:"job_id"`
	Limit        types.Int64                 `tfsdk:"limit"`
	Scan         types.Int64                 `tfsdk:"scan"`
	Runs         []runModel                  `tfsdk:"runs"`
	Latest       *runModel                   `tfsdk:"latest"`
	LatestByVMID map[string]guestResultModel `tfsdk:"latest_by_vmid"`
}

type runModel struct {
	UPID       types.String       `tfsdk:"upid"`
	Node       types.String       `tfsdk:"node"`
	User       types.String       `tfsdk:"user"`
	StartTime  types.String       `tfsdk:"start_time"`
	EndTime    types.String       `tfsdk:"end_time"`
	Status     types.String       `tfsdk:"status"`
	ExitStatus types.String       `tfsdk:"exit_status"`
	Succeeded  types.Bool         `tfsdk:"succeeded"`
	Guests     []guestResultModel `tfsdk:"guests"`
}

type guestResultModel struct {
	VMID      types.Int64  `tfsdk:"vmid"`
	Status    types.String `tfsdk:"status"`
	Error     types.String `tfsdk:"error"`
	VolID     types.String `tfsdk:"volid"`
	UPID      types.String `tfsdk:"upid"`
	StartTime types.String `tfsdk:"start_time"`
}

func (d *backupJobResultsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_backup_job_results"
}

func (d *backupJobResultsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	resp.Diagnostics.Append(configureData(req.ProviderData, &d.data)...)
}

func guestResultAttrs() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"vmid":       schema.Int64Attribute{MarkdownDescription: "Guest ID.", Computed: true},
		"status":     schema.StringAttribute{MarkdownDescription: "`ok`, `failed`, or `running` (no outcome logged yet).", Computed: true},
		"error":      schema.StringAttribute{MarkdownDescription: "vzdump's error for a failed guest (`Backup of VM N failed - ...`).", Computed: true},
		"volid":      schema.StringAttribute{MarkdownDescription: "Volume ID of the archive the log names (empty when it names none).", Computed: true},
		"upid":       schema.StringAttribute{MarkdownDescription: "The vzdump task.", Computed: true},
		"start_time": schema.StringAttribute{MarkdownDescription: "When the task started (RFC 3339).", Computed: true},
	}
}

func runAttrs() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"upid":        schema.StringAttribute{MarkdownDescription: "The vzdump task (UPID).", Computed: true},
		"node":        schema.StringAttribute{MarkdownDescription: "Node the task ran on (a job runs on every node that has guests of it).", Computed: true},
		"user":        schema.StringAttribute{MarkdownDescription: "Who ran it: `root@pam` for the scheduler.", Computed: true},
		"start_time":  schema.StringAttribute{MarkdownDescription: "Start (RFC 3339).", Computed: true},
		"end_time":    schema.StringAttribute{MarkdownDescription: "End (RFC 3339); null while running.", Computed: true},
		"status":      schema.StringAttribute{MarkdownDescription: "`running`, `ok`, `warnings` or `failed`.", Computed: true},
		"exit_status": schema.StringAttribute{MarkdownDescription: "PVE's exit status (`OK`, `WARNINGS: 1`, `job errors`, ...); empty while running.", Computed: true},
		"succeeded":   schema.BoolAttribute{MarkdownDescription: "Finished with `OK` or only warnings.", Computed: true},
		"guests": schema.ListNestedAttribute{
			MarkdownDescription: "Outcome per guest, from the task log.",
			Computed:            true,
			NestedObject:        schema.NestedAttributeObject{Attributes: guestResultAttrs()},
		},
	}
}

func (d *backupJobResultsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The recent runs of a backup job, newest first, read from the vzdump tasks of every online node: " +
			"start, end, outcome per guest and the archive each produced. PVE does not record a job's ID in its tasks, " +
			"so a run is recognised by its vzdump command line: the same guests and options as the job has now (runs " +
			"made before the job's last change are not reported, and two jobs with identical settings share their runs). " +
			"Reading other users' tasks (the scheduler runs as `root@pam`) needs `Sys.Audit` on the nodes.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{MarkdownDescription: "The job ID.", Computed: true},
			"job_id": schema.StringAttribute{
				MarkdownDescription: "ID of the backup job.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.RegexMatches(jobIDPattern, "must be a backup job ID")},
			},
			"limit": schema.Int64Attribute{
				MarkdownDescription: "Most runs to report (default 10).",
				Optional:            true,
				Validators:          []validator.Int64{int64validator.Between(1, 1000)},
			},
			"scan": schema.Int64Attribute{
				MarkdownDescription: "Most vzdump tasks to read per node, newest first (default 50).",
				Optional:            true,
				Validators:          []validator.Int64{int64validator.Between(1, 10000)},
			},
			"runs": schema.ListNestedAttribute{
				MarkdownDescription: "The runs, newest first.",
				Computed:            true,
				NestedObject:        schema.NestedAttributeObject{Attributes: runAttrs()},
			},
			"latest": schema.SingleNestedAttribute{
				MarkdownDescription: "The newest run; null when the job has not run.",
				Computed:            true,
				Attributes:          runAttrs(),
			},
			"latest_by_vmid": schema.MapNestedAttribute{
				MarkdownDescription: "For each guest (key: the VM ID as a string), its outcome in the newest run that included it: " +
					"`data.proxmoxapp_backup_job_results.x.latest_by_vmid[\"100\"].status == \"ok\"`.",
				Computed:     true,
				NestedObject: schema.NestedAttributeObject{Attributes: guestResultAttrs()},
			},
		},
	}
}

func runStatus(r pve.BackupJobRun) string {
	switch {
	case r.Running:
		return "running"
	case r.ExitStatus == "OK":
		return "ok"
	case r.Succeeded():
		return "warnings"
	}
	return "failed"
}

func (d *backupJobResultsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m resultsModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	limit, scan := 10, 50
	if !m.Limit.IsNull() {
		limit = int(m.Limit.ValueInt64())
	}
	if !m.Scan.IsNull() {
		scan = int(m.Scan.ValueInt64())
	}
	id := m.JobID.ValueString()
	job, err := d.data.client.GetBackupJob(ctx, id)
	if err != nil {
		resp.Diagnostics.AddError("Unable to read backup job", err.Error())
		return
	}
	runs, err := d.data.client.BackupJobRuns(ctx, job, limit, scan)
	if err != nil {
		resp.Diagnostics.AddError("Unable to read the runs of backup job "+strconv.Quote(id), err.Error())
		return
	}
	m.ID = types.StringValue(id)
	m.Runs = []runModel{}
	m.LatestByVMID = map[string]guestResultModel{}
	for _, r := range runs {
		rm := runModel{UPID: types.StringValue(r.UPID), Node: types.StringValue(r.Node), User: types.StringValue(r.User),
			StartTime: types.StringValue(r.StartTime.UTC().Format(time.RFC3339)), EndTime: types.StringNull(),
			Status: types.StringValue(runStatus(r)), ExitStatus: types.StringValue(r.ExitStatus), Succeeded: types.BoolValue(r.Succeeded()),
			Guests: []guestResultModel{}}
		if !r.EndTime.IsZero() {
			rm.EndTime = types.StringValue(r.EndTime.UTC().Format(time.RFC3339))
		}
		for _, g := range r.Guests {
			gm := guestResultModel{VMID: types.Int64Value(int64(g.VMID)), Status: types.StringValue(g.Status),
				Error: types.StringValue(g.Error), VolID: types.StringValue(g.VolID), UPID: rm.UPID, StartTime: rm.StartTime}
			rm.Guests = append(rm.Guests, gm)
			if _, seen := m.LatestByVMID[strconv.Itoa(g.VMID)]; !seen {
				m.LatestByVMID[strconv.Itoa(g.VMID)] = gm // runs are newest first
			}
		}
		m.Runs = append(m.Runs, rm)
	}
	if len(m.Runs) > 0 {
		latest := m.Runs[0]
		m.Latest = &latest
	}
	if len(runs) == 0 {
		resp.Diagnostics.AddWarning("No runs found", fmt.Sprintf("backup job %q has no run among the last %d vzdump tasks of each node: "+
			"it has not run yet, or its settings changed since its last run.", id, scan))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
