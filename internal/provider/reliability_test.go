package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

// The reliability matrix: Terraform itself is driven, interrupted (SIGINT,
// a user's Ctrl-C), timed out, and run through failing requests, a node
// outage, a narrow token and a node restart. Each case asserts what the
// user sees and what is left on the simulator: every archive on the
// storages is recorded in the state, a re-run takes no duplicate, and the
// guest ends restored in its intended power state or back as it was.
// RELIABILITY.md lists the cases and their outcomes.

// faultRun is one case: a slow simulator (so that there is time to act while
// a task runs) and a Terraform working directory.
type faultRun struct {
	t   *testing.T
	env *acctest.Env
	tf  *acctest.Terraform
	mu  sync.Mutex
}

func newFaultRun(t *testing.T, cfg *pvesim.Config, taskTime time.Duration) *faultRun {
	t.Helper()
	env := acctest.NewSlow(t, cfg, taskTime)
	env.RequireSim(t)
	tf := acctest.NewTerraform(t, NewServer("test"))
	return &faultRun{t: t, env: env, tf: tf}
}

func (f *faultRun) sim() *pvesim.Sim {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.env.Sim
}

// restartSim crashes the node and brings it back after down.
func (f *faultRun) restartSim(down time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next, err := f.env.Sim.Restart(down)
	if err != nil {
		f.t.Fatalf("restarting the simulator: %v", err)
	}
	f.env.Sim = next
	f.t.Cleanup(func() { _ = next.Close() })
}

func (f *faultRun) apply(config string) acctest.Result {
	f.t.Helper()
	f.tf.SetConfig(config)
	return f.tf.Apply()
}

// taskRunning is a moment to act: a task of that type is running.
func (f *faultRun) taskRunning(typ string) func() bool {
	return func() bool {
		for _, tk := range f.sim().Tasks() {
			if tk.Type == typ && tk.Running {
				return true
			}
		}
		return false
	}
}

func (f *faultRun) tasks(typ string) []pvesim.TaskInfo {
	var out []pvesim.TaskInfo
	for _, tk := range f.sim().Tasks() {
		if tk.Type == typ {
			out = append(out, tk)
		}
	}
	return out
}

// archivesOnDisk lists every backup archive (and vzdump temporary file) on
// the dir storages, as volids.
func (f *faultRun) archivesOnDisk() []string {
	f.t.Helper()
	var out []string
	for _, loc := range [][2]string{{"pve1", "local"}, {"pve2", "local"}, {"pve1", "nas"}} {
		files, _ := filepath.Glob(filepath.Join(f.sim().StorageDumpDir(loc[0], loc[1]), "vzdump-*"))
		for _, p := range files {
			base := filepath.Base(p)
			if strings.HasSuffix(base, ".log") || strings.HasSuffix(base, ".notes") || strings.HasSuffix(base, ".protected") {
				continue
			}
			out = append(out, loc[1]+":backup/"+base)
		}
	}
	sort.Strings(out)
	return out
}

// recorded lists the archives the state records: backups, and the safety
// backups of restores (tainted ones included).
func (f *faultRun) recorded() map[string]bool {
	out := map[string]bool{}
	for _, r := range f.tf.Resources() {
		for _, key := range []string{"volid", "safety_backup_volid"} {
			if v, ok := r.AttributeValues[key].(string); ok && v != "" {
				out[v] = true
			}
		}
	}
	return out
}

// requireAccounted fails unless every archive on disk is in the state, and
// the number on disk is want.
func (f *faultRun) requireAccounted(want int) {
	f.t.Helper()
	rec := f.recorded()
	disk := f.archivesOnDisk()
	var untracked []string
	for _, a := range disk {
		if !rec[a] {
			untracked = append(untracked, a)
		}
	}
	if len(untracked) > 0 || len(disk) != want {
		f.t.Fatalf("archives on disk %v (want %d); not in the state: %v", disk, want, untracked)
	}
}

