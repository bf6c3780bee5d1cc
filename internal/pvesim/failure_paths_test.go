package pvesim

// Conformance tests for PVE's failure paths. Each test is named in
// REFERENCE.md next to the behaviour it pins and the PVE source it was read
// from. They assert what is left on the simulator afterwards: configs,
// disks, files, locks and task logs.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func logHas(t *testing.T, lines []string, want ...string) {
	t.Helper()
	all := strings.Join(lines, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("log lacks %q:\n%s", w, all)
		}
	}
}

func mustConfig(t *testing.T, s *Sim, vmid int) string {
	t.Helper()
	c, ok := s.GuestConfigText(vmid)
	if !ok {
		t.Fatalf("guest %d has no config", vmid)
	}
	return c
}

// A force restore over an existing VM that fails in the data phase leaves
// the VM with the temporary config and without its old disk; only the lock
// is gone. A second restore from the same archive brings the disk back.
func TestRefQemuRestoreFailsOverExistingVM(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	volVM, _ := backup(t, s, "pve1", 200, nil)
	orig, err := os.ReadFile(s.GuestDisk(200))
	if err != nil || len(orig) == 0 {
		t.Fatalf("disk: %v", err)
	}
	s.FailTask("qmrestore", 200, "vma_queue_write: write error - Broken pipe")
	upid := startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"200"}, "archive": {volVM}, "force": {"1"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "vma_queue_write: write error - Broken pipe" {
		t.Fatalf("exit status (PVE does not prefix qmrestore errors): %v", st)
	}
	lines := taskLog(t, s, upid)
	logHas(t, lines, "CTIME: ", "new volume ID is 'local-lvm:vm-200-disk-0'", "temporary volume 'local-lvm:vm-200-disk-0' successfully removed",
		"no lock found trying to remove 'create' lock",
		"error before or during data restore, some or all disks were not completely restored. VM 200 state is NOT cleaned up.",
		"TASK ERROR: vma_queue_write: write error - Broken pipe")
	// plain warn lines: no "WARN: " prefix (they are not counted either)
	if n := len(lines); n < 3 || lines[n-3] != "no lock found trying to remove 'create' lock" ||
		lines[n-2] != "error before or during data restore, some or all disks were not completely restored. VM 200 state is NOT cleaned up." {
		t.Fatalf("log tail: %q", lines)
	}
	if c := mustConfig(t, s, 200); c != "memory: 128\n" {
		t.Fatalf("config after failed restore: %q", c)
	}
	if _, err := os.Stat(s.GuestDisk(200)); !os.IsNotExist(err) {
		t.Fatalf("old disk still there: %v", err)
	}
	if g, _ := s.GuestState(200); g.Lock != "" || g.Status != "stopped" || g.Name != "VM 200" {
		t.Fatalf("state: %+v", g)
	}
	// the disk is not listed on local-lvm any more
	r := call(t, s, "GET", "/nodes/pve1/storage/local-lvm/content?vmid=200", s.APIToken(), nil)
	if l := r.data(t).([]any); len(l) != 0 {
		t.Fatalf("images of VM 200: %s", r.body)
	}
	// a re-run of the restore (force) recovers the VM
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"200"}, "archive": {volVM}, "force": {"1"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("second restore: %v", st)
	}
	if got, _ := os.ReadFile(s.GuestDisk(200)); string(got) != string(orig) {
		t.Fatal("disk differs after the second restore")
	}
	if c := mustConfig(t, s, 200); !strings.Contains(c, "scsi0: local-lvm:vm-200-disk-0,") || !strings.Contains(c, "name: vm\n") {
		t.Fatalf("config after second restore: %q", c)
	}
}

// A restore into a new vmid leaves a VM behind whatever fails: with an
// empty config when it fails before the archive header was read (or in the
// storage checks that follow), with the temporary config after it.
func TestRefQemuRestoreFailsIntoNewVMID(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	volVM, _ := backup(t, s, "pve1", 200, nil)
	// data phase
	s.FailTask("qmrestore", 300, "short read")
	upid := startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"300"}, "archive": {volVM}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "short read" {
		t.Fatalf("exit: %v", st)
	}
	if c := mustConfig(t, s, 300); c != "memory: 128\n" {
		t.Fatalf("VM 300 config: %q", c)
	}
	// the target storage does not take images: checked in the worker
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"301"}, "archive": {volVM}, "storage": {"nas"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "Content type 'images' is not available on storage 'nas'" {
		t.Fatalf("exit: %v", st)
	}
	logHas(t, taskLog(t, s, upid), "error before or during data restore, some or all disks were not completely restored. VM 301 state is NOT cleaned up.")
	if c := mustConfig(t, s, 301); c != "" {
		t.Fatalf("VM 301 config: %q", c)
	}
	if g, ok := s.GuestState(301); !ok || g.Lock != "" || g.Type != "qemu" || g.Node != "pve1" {
		t.Fatalf("VM 301: %+v %v", g, ok)
	}
	// an unknown storage, likewise
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"302"}, "archive": {volVM}, "storage": {"nope"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "storage 'nope' does not exist" {
		t.Fatalf("exit: %v", st)
	}
	// the leftover blocks a plain restore; force over it works
	r := call(t, s, "POST", "/nodes/pve1/qemu", tok, url.Values{"vmid": {"301"}, "archive": {volVM}})
	if r.status != "500 unable to restore VM 301 - VM 301 already exists on node 'pve1'" {
		t.Fatalf("second restore: %s", r.status)
	}
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"301"}, "archive": {volVM}, "force": {"1"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("force restore: %v", st)
	}
	if c := mustConfig(t, s, 301); !strings.Contains(c, "scsi0: local-lvm:vm-301-disk-0,") {
		t.Fatalf("VM 301 config: %q", c)
	}
}

