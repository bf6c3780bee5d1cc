package pve

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestShellSplitUndoesShellquote(t *testing.T) {
	got, ok := shellSplit(`vzdump 100 101 --notes-template '{{guestname}} it'"'"'s' --storage nas`)
	want := []string{"vzdump", "100", "101", "--notes-template", "{{guestname}} it's", "--storage", "nas"}
	if !ok || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
}

func TestJobCommandMatching(t *testing.T) {
	job := &BackupJob{ID: "n1", Options: map[string]string{"schedule": "02:30", "enabled": "1", "vmid": "101,100", "storage": "nas",
		"prune-backups": "keep-last=2,keep-daily=7", "comment": "x"}}
	cmd, ok := vzdumpCommandLine([]string{"INFO: starting new backup job: vzdump 100 101 --prune-backups keep-daily=7,keep-last=2 --storage nas --quiet 1"})
	if !ok || !sameJobCommand(jobCommandOptions(job), cmd) {
		t.Fatalf("no match: %v vs %v", jobCommandOptions(job), cmd)
	}
	other, _ := vzdumpCommandLine([]string{"INFO: starting new backup job: vzdump 100 --storage nas"})
	if sameJobCommand(jobCommandOptions(job), other) {
		t.Fatal("a one-off backup of 100 matched the job")
	}
}

func TestSimBackupJobLifecycle(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	sim.SetClock(time.Date(2031, 5, 6, 2, 29, 0, 0, time.Local))
	opts := map[string]string{"schedule": "02:30", "vmid": "100,101", "storage": "nas", "mode": "snapshot", "prune-backups": "keep-last=3", "enabled": "1"}
	if err := c.CreateBackupJob(ctx, "nightly", opts, nil); err != nil {
		t.Fatal(err)
	}
	j, err := c.GetBackupJob(ctx, "nightly")
	if err != nil {
		t.Fatal(err)
	}
	if j.Options["prune-backups"] != "keep-last=3" || j.Options["vmid"] != "100,101" || j.NextRun.IsZero() {
		t.Fatalf("job = %+v", j)
	}
	if got := j.NextRun.In(time.Local).Format("15:04"); got != "02:30" {
		t.Errorf("next run %v", j.NextRun)
	}
	if err := c.UpdateBackupJob(ctx, "nightly", map[string]string{"storage": "nas", "compress": "zstd"}, nil, []string{"prune-backups"}); err != nil {
		t.Fatal(err)
	}
	j, _ = c.GetBackupJob(ctx, "nightly")
	if _, ok := j.Options["prune-backups"]; ok || j.Options["compress"] != "zstd" {
		t.Fatalf("after update: %+v", j.Options)
	}
	// a one-off backup of 100 is not a run of the job
	mustBackup(t, c, BackupOptions{VMID: 100, Storage: "nas"})
	sim.FailTask("vzdump", 101, "I/O error")
	upids := sim.AdvanceClock(90 * time.Second)
	if len(upids) != 2 {
		t.Fatalf("scheduler started %v", upids)
	}
	deadline := time.Now().Add(20 * time.Second)
	var runs []BackupJobRun
	for time.Now().Before(deadline) {
		runs, err = c.BackupJobRuns(ctx, j, 10, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 2 && !runs[0].Running && !runs[1].Running {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(runs) != 2 {
		t.Fatalf("runs = %+v", runs)
	}
	byNode := map[string]BackupJobRun{runs[0].Node: runs[0], runs[1].Node: runs[1]}
	ok, bad := byNode["pve1"], byNode["pve2"]
	if !ok.Succeeded() || len(ok.Guests) != 1 || ok.Guests[0].VMID != 100 || ok.Guests[0].Status != "ok" ||
		!strings.HasPrefix(ok.Guests[0].VolID, "nas:backup/vzdump-lxc-100-") || !strings.HasSuffix(ok.Guests[0].VolID, ".tar.zst") || ok.User != "root@pam" {
		t.Errorf("pve1 run = %+v", ok)
	}
	if bad.Succeeded() || bad.ExitStatus != "job errors" || len(bad.Guests) != 1 || bad.Guests[0].Status != "failed" || !strings.Contains(bad.Guests[0].Error, "I/O error") {
		t.Errorf("pve2 run = %+v", bad)
	}
	if _, err := c.GetBackupJob(ctx, "nope"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("missing job: %v", err)
	}
	if err := c.DeleteBackupJob(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteBackupJob(ctx, "nightly"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestSimBackupCoverage(t *testing.T) {
	t.Parallel()
	_, c := startSim(t)
	ctx := testCtx(t)
	un, err := c.GuestsNotBackedUp(ctx)
	if err != nil || len(un) != 3 || un[0].VMID != 100 || un[0].Name != "web" || un[0].Type != "lxc" {
		t.Fatalf("not backed up: %+v %v", un, err)
	}
	if err := c.CreateBackupJob(ctx, "apps", map[string]string{"schedule": "daily", "vmid": "100,200", "storage": "local"}, nil); err != nil {
		t.Fatal(err)
	}
	un, _ = c.GuestsNotBackedUp(ctx)
	if len(un) != 1 || un[0].VMID != 101 {
		t.Errorf("after job: %+v", un)
	}
	inc, err := c.BackupJobIncluded(ctx, "apps")
	if err != nil || len(inc) != 2 || inc[1].VMID != 200 || inc[1].Volumes[0].Key != "scsi0" || !inc[1].Volumes[0].Included {
		t.Errorf("included: %+v %v", inc, err)
	}
}

func TestValidateCalendarEvent(t *testing.T) {
	for _, ok := range []string{"02:30", "daily", "mon..fri 21:00", "sat,sun 1:05", "*/15", "2027-01-01 00:00", "21:00 UTC", "25:00"} {
		if err := ValidateCalendarEvent(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for spec, want := range map[string]string{
		"nightly":   `unable to parse calendar event at 'nightly' - Context("weekday")`,
		"0 2 * * *": `unable to parse calendar event at ' 2 * * *' - Nom(Eof)`,
		"99:99":     `unable to parse calendar event at '99:99' - Context("date or time specification")`,
		"":          "unable to parse calendar event - event is empty",
	} {
		if err := ValidateCalendarEvent(spec); err == nil || err.Error() != want {
			t.Errorf("%q: %v", spec, err)
		}
	}
}