func requireExit(t *testing.T, r acctest.Result, code int, pattern string) {
	t.Helper()
	if r.ExitCode != code {
		t.Fatalf("terraform %s exited %d, want %d:\n%s", strings.Join(r.Args, " "), r.ExitCode, code, r.Output())
	}
	// Terraform wraps long lines: a space in the pattern matches any white space
	if pattern != "" && !regexp.MustCompile(strings.ReplaceAll(pattern, " ", `\s+`)).MatchString(r.Output()) {
		t.Fatalf("terraform %s output does not match %q:\n%s", strings.Join(r.Args, " "), pattern, r.Output())
	}
}

func oneBackupConfig(env *acctest.Env, extra string) string {
	return env.ProviderConfig() + fmt.Sprintf(`
resource "proxmoxapp_backup" "app" {
  vmid    = 100
  storage = "local"
%s
}
`, extra)
}

// Ctrl-C while vzdump runs: the task is stopped on the node, nothing is left,
// and the re-run takes exactly one backup.
func TestReliability_backupCtrlC(t *testing.T) {
	t.Parallel()
	f := newFaultRun(t, nil, 3*time.Second)
	f.tf.SetConfig(oneBackupConfig(f.env, ""))
	f.tf.Init()
	r := f.tf.RunInterrupted(f.taskRunning("vzdump"), "apply", "-auto-approve", "-no-color")
	requireExit(t, r, 1, `(?s)Backup interrupted.*task UPID:pve1:\S+:vzdump:100:\S+ was stopped on node pve1; it (wrote no archive|had not started an archive)`)
	if tk := f.tasks("vzdump"); len(tk) != 1 || tk[0].Running || !tk[0].Stopped {
		t.Fatalf("vzdump tasks after the interrupt: %+v", tk)
	}
	f.requireAccounted(0)

	requireExit(t, f.tf.Apply(), 0, "")
	f.requireAccounted(1)
	requireExit(t, f.tf.Apply(), 0, "No changes")
}

// timeouts.create shorter than the task: the same clean stop, named.
func TestReliability_backupTimeout(t *testing.T) {
	t.Parallel()
	f := newFaultRun(t, nil, 3*time.Second)
	f.tf.SetConfig(oneBackupConfig(f.env, `  timeouts = { create = "1s" }`))
	f.tf.Init()
	requireExit(t, f.tf.Apply(), 1, `(?s)Backup interrupted.*context deadline exceeded.*was stopped on node pve1`)
	f.requireAccounted(0)
	requireExit(t, f.apply(oneBackupConfig(f.env, "")), 0, "")
	f.requireAccounted(1)
}

// Status polls failing with HTTP 500 ten times, then the node answering 595
// for 5 s: the provider waits through both and records the backup.
func TestReliability_backupPollFailures(t *testing.T) {
	t.Parallel()
	f := newFaultRun(t, nil, 4*time.Second)
	f.tf.SetConfig(oneBackupConfig(f.env, ""))
	f.tf.Init()
	f.sim().FailRequests("GET", "/nodes/{node}/tasks/{upid}/status", 500, "proxy loop detected", 10)
	r := f.tf.RunActing(f.taskRunning("vzdump"), func() {
		f.sim().SetNodeOffline("pve1", true)
		time.AfterFunc(5*time.Second, func() { f.sim().SetNodeOffline("pve1", false) })
	}, nil, "apply", "-auto-approve", "-no-color")
	requireExit(t, r, 0, "")
	f.requireAccounted(1)
}