// What create_vm checks before forking (HTTP errors) and what only the
// qmrestore worker finds (task failures, VM untouched).
func TestRefQemuRestoreSyncVersusTask(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	volVM, _ := backup(t, s, "pve1", 200, nil)
	volCT, _ := backup(t, s, "pve1", 100, nil)
	before := mustConfig(t, s, 200)
	// a missing dir archive: abs_filesystem_path, before any config exists
	missing := "local:backup/vzdump-qemu-200-2020_01_01-00_00_00.vma.zst"
	r := call(t, s, "POST", "/nodes/pve1/qemu", tok, url.Values{"vmid": {"250"}, "archive": {missing}})
	if r.status != "500 can't find file '"+missing+"'" {
		t.Fatalf("missing: %s", r.status)
	}
	if _, ok := s.GuestState(250); ok {
		t.Fatal("VM 250 created for a missing archive")
	}
	// a locked VM: create_and_lock_config
	s.SetGuestLock(200, "backup")
	r = call(t, s, "POST", "/nodes/pve1/qemu", tok, url.Values{"vmid": {"200"}, "archive": {volVM}, "force": {"1"}})
	if r.status != "500 unable to restore VM 200 - VM is locked (backup)" {
		t.Fatalf("locked: %s", r.status)
	}
	s.SetGuestLock(200, "")
	// drive options conflict with the archive
	r = call(t, s, "POST", "/nodes/pve1/qemu", tok, url.Values{"vmid": {"250"}, "archive": {volVM}, "scsi1": {"local-lvm:1"}})
	if r.code != 400 || errsOf(t, r)["scsi1"] != "option conflicts with option 'archive'" {
		t.Fatalf("drive: %s", r.body)
	}
	// protection: checked in the worker, with check_protection's own " - "
	if err := s.AddGuest(GuestConfig{VMID: 210, Type: "qemu", Node: "pve1", Protection: true}); err != nil {
		t.Fatal(err)
	}
	protBefore := mustConfig(t, s, 210)
	upid := startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"210"}, "archive": {volVM}, "force": {"1"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "unable to restore VM 210 - - protection mode enabled" {
		t.Fatalf("protected: %v", st)
	}
	if c := mustConfig(t, s, 210); c != protBefore {
		t.Fatalf("protected VM changed: %q", c)
	}
	if _, err := os.Stat(s.GuestDisk(210)); err != nil {
		t.Fatalf("protected VM lost its disk: %v", err)
	}
	// a container archive: restore_tar_archive refuses it before touching the VM
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"200"}, "archive": {volCT}, "force": {"1"}})
	ctPath := filepath.Join(s.StorageDumpDir("pve1", "local"), strings.TrimPrefix(volCT, "local:backup/"))
	if st := waitTask(t, s, upid); st["exitstatus"] != "ERROR: file '"+ctPath+"' does not look like a QemuServer vzdump backup" {
		t.Fatalf("tar archive: %v", st)
	}
	// ... but options given with it are refused first
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"200"}, "archive": {volCT}, "force": {"1"}, "name": {"x"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "cannot pass along options (name) when restoring from tar archive" {
		t.Fatalf("tar options: %v", st)
	}
	if c := mustConfig(t, s, 200); c != before {
		t.Fatalf("VM 200 changed by refused restores: %q", c)
	}
	if _, err := os.Stat(s.GuestDisk(200)); err != nil {
		t.Fatalf("VM 200 lost its disk: %v", err)
	}
	// live-restore needs PBS
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"260"}, "archive": {volVM}, "live-restore": {"1"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "live-restore is only compatible with backup images from a Proxmox Backup Server" {
		t.Fatalf("live: %v", st)
	}
	if c := mustConfig(t, s, 260); c != "" {
		t.Fatalf("VM 260: %q", c)
	}
}