// The task succeeds but the listing that should show its archive fails: the
// archive is recorded from the task log, and a refresh reads its size.
func TestReliability_listingFailsAfterTask(t *testing.T) {
	t.Parallel()
	f := newFaultRun(t, nil, time.Second)
	f.tf.SetConfig(oneBackupConfig(f.env, ""))
	f.tf.Init()
	r := f.tf.RunActing(f.taskRunning("vzdump"), func() {
		f.sim().FailRequests("GET", "/nodes/{node}/storage/{storage}/content", 500, "storage 'local' is not online", 1)
	}, nil, "apply", "-auto-approve", "-no-color")
	requireExit(t, r, 0, `(?s)Backup taken, but not read back`)
	f.requireAccounted(1)
	requireExit(t, f.tf.Apply("-refresh-only"), 0, "")
	if size, _ := f.tf.Resources()["proxmoxapp_backup.app"].AttributeValues["size"].(float64); size <= 0 {
		t.Fatalf("size after refresh: %v", size)
	}
}

// 30 backups at -parallelism=30 on one node, which is unreachable for 5 s
// right after the 30 vzdump calls: no errors, 30 archives, all recorded, and
// nothing to do on the re-run.
func TestReliability_parallelNodeOutage(t *testing.T) {
	t.Parallel()
	cfg := pvesim.DefaultConfig()
	var body strings.Builder
	for i := 0; i < 30; i++ {
		vmid := 300 + i
		cfg.Guests = append(cfg.Guests, pvesim.GuestConfig{VMID: vmid, Type: "lxc", Node: "pve1", Name: fmt.Sprintf("app%d", i),
			Status: "running", Files: map[string]string{"etc/hostname": fmt.Sprintf("app%d\n", i)}})
		fmt.Fprintf(&body, "\nresource \"proxmoxapp_backup\" \"app%d\" {\n  vmid    = %d\n  storage = \"local\"\n}\n", i, vmid)
	}
	f := newFaultRun(t, cfg, 150*time.Millisecond)
	f.tf.SetConfig(f.env.ProviderConfig() + body.String())
	f.tf.Init()
	r := f.tf.RunActing(func() bool { return len(f.tasks("vzdump")) == 30 }, func() {
		f.sim().SetNodeOffline("pve1", true)
		time.AfterFunc(5*time.Second, func() { f.sim().SetNodeOffline("pve1", false) })
	}, nil, "apply", "-auto-approve", "-no-color", "-parallelism=30")
	requireExit(t, r, 0, "Apply complete! Resources: 30 added")
	f.requireAccounted(30)
	requireExit(t, f.tf.Run("plan", "-no-color", "-detailed-exitcode"), 0, "No changes")
}

// A token that may audit the storage but not read backups: a refresh keeps
// the backup in the state (and says which privileges are missing), and a
// destroy fails instead of claiming success; the archive stays recorded.
func TestReliability_narrowToken(t *testing.T) {
	t.Parallel()
	f := newFaultRun(t, nil, 50*time.Millisecond)
	requireExit(t, f.apply(oneBackupConfig(f.env, "")), 0, "")
	f.tf.Init()
	narrow := f.env.ReadOnlyProviderConfig() + `
resource "proxmoxapp_backup" "app" {
  vmid    = 100
  storage = "local"
}
`
	f.tf.SetConfig(narrow)
	requireExit(t, f.tf.Apply("-refresh-only"), 1, `(?s)Backup not visible to these credentials.*Datastore.AllocateSpace on /storage/local.*VM.Backup on /vms/100`)
	f.requireAccounted(1)
	requireExit(t, f.tf.Run("destroy", "-auto-approve", "-no-color"), 1, `not visible to this user or token`)
	requireExit(t, f.tf.Run("destroy", "-auto-approve", "-no-color", "-refresh=false"), 1, `(?s)Unable to delete backup.*not visible to this user or token`)
	if !strings.Contains(f.tf.Run("state", "list").Stdout, "proxmoxapp_backup.app") {
		t.Fatal("a failed destroy dropped the backup from the state")
	}
	f.requireAccounted(1)
	// with the right token everything is as before
	requireExit(t, f.apply(oneBackupConfig(f.env, "")), 0, "No changes")
}

// The node restarts while vzdump runs: the task dies with the node, the
// provider reports it, nothing is left, and the re-run takes one backup.
func TestReliability_backupNodeRestart(t *testing.T) {
	t.Parallel()
	f := newFaultRun(t, nil, 3*time.Second)
	f.tf.SetConfig(oneBackupConfig(f.env, ""))
	f.tf.Init()
	r := f.tf.RunActing(f.taskRunning("vzdump"), func() { f.restartSim(2 * time.Second) }, nil, "apply", "-auto-approve", "-no-color")
	requireExit(t, r, 1, `(?s)Backup failed.*vzdump task \S+ on node pve1 failed: unexpected status`)
	f.requireAccounted(0)
	requireExit(t, f.tf.Apply(), 0, "")
	f.requireAccounted(1)
}

// restoreCase: guest 100 backed up with the marker at "v1", then changed to
// "v2" (the data a restore must not lose).
type restoreCase struct {
	*faultRun
	root string
}

func newRestoreCase(t *testing.T, taskTime time.Duration) *restoreCase {
	t.Helper()
	f := newFaultRun(t, nil, taskTime)
	rc := &restoreCase{faultRun: f, root: f.sim().GuestRootfs(100)}
	acctest.WriteGuestFile(t, rc.root, markerPath, "v1\n")
	requireExit(t, f.apply(rc.config("")), 0, "")
	f.tf.Init()
	acctest.WriteGuestFile(t, rc.root, markerPath, "v2\n")
	return rc
}

func (rc *restoreCase) config(restore string) string {
	return oneBackupConfig(rc.env, "") + restore
}

const restoreBlock = `
resource "proxmoxapp_restore" "r" {
  vmid   = 100
  backup = proxmoxapp_backup.app.volid
%s
}
`

func (rc *restoreCase) withRestore(extra string) string {
	return rc.config(fmt.Sprintf(restoreBlock, extra))
}

// requireRunning checks the marker's content and that the guest runs.
func (rc *restoreCase) requireRunning(marker string) {
	const status = "running"
	rc.t.Helper()
	got, err := os.ReadFile(filepath.Join(rc.root, markerPath))
	if err != nil || string(got) != marker+"\n" {
		rc.t.Fatalf("marker is %q (%v), want %q", got, err, marker)
	}
	if st, _ := rc.sim().GuestState(100); st.Status != status {
		rc.t.Fatalf("guest 100 is %s (lock %q), want %s", st.Status, st.Lock, status)
	}
}

func (rc *restoreCase) restoreState() (safety string, tainted bool, ok bool) {
	r := rc.tf.Resources()["proxmoxapp_restore.r"]
	if r == nil {
		return "", false, false
	}
	s, _ := r.AttributeValues["safety_backup_volid"].(string)
	return s, r.Tainted, true
}

// Ctrl-C while the safety backup runs: its task is stopped, the guest keeps
// running untouched, nothing is left, and the re-run restores.
func TestReliability_restoreCtrlCSafetyBackup(t *testing.T) {
	t.Parallel()
	rc := newRestoreCase(t, 2*time.Second)
	rc.tf.SetConfig(rc.withRestore(""))
	r := rc.tf.RunInterrupted(rc.taskRunning("vzdump"), "apply", "-auto-approve", "-no-color")
	requireExit(t, r, 1, `(?s)failed at step "safety backup".*was stopped on node pve1.*the guest was left running`)
	rc.requireRunning("v2")
	rc.requireAccounted(1)
	if _, _, ok := rc.restoreState(); ok {
		t.Fatal("an interrupted restore that changed nothing is in the state")
	}
	requireExit(t, rc.tf.Apply(), 0, "")
	rc.requireRunning("v1")
	rc.requireAccounted(2)
}