// A force restore over an existing CT: a failure before the new volume is
// allocated keeps the CT (lock removed); a failure while extracting
// destroys the CT, old volume included.
func TestRefLXCRestoreFailures(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	volCT, _ := backup(t, s, "pve2", 101, nil)
	volVM, _ := backup(t, s, "pve1", 200, nil)
	dataFile := filepath.Join(s.GuestRootfs(101), "var/lib/db/data.sql")
	before := mustConfig(t, s, 101)
	// a missing archive: found in the worker (recover_config)
	missing := "local:backup/vzdump-lxc-101-2020_01_01-00_00_00.tar.zst"
	upid := startTask(t, s, "POST", "/nodes/pve2/lxc", url.Values{"vmid": {"101"}, "ostemplate": {missing}, "restore": {"1"}, "force": {"1"}, "storage": {"local-lvm"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "unable to restore CT 101 - can't find file '"+missing+"'" {
		t.Fatalf("missing: %v", st)
	}
	if c := mustConfig(t, s, 101); c != before {
		t.Fatalf("CT 101 changed: %q", c)
	}
	if _, err := os.Stat(dataFile); err != nil {
		t.Fatalf("CT 101 lost its files: %v", err)
	}
	// volVM lives on pve1's node-local storage: on pve2 that file is not there
	upid = startTask(t, s, "POST", "/nodes/pve2/lxc", url.Values{"vmid": {"101"}, "ostemplate": {volVM}, "restore": {"1"}, "force": {"1"}, "storage": {"local-lvm"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "unable to restore CT 101 - can't find file '"+volVM+"'" {
		t.Fatalf("vma on other node: %v", st)
	}
	// a VMA archive has no pct.conf; the new CT is removed again
	upid = startTask(t, s, "POST", "/nodes/pve1/lxc", url.Values{"vmid": {"150"}, "ostemplate": {volVM}, "restore": {"1"}, "storage": {"local-lvm"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "unable to restore CT 150 - ERROR: archive contains no configuration file" {
		t.Fatalf("vma: %v", st)
	}
	if _, ok := s.GuestState(150); ok {
		t.Fatal("CT 150 left behind")
	}
	// data phase over the existing CT: the CT is gone, files and all
	s.FailTask("vzrestore", 101, "tar: Unexpected EOF in archive")
	upid = startTask(t, s, "POST", "/nodes/pve2/lxc", url.Values{"vmid": {"101"}, "ostemplate": {volCT}, "restore": {"1"}, "force": {"1"}, "storage": {"local-lvm"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "unable to restore CT 101 - tar: Unexpected EOF in archive" {
		t.Fatalf("data phase: %v", st)
	}
	if _, ok := s.GuestState(101); ok {
		t.Fatal("CT 101 still configured after a failed overwrite")
	}
	if _, err := os.Stat(s.GuestRootfs(101)); !os.IsNotExist(err) {
		t.Fatalf("CT 101's volume still there: %v", err)
	}
	r := call(t, s, "GET", "/nodes/pve2/lxc/101/status/current", tok, nil)
	if r.status != "500 Configuration file 'nodes/pve2/lxc/101.conf' does not exist" {
		t.Fatalf("status of removed CT: %s", r.status)
	}
	// restoring again into the free vmid brings the data back
	upid = startTask(t, s, "POST", "/nodes/pve2/lxc", url.Values{"vmid": {"101"}, "ostemplate": {volCT}, "restore": {"1"}, "storage": {"local-lvm"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("restore: %v", st)
	}
	if b, err := os.ReadFile(dataFile); err != nil || len(b) == 0 {
		t.Fatalf("data after restore: %v", err)
	}
}

// The VM.Allocate / VM.Backup rule of both create endpoints, its bare
// error text, and check_volume_access for another guest's backup.
func TestRefRestorePermissions(t *testing.T) {
	t.Parallel()
	s := startSim(t, func(o *Options) { o.Config = refConfig() })
	volCT, _ := backup(t, s, "pve2", 101, nil)
	volVM, _ := backup(t, s, "pve1", 200, nil)
	bk := "backup@pve!b=sec" // PVEDatastoreUser on /storage, PVEVMUser on /vms: VM.Backup, no VM.Allocate
	r := call(t, s, "POST", "/nodes/pve2/lxc", bk, url.Values{"vmid": {"150"}, "ostemplate": {volCT}, "restore": {"1"}, "storage": {"local-lvm"}})
	if r.status != "403 Permission check failed" {
		t.Fatalf("new CT without VM.Allocate: %s", r.status)
	}
	r = call(t, s, "POST", "/nodes/pve2/lxc", bk, url.Values{"vmid": {"101"}, "ostemplate": {volCT}, "restore": {"1"}, "storage": {"local-lvm"}})
	if r.status != "500 CT 101 already exists on node 'pve2'" {
		t.Fatalf("existing CT without force: %s", r.status)
	}
	r = call(t, s, "POST", "/nodes/pve1/qemu", bk, url.Values{"vmid": {"250"}, "archive": {volVM}})
	if r.status != "403 Permission check failed" {
		t.Fatalf("new VM without VM.Allocate: %s", r.status)
	}
	// ha-managed needs Sys.Console on / (checked before the vmid and the VM rule)
	r = call(t, s, "POST", "/nodes/pve2/lxc", bk, url.Values{"vmid": {"101"}, "ostemplate": {volCT}, "restore": {"1"}, "storage": {"local-lvm"}, "ha-managed": {"1"}})
	if r.status != "403 Permission check failed (/, Sys.Console)" {
		t.Fatalf("lxc ha-managed: %s", r.status)
	}
	r = call(t, s, "POST", "/nodes/pve1/qemu", bk, url.Values{"vmid": {"250"}, "archive": {volVM}, "ha-managed": {"1"}})
	if r.status != "403 Permission check failed (/, Sys.Console)" {
		t.Fatalf("qemu ha-managed: %s", r.status)
	}
	// VM.Backup is enough to restore over the existing guest
	r = call(t, s, "POST", "/nodes/pve2/lxc", bk, url.Values{"vmid": {"101"}, "ostemplate": {volCT}, "restore": {"1"}, "force": {"1"}, "storage": {"local-lvm"}})
	if r.code != 200 {
		t.Fatalf("force restore with VM.Backup: %s", r.status)
	}
	if st := waitTask(t, s, r.data(t).(string)); st["exitstatus"] != "OK" {
		t.Fatalf("restore: %v", st)
	}
	r = call(t, s, "POST", "/nodes/pve1/qemu", bk, url.Values{"vmid": {"200"}, "archive": {volVM}, "force": {"1"}})
	if r.code != 200 {
		t.Fatalf("force VM restore with VM.Backup: %s", r.status)
	}
	if st := waitTask(t, s, r.data(t).(string)); st["exitstatus"] != "OK" {
		t.Fatalf("VM restore: %v", st)
	}
	// a narrower token: VM.Backup on 101 only, may not read 200's backup
	cfg := refConfig()
	cfg.Users = append(cfg.Users, UserConfig{ID: "one@pve", ACL: []ACLEntry{
		{Path: "/storage", Roles: []string{"PVEDatastoreUser"}},
		{Path: "/vms/101", Privs: []string{"VM.Backup", "VM.Allocate"}},
	}, Tokens: []TokenConfig{{ID: "t", Secret: "one"}}})
	s2 := startSim(t, func(o *Options) { o.Config = cfg })
	vol200, _ := backup(t, s2, "pve1", 200, nil)
	r = call(t, s2, "POST", "/nodes/pve1/qemu", "one@pve!t=one", url.Values{"vmid": {"101"}, "archive": {vol200}, "force": {"1"}})
	if r.status != "403 Permission check failed (/vms/200, VM.Backup)" {
		t.Fatalf("other guest's backup (force): %s", r.status)
	}
	r = call(t, s2, "POST", "/nodes/pve1/qemu", "one@pve!t=one", url.Values{"vmid": {"101"}, "archive": {vol200}})
	if r.status != "403 Permission check failed (/vms/200, VM.Backup)" {
		t.Fatalf("other guest's backup: %s", r.status)
	}
	// no Datastore.AllocateSpace on the target storage
	r = call(t, s2, "POST", "/nodes/pve1/qemu", s2.ReadOnlyToken(), url.Values{"vmid": {"250"}, "archive": {vol200}, "storage": {"local-lvm"}})
	if r.status != "403 Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)" {
		t.Fatalf("storage permission first: %s", r.status)
	}
}

// Power calls on guests that are absent from the node or not running.
func TestRefPowerAbsentOrStopped(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	taskExit := func(path string) string {
		t.Helper()
		return fmt.Sprint(waitTask(t, s, startTask(t, s, "POST", path, nil))["exitstatus"])
	}
	sync := func(path string) string {
		t.Helper()
		return call(t, s, "POST", path, tok, nil).status
	}
	if got := taskExit("/nodes/pve1/lxc/999/status/start"); got != "Configuration file 'nodes/pve1/lxc/999.conf' does not exist" {
		t.Errorf("lxc start absent: %s", got)
	}
	if got := sync("/nodes/pve1/lxc/999/status/stop"); got != "500 CT 999 not running" {
		t.Errorf("lxc stop absent: %s", got)
	}
	if got := sync("/nodes/pve2/lxc/101/status/shutdown"); got != "500 CT 101 not running" {
		t.Errorf("lxc shutdown stopped: %s", got)
	}
	if got := sync("/nodes/pve2/lxc/101/status/reboot"); got != "500 VM 101 not running" {
		t.Errorf("lxc reboot stopped: %s", got)
	}
	if got := sync("/nodes/pve1/lxc/100/status/start"); got != "500 CT 100 already running" {
		t.Errorf("lxc start running: %s", got)
	}
	// CT 100 runs on pve1, not on pve2
	if got := sync("/nodes/pve2/lxc/100/status/stop"); got != "500 CT 100 not running" {
		t.Errorf("lxc stop on the wrong node: %s", got)
	}
	if got := taskExit("/nodes/pve1/qemu/999/status/start"); got != "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist" {
		t.Errorf("qemu start absent: %s", got)
	}
	for _, a := range []string{"stop", "shutdown"} {
		if got := taskExit("/nodes/pve1/qemu/999/status/" + a); got != "unable to find configuration file for VM 999 on node 'pve1'" {
			t.Errorf("qemu %s absent: %s", a, got)
		}
	}
	for _, a := range []string{"reboot", "suspend", "resume"} {
		if got := sync("/nodes/pve1/qemu/999/status/" + a); got != "500 unable to find configuration file for VM 999 on node 'pve1'" {
			t.Errorf("qemu %s absent: %s", a, got)
		}
		if got := sync("/nodes/pve1/qemu/200/status/" + a); got != "500 VM 200 not running" {
			t.Errorf("qemu %s stopped: %s", a, got)
		}
	}
	// stopping a stopped VM is a no-op task, even when locked
	s.SetGuestLock(200, "backup")
	if got := taskExit("/nodes/pve1/qemu/200/status/stop"); got != "OK" {
		t.Errorf("qemu stop stopped+locked: %s", got)
	}
	if got := taskExit("/nodes/pve1/qemu/200/status/start"); got != "VM is locked (backup)" {
		t.Errorf("qemu start locked: %s", got)
	}
	s.SetGuestLock(200, "")
	if got := taskExit("/nodes/pve1/qemu/200/status/start"); got != "OK" {
		t.Errorf("qemu start: %s", got)
	}
	if got := taskExit("/nodes/pve1/qemu/200/status/resume"); got != "OK" {
		t.Errorf("qemu resume running: %s", got)
	}
	if g, _ := s.GuestState(200); g.Status != "running" {
		t.Errorf("VM 200: %+v", g)
	}
}

// PVE's HTTP server authenticates before it looks the path up, and runs a
// method's declarative permission check before the node and the schema.
func TestRefRequestPipelineOrder(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	if r := call(t, s, "GET", "/no/such/path", "", nil); r.code != 401 {
		t.Errorf("unknown path without auth: %s", r.status)
	}
	if r := call(t, s, "GET", "/no/such/path", s.APIToken(), nil); r.status != "501 Method 'GET /no/such/path' not implemented" {
		t.Errorf("unknown path: %s", r.status)
	}
	ro := s.ReadOnlyToken()
	// a bad parameter does not hide a missing privilege
	if r := call(t, s, "POST", "/nodes/pve1/lxc/100/status/stop", ro, url.Values{"timeout": {"x"}}); r.status != "403 Permission check failed (/vms/100, VM.PowerMgmt)" {
		t.Errorf("perm before schema: %s", r.status)
	}
	// nor an unknown node
	if r := call(t, s, "POST", "/nodes/nowhere/qemu/200/status/start", ro, nil); r.status != "403 Permission check failed (/vms/200, VM.PowerMgmt)" {
		t.Errorf("perm before node: %s", r.status)
	}
	if r := call(t, s, "POST", "/nodes/nowhere/qemu/200/status/start", s.APIToken(), nil); !strings.HasPrefix(r.status, "500 hostname lookup 'nowhere' failed") {
		t.Errorf("unknown node: %s", r.status)
	}
	if r := call(t, s, "POST", "/nodes/pve1/lxc/100/status/stop", s.APIToken(), url.Values{"timeout": {"x"}}); r.code != 400 {
		t.Errorf("schema: %s", r.status)
	}
	// the node check comes before the schema too
	s.SetNodeOffline("pve2", true)
	if r := call(t, s, "GET", "/nodes/pve2/lxc/101/status/current", s.APIToken(), url.Values{"bogus": {"1"}}); r.code != 595 {
		t.Errorf("offline before schema: %s", r.status)
	}
	// storage content: Datastore.Audit or AllocateSpace before anything else
	cfg := DefaultConfig()
	cfg.Users = append(cfg.Users, UserConfig{ID: "vmonly@pve", ACL: []ACLEntry{{Path: "/vms", Roles: []string{"PVEVMUser"}}}, Tokens: []TokenConfig{{ID: "t", Secret: "v"}}})
	s2 := startSim(t, func(o *Options) { o.Config = cfg })
	if r := call(t, s2, "GET", "/nodes/pve1/storage/local/content", "vmonly@pve!t=v", url.Values{"content": {"bogus"}}); r.status != "403 Permission check failed (/storage/local, Datastore.Audit|Datastore.AllocateSpace)" {
		t.Errorf("content perm: %s", r.status)
	}
}

// Notes templates: $verify_notes_template's checks and positions, and
// $generate_notes' order (escapes, then variables).
func TestRefNotesTemplate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ tmpl, err string }{
		{"{{foo}}", "found unknown: variable 'foo' at char 4"},
		{`a\tb {{x}} {{vmid}} {{y}}`, `found unknown: escape sequence '\t' at char 1, variable 'x' at char 9, variable 'y' at char 24`},
		{"a\nb", "contains a line feed"},
		{"a\rb", ""},
		{`{{ vmid }} \\ \n`, ""},
		{`trailing \`, ""},
	} {
		err := verifyNotesTemplate(c.tmpl)
		if got := fmt.Sprint(err); (c.err == "" && err != nil) || (c.err != "" && got != c.err) {
			t.Errorf("%q: %v", c.tmpl, err)
		}
	}
	got, err := generateNotes(`{{guestname}}\n{{vmid}}\\{{node}} {{ vmid }}`, map[string]string{"guestname": "web", "vmid": "100", "node": "pve1", "cluster": "c"})
	if err != nil || got != "web\n100\\pve1 {{ vmid }}" {
		t.Errorf("generate: %q %v", got, err)
	}
	s := startSim(t)
	tok := s.APIToken()
	r := call(t, s, "POST", "/nodes/pve1/vzdump", tok, url.Values{"vmid": {"100"}, "storage": {"local"}, "notes-template": {"a\nb"}})
	if r.code != 400 || errsOf(t, r)["notes-template"] != "contains a line feed" {
		t.Errorf("line feed: %s", r.body)
	}
	// "0" is false to Perl: not checked, no notes written
	vol, st := backup(t, s, "pve1", 100, url.Values{"notes-template": {"0"}})
	if st["exitstatus"] != "OK" {
		t.Fatalf("backup: %v", st)
	}
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content/"+vol, tok, nil)
	if d := r.data(t).(map[string]any); d["notes"] != "" {
		t.Errorf("notes of template '0': %s", r.body)
	}
	vol, _ = backup(t, s, "pve1", 100, url.Values{"notes-template": {`{{guestname}}\n{{cluster}}`}})
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content/"+vol, tok, nil)
	if d := r.data(t).(map[string]any); d["notes"] != "web\npvesim" {
		t.Errorf("notes: %s", r.body)
	}
}

// Parameters vzdump no longer has, and the archive size line.
func TestRefVzdumpRemovedParamsAndSizeLine(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	for _, k := range []string{"maxfiles", "size"} {
		r := call(t, s, "POST", "/nodes/pve1/vzdump", s.APIToken(), url.Values{"vmid": {"100"}, "storage": {"local"}, k: {"1000"}})
		if r.code != 400 || errsOf(t, r)[k] != "property is not defined in schema and the schema does not allow additional properties" {
			t.Errorf("%s: %s", k, r.body)
		}
	}
	for n, want := range map[int64]string{0: "0KB", 1023: "0KB", 1536: "1KB", 1<<20 - 1: "1023KB", 3<<19 + 1: "1MB", 3 << 29: "1.50GB", 5 << 40: "5.00TB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %s, want %s", n, got, want)
		}
	}
	vol, _ := backup(t, s, "pve1", 100, nil)
	fi, err := os.Stat(filepath.Join(s.StorageDumpDir("pve1", "local"), strings.TrimPrefix(vol, "local:backup/")))
	if err != nil {
		t.Fatal(err)
	}
	upid := startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"local"}})
	waitTask(t, s, upid)
	logHas(t, taskLog(t, s, upid), "INFO: archive file size: "+formatSize(fi.Size()))
}

// PUT on a dir backup writes the sidecars without looking for the archive;
// the protected limit counts backups of the same guest type.
func TestRefContentPutOnDeletedBackup(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	vol, _ := backup(t, s, "pve1", 100, nil)
	archive := filepath.Join(s.StorageDumpDir("pve1", "local"), strings.TrimPrefix(vol, "local:backup/"))
	if err := os.Remove(archive); err != nil {
		t.Fatal(err)
	}
	r := call(t, s, "PUT", "/nodes/pve1/storage/local/content/"+vol, tok, url.Values{"notes": {"still here"}, "protected": {"1"}})
	if r.code != 200 {
		t.Fatalf("PUT on deleted backup: %s %s", r.status, r.body)
	}
	if b, err := os.ReadFile(archive + ".notes"); err != nil || string(b) != "still here" {
		t.Fatalf("notes sidecar: %q %v", b, err)
	}
	if _, err := os.Stat(archive + ".protected"); err != nil {
		t.Fatalf("protected sidecar: %v", err)
	}
	// the listing does not show it; GET fails like volume_size_info
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content/"+vol, tok, nil)
	if r.status != "500 volume_size_info on '"+vol+"' failed - no format" {
		t.Fatalf("GET: %s", r.status)
	}
	// the protected limit is per guest type: a CT's and a VM's with the same vmid do not add up
	cfg := DefaultConfig()
	for i := range cfg.Storages {
		if cfg.Storages[i].ID == "nas" {
			cfg.Storages[i].MaxProtectedBackups = 1
		}
	}
	s2 := startSim(t, func(o *Options) { o.Config = cfg })
	ct, _ := backup(t, s2, "pve1", 100, url.Values{"storage": {"nas"}, "protected": {"1"}})
	if ct == "" {
		t.Fatal("no CT backup")
	}
	fake := "vzdump-qemu-100-2021_01_01-00_00_00.vma.zst"
	if err := os.WriteFile(filepath.Join(s2.StorageDumpDir("pve1", "nas"), fake), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = call(t, s2, "PUT", "/nodes/pve1/storage/nas/content/nas:backup/"+fake, s2.APIToken(), url.Values{"protected": {"1"}})
	if r.code != 200 {
		t.Fatalf("VM backup of vmid 100 counted against the CT's: %s", r.status)
	}
	second, _ := backup(t, s2, "pve1", 100, url.Values{"storage": {"nas"}})
	r = call(t, s2, "PUT", "/nodes/pve1/storage/nas/content/"+second, s2.APIToken(), url.Values{"protected": {"1"}})
	if r.status != "500 The number of protected backups per guest is limited to 1 on storage 'nas'" {
		t.Fatalf("limit: %s", r.status)
	}
}

// Task endpoints: the upid index looks at nothing; download with start or
// limit is a plain error.
func TestRefTaskEndpointDetails(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	upid := "UPID:pve1:00001234:00005678:5F000000:vzdump:100:root@pam:"
	if r := call(t, s, "GET", "/nodes/pve1/tasks/"+upid, s.APIToken(), nil); r.code != 200 {
		t.Errorf("index of unknown task: %s", r.status)
	}
	if r := call(t, s, "GET", "/nodes/pve1/tasks/"+upid+"/status", s.APIToken(), nil); r.code != 400 || errsOf(t, r)["upid"] != "no such task" {
		t.Errorf("status of unknown task: %s %s", r.status, r.body)
	}
	r := call(t, s, "GET", "/nodes/pve1/tasks/"+upid+"/log", s.APIToken(), url.Values{"download": {"1"}, "limit": {"5"}})
	if r.status != "500 'download' cannot be used together with 'start' or 'limit' parameters" {
		t.Errorf("download+limit: %s", r.status)
	}
}

// VZDump->new collects the storage errors and the task fails with all of
// them; the guest is not touched and nothing is written.
func TestRefVzdumpStorageErrors(t *testing.T) {
	t.Parallel()
	s := startSim(t, func(o *Options) { o.Config = refConfig() })
	for storage, want := range map[string]string{
		"nope":      "could not activate storage 'nope': storage 'nope' does not exist could not get storage information for 'nope': storage 'nope' does not exist",
		"off":       "could not activate storage 'off': storage 'off' is disabled",
		"only1":     "could not activate storage 'only1': storage 'only1' is not available on node 'pve2'",
		"local-lvm": "could not get storage information for 'local-lvm': can't use storage 'local-lvm' for backups - wrong content type",
	} {
		upid := startTask(t, s, "POST", "/nodes/pve2/vzdump", url.Values{"vmid": {"101"}, "storage": {storage}})
		if st := waitTask(t, s, upid); st["exitstatus"] != want {
			t.Errorf("%s: %v", storage, st["exitstatus"])
		}
		lines := taskLog(t, s, upid)
		if len(lines) != 1 || lines[0] != "TASK ERROR: "+want {
			t.Errorf("%s: log %q", storage, lines)
		}
	}
	if g, _ := s.GuestState(101); g.Lock != "" {
		t.Errorf("CT 101 locked: %+v", g)
	}
}

// vzdump/defaults checks the storage like storage_info and hides the
// node-level settings from callers without Sys.Audit.
func TestRefVzdumpDefaultsEndpoint(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	for i := range cfg.Storages {
		if cfg.Storages[i].ID == "nas" {
			cfg.Storages[i].PruneBackups = "keep-last=3"
		}
	}
	s := startSim(t, func(o *Options) { o.Config = cfg })
	tok := s.APIToken()
	if r := call(t, s, "GET", "/nodes/pve1/vzdump/defaults?storage=local-lvm", tok, nil); r.status != "500 can't use storage 'local-lvm' for backups - wrong content type" {
		t.Errorf("local-lvm: %s", r.status)
	}
	if r := call(t, s, "GET", "/nodes/pve1/vzdump/defaults?storage=nope", tok, nil); r.status != "500 storage 'nope' does not exist" {
		t.Errorf("nope: %s", r.status)
	}
	d := call(t, s, "GET", "/nodes/pve1/vzdump/defaults?storage=nas", tok, nil).data(t).(map[string]any)
	if d["storage"] != "nas" || d["prune-backups"] != "keep-last=3" || d["dumpdir"] != s.StorageDumpDir("pve1", "nas") || d["ionice"] != float64(7) {
		t.Errorf("root: %v", d)
	}
	d = call(t, s, "GET", "/nodes/pve1/vzdump/defaults", s.ReadOnlyToken(), nil).data(t).(map[string]any)
	if _, ok := d["dumpdir"]; ok || d["storage"] != "local" || d["ionice"] != nil || d["prune-backups"] != "keep-all=1" {
		t.Errorf("auditor: %v", d)
	}
}

// start=1 on a restore: qemu-server checks VM.PowerMgmt before forking;
// pve-container does not (its worker calls vm_start directly).
func TestRefQemuRestorePowerMgmt(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Users = append(cfg.Users, UserConfig{ID: "alloc@pve", ACL: []ACLEntry{
		{Path: "/storage", Roles: []string{"PVEDatastoreUser"}},
		{Path: "/vms", Privs: []string{"VM.Allocate", "VM.Backup", "VM.Audit"}},
	}, Tokens: []TokenConfig{{ID: "t", Secret: "a"}}})
	s := startSim(t, func(o *Options) { o.Config = cfg })
	volVM, _ := backup(t, s, "pve1", 200, nil)
	volCT, _ := backup(t, s, "pve1", 100, nil)
	tok := "alloc@pve!t=a"
	r := call(t, s, "POST", "/nodes/pve1/qemu", tok, url.Values{"vmid": {"250"}, "archive": {volVM}, "start": {"1"}})
	if r.status != "403 Permission check failed (/vms/250, VM.PowerMgmt)" {
		t.Fatalf("qemu start=1: %s", r.status)
	}
	if _, ok := s.GuestState(250); ok {
		t.Fatal("VM 250 created")
	}
	r = call(t, s, "POST", "/nodes/pve1/lxc", tok, url.Values{"vmid": {"150"}, "ostemplate": {volCT}, "restore": {"1"}, "storage": {"local-lvm"}, "start": {"1"}})
	if r.code != 200 {
		t.Fatalf("lxc start=1: %s", r.status)
	}
	if st := waitTask(t, s, r.data(t).(string)); st["exitstatus"] != "OK" {
		t.Fatalf("lxc restore: %v", st)
	}
	if g, _ := s.GuestState(150); g.Status != "running" {
		t.Fatalf("CT 150: %+v", g)
	}
}

// DELETE of a guest: what destroy_vm checks before forking, per type.
func TestRefGuestDelete(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	del := func(path string, q url.Values) *resp { return call(t, s, "DELETE", path, tok, q) }
	if r := del("/nodes/pve1/lxc/999", nil); r.status != "500 Configuration file 'nodes/pve1/lxc/999.conf' does not exist" {
		t.Errorf("absent: %s", r.status)
	}
	if r := del("/nodes/pve1/lxc/100", nil); r.status != "500 unable to destroy CT 100 - container is running" {
		t.Errorf("running CT: %s", r.status)
	}
	s.SetGuestLock(101, "backup")
	if r := del("/nodes/pve2/lxc/101", nil); r.status != "500 CT is locked (backup)" {
		t.Errorf("locked CT: %s", r.status)
	}
	s.SetGuestLock(101, "")
	if err := s.AddGuest(GuestConfig{VMID: 110, Type: "lxc", Node: "pve1", Protection: true}); err != nil {
		t.Fatal(err)
	}
	if r := del("/nodes/pve1/lxc/110", nil); r.status != "500 can't remove CT 110 - protection mode enabled" {
		t.Errorf("protected CT: %s", r.status)
	}
	if r := del("/nodes/pve1/qemu/200", url.Values{"force": {"1"}}); r.code != 400 || errsOf(t, r)["force"] == nil {
		t.Errorf("force on qemu: %s %s", r.status, r.body)
	}
	// force stops a running CT in the worker
	r := del("/nodes/pve1/lxc/100", url.Values{"force": {"1"}})
	if r.code != 200 {
		t.Fatalf("force: %s", r.status)
	}
	upid := r.data(t).(string)
	// PVE warn()s the forced stop, so the worker ends with one warning
	if st := waitTask(t, s, upid); st["exitstatus"] != "WARNINGS: 1" {
		t.Fatalf("force delete: %v", st)
	}
	logHas(t, taskLog(t, s, upid), "WARN: forced to stop CT 100 before destroying!")
	if _, ok := s.GuestState(100); ok {
		t.Fatal("CT 100 still there")
	}
	if _, err := os.Stat(s.GuestRootfs(100)); !os.IsNotExist(err) {
		t.Fatalf("CT 100 volume: %v", err)
	}
	// QEMU: running is synchronous, the lock is the worker's
	waitTask(t, s, startTask(t, s, "POST", "/nodes/pve1/qemu/200/status/start", nil))
	if r := del("/nodes/pve1/qemu/200", nil); r.status != "500 VM 200 is running - destroy failed" {
		t.Errorf("running VM: %s", r.status)
	}
	waitTask(t, s, startTask(t, s, "POST", "/nodes/pve1/qemu/200/status/stop", nil))
	s.SetGuestLock(200, "backup")
	r = del("/nodes/pve1/qemu/200", nil)
	if r.code != 200 {
		t.Fatalf("locked VM: %s", r.status)
	}
	if st := waitTask(t, s, r.data(t).(string)); st["exitstatus"] != "VM is locked (backup)" {
		t.Errorf("locked VM: %v", st)
	}
	// skiplock is for root@pam itself; its API token is another user
	r = del("/nodes/pve1/qemu/200", url.Values{"skiplock": {"1"}})
	if r.code != 400 || errsOf(t, r)["skiplock"] != "Only root may use this option." {
		t.Fatalf("skiplock with a token: %s %s", r.status, r.body)
	}
	ticket, csrf := s.makeTicket("root@pam", time.Now())
	req, _ := http.NewRequest("DELETE", s.Endpoint()+"api2/json/nodes/pve1/qemu/200?skiplock=1", nil)
	req.Header.Set("Cookie", "PVEAuthCookie="+url.QueryEscape(ticket))
	req.Header.Set("CSRFPreventionToken", csrf)
	res, err := httpClient(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Data string }
	_ = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("skiplock as root@pam: %s", res.Status)
	}
	if st := waitTask(t, s, body.Data); st["exitstatus"] != "OK" {
		t.Errorf("skiplock: %v", st)
	}
	if _, err := os.Stat(s.GuestDisk(200)); !os.IsNotExist(err) {
		t.Errorf("VM 200 disk: %v", err)
	}
}

// cluster/nextid: the first free vmid from 100; a given vmid is checked
// against the whole cluster.
func TestRefClusterNextID(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	if d := fmt.Sprint(call(t, s, "GET", "/cluster/nextid", tok, nil).data(t)); d != "102" {
		t.Errorf("nextid: %s", d)
	}
	if r := call(t, s, "GET", "/cluster/nextid?vmid=101", tok, nil); r.code != 400 || errsOf(t, r)["vmid"] != "VM 101 already exists" {
		t.Errorf("taken (CT on pve2): %s %s", r.status, r.body)
	}
	if d := fmt.Sprint(call(t, s, "GET", "/cluster/nextid?vmid=150", tok, nil).data(t)); d != "150" {
		t.Errorf("free: %s", d)
	}
}

// The target storage's Datastore.AllocateSpace is checked in the qmrestore
// worker (parse_backup_hints) for anyone but root@pam; the exception shows
// its code in the task status, and the new VM is left behind, empty.
func TestRefQemuRestoreTargetStoragePermission(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Users = append(cfg.Users, UserConfig{ID: "narrow@pve", ACL: []ACLEntry{
		{Path: "/storage/local", Privs: []string{"Datastore.AllocateSpace", "Datastore.Audit"}},
		{Path: "/vms", Privs: []string{"VM.Allocate", "VM.Backup", "VM.Audit"}},
	}, Tokens: []TokenConfig{{ID: "t", Secret: "n"}}})
	s := startSim(t, func(o *Options) { o.Config = cfg })
	volVM, _ := backup(t, s, "pve1", 200, nil)
	r := call(t, s, "POST", "/nodes/pve1/qemu", "narrow@pve!t=n", url.Values{"vmid": {"250"}, "archive": {volVM}})
	if r.code != 200 {
		t.Fatalf("restore: %s", r.status)
	}
	if st := waitTask(t, s, r.data(t).(string)); st["exitstatus"] != "403 Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)" {
		t.Fatalf("exit: %v", st)
	}
	if c := mustConfig(t, s, 250); c != "" {
		t.Fatalf("VM 250: %q", c)
	}
}

// Stopping a restore task (DELETE on the task) in the data phase is a
// failure like any other: the CT is removed, the VM keeps the temporary
// config without its disk.
func TestRefRestoreTaskStopped(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	// 32 KiB of data in each guest: at 8 KiB/s a data phase lasts seconds
	if err := os.WriteFile(filepath.Join(s.GuestRootfs(101), "pad.bin"), make([]byte, 32<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.GuestDisk(200), make([]byte, 32<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	volCT, _ := backup(t, s, "pve2", 101, nil)
	volVM, _ := backup(t, s, "pve1", 200, nil)
	s.SetThroughput(8 << 10)
	stopWhen := func(upid, line string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if strings.Contains(strings.Join(taskLog(t, s, upid), "\n"), line) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task never logged %q", line)
			}
		}
		if r := call(t, s, "DELETE", "/nodes/"+strings.Split(upid, ":")[1]+"/tasks/"+upid, tok, nil); r.code != 200 {
			t.Fatalf("stop: %s", r.status)
		}
	}
	upid := startTask(t, s, "POST", "/nodes/pve2/lxc", url.Values{"vmid": {"101"}, "ostemplate": {volCT}, "restore": {"1"}, "force": {"1"}, "storage": {"local-lvm"}})
	stopWhen(upid, "extracting archive '")
	if st := waitTask(t, s, upid); st["exitstatus"] != "unable to restore CT 101 - received interrupt" {
		t.Fatalf("lxc: %v", st)
	}
	if _, ok := s.GuestState(101); ok {
		t.Fatal("CT 101 survived an interrupted overwrite")
	}
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"200"}, "archive": {volVM}, "force": {"1"}})
	stopWhen(upid, "map 'drive-scsi0'")
	if st := waitTask(t, s, upid); st["exitstatus"] != "interrupted by signal" {
		t.Fatalf("qemu: %v", st)
	}
	if c := mustConfig(t, s, 200); c != "memory: 128\n" {
		t.Fatalf("VM 200: %q", c)
	}
	if _, err := os.Stat(s.GuestDisk(200)); !os.IsNotExist(err) {
		t.Fatalf("VM 200 disk: %v", err)
	}
}

// check_volume_access lets a guest's own backup be restored onto it without
// any privilege on the archive's storage; another vmid needs
// Datastore.AllocateSpace there plus VM.Backup on the archive's guest.
func TestRefRestoreOwnBackup(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Users = append(cfg.Users, UserConfig{ID: "own@pve", ACL: []ACLEntry{
		{Path: "/storage/local-lvm", Privs: []string{"Datastore.AllocateSpace"}},
		{Path: "/vms/101", Privs: []string{"VM.Backup", "VM.Audit"}},
		{Path: "/vms/150", Privs: []string{"VM.Allocate"}},
	}, Tokens: []TokenConfig{{ID: "t", Secret: "o"}}})
	s := startSim(t, func(o *Options) { o.Config = cfg })
	vol, _ := backup(t, s, "pve2", 101, nil)
	tok := "own@pve!t=o"
	r := call(t, s, "POST", "/nodes/pve2/lxc", tok, url.Values{"vmid": {"101"}, "ostemplate": {vol}, "restore": {"1"}, "force": {"1"}, "storage": {"local-lvm"}})
	if r.code != 200 {
		t.Fatalf("own backup: %s", r.status)
	}
	if st := waitTask(t, s, r.data(t).(string)); st["exitstatus"] != "OK" {
		t.Fatalf("own backup restore: %v", st)
	}
	r = call(t, s, "POST", "/nodes/pve2/lxc", tok, url.Values{"vmid": {"150"}, "ostemplate": {vol}, "restore": {"1"}, "storage": {"local-lvm"}})
	if r.status != "403 Permission check failed (/storage/local, Datastore.AllocateSpace)" {
		t.Fatalf("into another vmid: %s", r.status)
	}
}

// A failed PBS restore over an existing VM: the temporary config carried
// the lock, so removing it works (no "no lock found" line); the old disk is
// gone all the same.
func TestRefQemuPBSRestoreFails(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	vol, _ := backup(t, s, "pve1", 200, url.Values{"storage": {"pbs"}})
	if !strings.HasPrefix(vol, "pbs:backup/vm/200/") {
		t.Fatalf("volid %q", vol)
	}
	s.FailTask("qmrestore", 200, "restore failed: connection reset")
	upid := startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"200"}, "archive": {vol}, "force": {"1"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "restore failed: connection reset" {
		t.Fatalf("exit: %v", st)
	}
	lines := taskLog(t, s, upid)
	if n := len(lines); n < 2 || lines[n-2] != "error before or during data restore, some or all disks were not completely restored. VM 200 state is NOT cleaned up." {
		t.Fatalf("log: %q", lines)
	}
	for _, l := range lines {
		if strings.Contains(l, "no lock found") {
			t.Fatalf("PBS temp config has the lock: %q", lines)
		}
	}
	if c := mustConfig(t, s, 200); c != "memory: 128\n" {
		t.Fatalf("config: %q", c)
	}
	if _, err := os.Stat(s.GuestDisk(200)); !os.IsNotExist(err) {
		t.Fatalf("disk: %v", err)
	}
	// a CT snapshot is refused before anything changes
	ct, _ := backup(t, s, "pve1", 100, url.Values{"storage": {"pbs"}})
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"260"}, "archive": {ct}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "got unexpected backup format 'pbs-ct'" {
		t.Fatalf("pbs-ct: %v", st)
	}
	if c := mustConfig(t, s, 260); c != "" {
		t.Fatalf("VM 260: %q", c)
	}
}