// Ctrl-C while the guest shuts down: the restore does not start, the guest
// runs again with its data, its safety backup is removed, and the re-run
// restores.
func TestReliability_restoreCtrlCShutdown(t *testing.T) {
	t.Parallel()
	rc := newRestoreCase(t, 200*time.Millisecond)
	rc.tf.SetConfig(rc.withRestore(""))
	r := rc.tf.RunInterrupted(rc.taskRunning("vzshutdown"), "apply", "-auto-approve", "-no-color")
	requireExit(t, r, 1, `(?s)failed at step "(shutdown|restore)".*the guest was left running`)
	rc.requireRunning("v2")
	rc.requireAccounted(1)
	if len(rc.tasks("vzrestore")) != 0 {
		t.Fatal("a restore task ran after the interrupt")
	}
	requireExit(t, rc.tf.Apply(), 0, "")
	rc.requireRunning("v1")
	rc.requireAccounted(2)
}

// Ctrl-C while the restore task runs: the provider does not abandon it; it
// waits for the restore and the start, and records the run.
func TestReliability_restoreCtrlCRestoreTask(t *testing.T) {
	t.Parallel()
	rc := newRestoreCase(t, 2*time.Second)
	rc.tf.SetConfig(rc.withRestore(""))
	r := rc.tf.RunInterrupted(rc.taskRunning("vzrestore"), "apply", "-auto-approve", "-no-color")
	requireExit(t, r, 1, `proxmoxapp_restore.r: Creation complete`)
	rc.requireRunning("v1")
	if safety, tainted, ok := rc.restoreState(); !ok || tainted || safety == "" {
		t.Fatalf("restore state: safety %q tainted %v present %v", safety, tainted, ok)
	}
	rc.requireAccounted(2)
	requireExit(t, rc.tf.Apply(), 0, "No changes")
}

// The restore task fails: the guest is left stopped, the failed run stays in
// the state (tainted) with the safety backup that holds "v2", and the re-run
// restores, starts the guest as it was before the first attempt, and keeps
// recording that same safety backup.
func TestReliability_restoreTaskFailsThenReRun(t *testing.T) {
	t.Parallel()
	rc := newRestoreCase(t, 100*time.Millisecond)
	rc.sim().FailTask("vzrestore", 100, "tar: Unexpected EOF in archive")
	requireExit(t, rc.apply(rc.withRestore("")), 1, `(?s)failed at step "restore".*Unexpected EOF in archive`)
	first, tainted, ok := rc.restoreState()
	if !ok || !tainted || first == "" {
		t.Fatalf("after the failed restore: safety %q tainted %v present %v", first, tainted, ok)
	}
	if st, ok := rc.sim().GuestState(100); ok && st.Status != "stopped" {
		t.Fatalf("guest after the failed restore: %+v", st)
	}
	rc.requireAccounted(2)

	requireExit(t, rc.tf.Apply(), 0, "")
	rc.requireRunning("v1")
	again, tainted, _ := rc.restoreState()
	if again != first || tainted {
		t.Fatalf("re-run records safety %q (tainted %v), want the first attempt's %s", again, tainted, first)
	}
	if n := len(rc.tasks("vzdump")); n != 2 {
		t.Fatalf("%d vzdump tasks: the re-run took another safety backup", n)
	}
	rc.requireAccounted(2)
}

// A restore onto a storage that cannot hold containers is refused before the
// safety backup and the shutdown: no downtime, nothing written. The plan
// says so when the storage is known then, and when it comes from another
// resource, Terraform's plan during the apply does. (The restore's own check
// before the safety backup is pinned in internal/pve.)
func TestReliability_restoreWrongStorageNoDowntime(t *testing.T) {
	t.Parallel()
	rc := newRestoreCase(t, 50*time.Millisecond)
	r := rc.apply(rc.withRestore(`  storage = "nas"`))
	requireExit(t, r, 1, `(?s)Planning failed.*storage "nas" on node pve1 cannot hold container root filesystems`)
	r = rc.apply(rc.withRestore(`  storage = terraform_data.target.output
}

resource "terraform_data" "target" {
  input = "nas"`))
	requireExit(t, r, 1, `(?s)terraform_data.target: Creation complete.*Storage cannot hold container root filesystems.*storage "nas" on node pve1 cannot hold container root filesystems`)
	rc.requireRunning("v2")
	if n := len(rc.tasks("vzdump")); n != 1 {
		t.Fatalf("%d vzdump tasks: a safety backup was taken before the check", n)
	}
	if n := len(rc.tasks("vzshutdown")); n != 0 {
		t.Fatal("the guest was shut down before the check")
	}
	rc.requireAccounted(1)
}

// The node loses power while the restore task runs: the guest comes back
// stopped and locked ("create"), the failed run keeps the safety backup in
// the state, a re-run names the lock, and after the operator's unlock the
// re-run restores and starts the guest.
func TestReliability_restoreNodeRestart(t *testing.T) {
	t.Parallel()
	rc := newRestoreCase(t, 2*time.Second)
	cfg := rc.withRestore(`  timeouts = { create = "8s" }`)
	rc.tf.SetConfig(cfg)
	r := rc.tf.RunActing(rc.taskRunning("vzrestore"), func() { rc.restartSim(time.Second) }, nil, "apply", "-auto-approve", "-no-color")
	requireExit(t, r, 1, `(?s)failed at step "restore".*unexpected status`)
	first, tainted, ok := rc.restoreState()
	if !ok || !tainted || first == "" {
		t.Fatalf("after the crash: safety %q tainted %v present %v", first, tainted, ok)
	}
	requireExit(t, rc.tf.Apply(), 1, `(?s)still locked \(create\)`)
	if again, _, _ := rc.restoreState(); again != first {
		t.Fatalf("the failed re-run records safety %q, want %s", again, first)
	}
	rc.sim().SetGuestLock(100, "") // the operator's pct unlock
	requireExit(t, rc.tf.Apply(), 0, "")
	rc.requireRunning("v1")
	if again, _, _ := rc.restoreState(); again != first {
		t.Fatalf("re-run records safety %q, want %s", again, first)
	}
	rc.requireAccounted(2)
}

// A token that may back up and restore the guest but not power it: the
// restore is refused before the safety backup, naming what is missing,
// instead of failing at the shutdown with the guest half-handled.
func TestReliability_restoreNarrowTokenChecksFirst(t *testing.T) {
	t.Parallel()
	cfg := pvesim.DefaultConfig()
	cfg.Users = append(cfg.Users, pvesim.UserConfig{ID: "ops@pve", Password: "ops",
		ACL: []pvesim.ACLEntry{
			{Path: "/storage", Roles: []string{"PVEDatastoreUser"}},
			{Path: "/vms/100", Privs: []string{"VM.Audit", "VM.Backup", "VM.Allocate", "VM.Config.Disk"}},
		},
		Tokens: []pvesim.TokenConfig{{ID: "ci", Secret: "ops-secret"}}})
	f := newFaultRun(t, cfg, 50*time.Millisecond)
	root := f.sim().GuestRootfs(100)
	acctest.WriteGuestFile(t, root, markerPath, "v1\n")
	requireExit(t, f.apply(oneBackupConfig(f.env, "")), 0, "")
	f.tf.Init()
	acctest.WriteGuestFile(t, root, markerPath, "v2\n")
	narrow := strings.Replace(oneBackupConfig(f.env, "")+fmt.Sprintf(restoreBlock, ""), f.sim().APIToken(), "ops@pve!ci=ops-secret", 1)
	requireExit(t, f.apply(narrow), 1, `(?s)failed at step "check privileges".*ops@pve!ci lacks privileges.*VM.PowerMgmt on /vms/100 \(to shut the guest down and start it again\)`)
	if n := len(f.tasks("vzdump")); n != 1 {
		t.Fatalf("%d vzdump tasks: a safety backup was taken before the check", n)
	}
	if st, _ := f.sim().GuestState(100); st.Status != "running" {
		t.Fatalf("guest: %+v", st)
	}
	f.requireAccounted(1)
}
