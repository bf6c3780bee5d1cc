package pvesim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim/internal/archive"
)

func vzdumpSchema() schema {
	return schema{
		"vmid":                      {t: "string", format: "pve-vmid-list"},
		"all":                       pdB(),
		"exclude":                   {t: "string", format: "pve-vmid-list"},
		"pool":                      pdS(),
		"storage":                   pdStorage(),
		"dumpdir":                   pdS(),
		"mode":                      pdE("snapshot", "suspend", "stop"),
		"compress":                  pdE("0", "1", "gzip", "lzo", "zstd"),
		"zstd":                      {t: "integer"},
		"pigz":                      {t: "integer"},
		"notes-template":            pd{t: "string", maxLen: 1024, requires: "storage"},
		"protected":                 pdB().needs("storage"),
		"prune-backups":             pdS(),
		"remove":                    pdB(),
		"bwlimit":                   pdUint(),
		"ionice":                    pdI(0, 8),
		"performance":               pdS(),
		"fleecing":                  pdS(),
		"lockwait":                  pdUint(),
		"stopwait":                  pdUint(),
		"exclude-path":              {t: "array"},
		"stdexcludes":               pdB(),
		"tmpdir":                    pdS(),
		"script":                    pdS(),
		"job-id":                    pdS(),
		"mailto":                    pdS(),
		"mailnotification":          pdE("always", "failure"),
		"notification-mode":         pdE("auto", "legacy-sendmail", "notification-system"),
		"pbs-change-detection-mode": pdE("legacy", "data", "metadata"),
		"quiet":                     pdB(),
		"stop":                      pdB(),
		"stdout":                    pdB(),
	}
}

var (
	reNotesEscape  = regexp.MustCompile(`\\(.)`)
	reNotesVarName = regexp.MustCompile(`\{\{([^\s{}]+)\}\}`)
	reNotesKnown   = regexp.MustCompile(`\{\{(cluster|guestname|node|vmid)\}\}`)
)

// verifyNotesTemplate is vzdump's $verify_notes_template: a line feed is
// refused outright; otherwise every escape other than \n and \\ and every
// {{name}} that is not cluster, guestname, node or vmid is collected, escapes
// first, and reported together. An escape's position is that of its
// backslash; a variable's is the end of the match minus the name's length.
func verifyNotesTemplate(tmpl string) error {
	if strings.Contains(tmpl, "\n") {
		return errors.New("contains a line feed")
	}
	var problems []string
	for _, m := range reNotesEscape.FindAllStringSubmatchIndex(tmpl, -1) {
		if c := tmpl[m[2]:m[3]]; c != "n" && c != "\\" {
			problems = append(problems, fmt.Sprintf("escape sequence '\\%s' at char %d", c, m[0]))
		}
	}
	for _, m := range reNotesVarName.FindAllStringSubmatchIndex(tmpl, -1) {
		name := tmpl[m[2]:m[3]]
		if !reNotesKnown.MatchString("{{" + name + "}}") {
			problems = append(problems, fmt.Sprintf("variable '%s' at char %d", name, m[1]-len(name)))
		}
	}
	if len(problems) > 0 {
		return errors.New("found unknown: " + strings.Join(problems, ", "))
	}
	return nil
}

// generateNotes is vzdump's $generate_notes: escapes are replaced first,
// then the known variables.
func generateNotes(tmpl string, vars map[string]string) (string, error) {
	if err := verifyNotesTemplate(tmpl); err != nil {
		return "", err
	}
	out := reNotesEscape.ReplaceAllStringFunc(tmpl, func(e string) string {
		if e[1] == 'n' {
			return "\n"
		}
		return "\\"
	})
	return reNotesKnown.ReplaceAllStringFunc(out, func(v string) string { return vars[v[2:len(v)-2]] }), nil
}

type vzdumpJob struct {
	node      string
	vmids     []int // local (incl. orphans), in order
	p         *params
	auth      *authInfo
	storageID string
	dumpdir   string
	compress  string
	mode      string
	cmdline   string
	all       bool
}

func parseVMIDList(s string) []int {
	var out []int
	for _, f := range regexp.MustCompile(`[,;\s]+`).Split(s, -1) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// hVzdump is POST /nodes/{node}/vzdump: the parameter permissions, then
// verify_vzdump_parameters, then the guests on this node, then the worker.
func (s *Sim) hVzdump(rq *request) (any, error) {
	a, p, n := rq.auth, rq.p, rq.vars["node"]
	storageID := p.str("storage")
	if storageID == "" && !p.has("dumpdir") {
		storageID = "local"
	}
	if err := s.checkVzdumpParamPermissions(a, p, n, storageID); err != nil {
		return nil, err
	}
	all, err := verifyVzdumpParameters(p)
	if err != nil {
		return nil, err
	}
	local := s.selectLocalGuests(p, n, all)
	if p.boolv("stop", false) {
		s.stopRunningBackups(n)
	}
	// "silent exit if specified VMs run on other nodes" (also after stop=1)
	if len(local) == 0 && (!all || p.boolv("stop", false)) {
		return "OK", nil
	}
	if storageID != "" {
		if err := s.checkAll(a, "/storage/"+storageID, "Datastore.AllocateSpace"); err != nil {
			return nil, err
		}
	}
	job := &vzdumpJob{node: n, vmids: local, p: p, auth: a, storageID: storageID, dumpdir: p.str("dumpdir"),
		compress: p.str("compress"), mode: p.str("mode"), all: all}
	if job.mode == "" {
		job.mode = "snapshot"
	}
	job.cmdline = vzdumpCmdline(rq)
	id := ""
	if len(local) == 1 {
		id = strconv.Itoa(local[0])
	}
	t := s.newTask(n, "vzdump", id, a.authid)
	s.runTask(t, func(t *task) error { return s.runVzdump(t, job) })
	return t.upid, nil
}

// checkVzdumpParamPermissions: root-only options, the CLI-only stdout, and
// the options that need Sys.Modify or Datastore.Allocate.
func (s *Sim) checkVzdumpParamPermissions(a *authInfo, p *params, n, storageID string) error {
	for _, k := range []string{"dumpdir", "tmpdir", "script", "job-id"} {
		if p.has(k) && a.authid != "root@pam" {
			return paramErr1(k, "Only root may set this option.")
		}
	}
	if p.has("stdout") {
		return paramErr1("stdout", "option is only allowed on the command line interface.")
	}
	for _, k := range []string{"bwlimit", "ionice", "performance"} {
		if p.has(k) {
			if err := s.checkAll(a, "/", "Sys.Modify"); err != nil {
				return err
			}
		}
	}
	if p.has("prune-backups") {
		if err := s.checkAll(a, "/storage/"+storageID, "Datastore.Allocate"); err != nil {
			return err
		}
	}
	if p.boolv("stop", false) {
		return s.checkAll(a, "/nodes/"+n, "Sys.Modify")
	}
	return nil
}

// verifyVzdumpParameters is verify_vzdump_parameters: conflicts,
// prune-backups, fleecing, notes-template, and only then the missing vmid.
// It reports whether the job selects all guests.
func verifyVzdumpParameters(p *params) (all bool, err error) {
	all = p.boolv("all", false) || p.has("exclude") && !p.has("pool")
	if p.has("vmid") {
		for _, k := range []string{"all", "exclude", "pool"} {
			if p.has(k) && (k != "all" || p.boolv("all", false)) {
				return false, paramErr1(k, "option conflicts with option 'vmid'")
			}
		}
	}
	if pr := p.str("prune-backups"); pr != "" {
		if _, err := parseRetention(pr); err != nil {
			return false, paramErr1("prune-backups", err.Error())
		}
	}
	if f := p.str("fleecing"); f != "" && (strings.Contains(f, "enabled=1") || f == "1") && !strings.Contains(f, "storage=") {
		return false, paramErr1("fleecing", "'storage' parameter is required when 'enabled' is set")
	}
	// Perl truth: an empty or "0" template is not checked (nor used).
	if t := p.str("notes-template"); t != "" && t != "0" {
		if err := verifyNotesTemplate(t); err != nil {
			return false, paramErr1("notes-template", err.Error())
		}
	}
	if !p.has("vmid") && !all && !p.has("pool") && !p.boolv("stop", false) {
		return false, paramErr1("vmid", "property is missing")
	}
	return all, nil
}

// selectLocalGuests lists, sorted, the selected guests that run on node n
// (others are silently skipped); a vmid that does not exist is kept, so its
// backup fails visibly.
func (s *Sim) selectLocalGuests(p *params, n string, all bool) []int {
	var local []int
	s.mu.Lock()
	defer s.mu.Unlock()
	if all {
		excl := map[int]bool{}
		for _, x := range parseVMIDList(p.str("exclude")) {
			excl[x] = true
		}
		for id, g := range s.guests {
			if g.node == n && !excl[id] {
				local = append(local, id)
			}
		}
	} else if p.has("vmid") {
		for _, id := range parseVMIDList(p.str("vmid")) {
			if g := s.guests[id]; g != nil && g.node != n {
				continue
			}
			local = append(local, id)
		}
	}
	sort.Ints(local)
	return local
}

func shellQuote(v string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_.,:=/@+-]+$`).MatchString(v) {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'"'"'`) + "'"
}

func vzdumpCmdline(rq *request) string {
	parts := []string{"vzdump"}
	if rq.p.has("vmid") {
		parts = append(parts, strings.Join(strings.FieldsFunc(rq.p.str("vmid"), func(r rune) bool { return r == ',' || r == ';' || r == ' ' }), " "))
	}
	keys := sortedKeys(rq.p.m)
	for _, k := range keys {
		if k == "vmid" {
			continue
		}
		parts = append(parts, "--"+k, shellQuote(rq.p.m[k]))
	}
	for _, k := range sortedKeys(rq.p.arr) {
		for _, v := range rq.p.arr[k] {
			parts = append(parts, "--"+k, shellQuote(v))
		}
	}
	return strings.Join(parts, " ")
}

// runVzdump is the vzdump worker: the storage checks of VZDump->new, the
// node's global lock, the per-guest VM.Backup check, then each guest.
func (s *Sim) runVzdump(t *task, job *vzdumpJob) error {
	st, err := s.checkVzdumpStorage(job)
	if err != nil {
		return err
	}
	release, err := s.takeGlobalVzdumpLock(t, job)
	if err != nil {
		return err
	}
	defer release()
	t.log("INFO: starting new backup job: %s", job.cmdline)
	if err := s.checkVMBackupPerGuest(job); err != nil {
		return err
	}
	if s.overhead > 0 {
		if err := t.sleep(s.overhead); err != nil {
			return err
		}
	}
	failed := false
	for _, id := range job.vmids {
		err := s.backupGuest(t, job, st, id)
		if errors.Is(err, errInterrupted) {
			return errInterrupted
		}
		if err != nil {
			failed = true
		}
	}
	if failed {
		t.log("INFO: Backup job finished with errors")
		return errors.New("job errors")
	}
	t.log("INFO: Backup job finished successfully")
	return nil
}

// checkVzdumpStorage is VZDump->new's storage setup: it collects
// activate_storage's and storage_info's errors and fails with all of them
// (the task status joins the lines with " "). With dumpdir the directory
// must exist, and the storage is nil.
func (s *Sim) checkVzdumpStorage(job *vzdumpJob) (*storage, error) {
	if job.dumpdir != "" {
		if job.p.has("storage") {
			return nil, errors.New("cannot use options 'storage' and 'dumpdir' at the same time")
		}
		if fi, err := os.Stat(job.dumpdir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("dumpdir '%s' does not exist", job.dumpdir)
		}
		return nil, nil
	}
	id := job.storageID
	var errs []string
	if _, err := s.storageFor(id, job.node); err != nil {
		errs = append(errs, fmt.Sprintf("could not activate storage '%s': %s", id, err))
	}
	s.mu.Lock()
	st := s.storages[id]
	s.mu.Unlock()
	switch {
	case st == nil:
		errs = append(errs, fmt.Sprintf("could not get storage information for '%s': storage '%s' does not exist", id, id))
	case !st.content["backup"]:
		errs = append(errs, fmt.Sprintf("could not get storage information for '%s': can't use storage '%s' for backups - wrong content type", id, id))
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return st, nil
}

// takeGlobalVzdumpLock takes the node's vzdump lock, waiting up to
// lockwait minutes (default 180); it returns the function that releases it.
func (s *Sim) takeGlobalVzdumpLock(t *task, job *vzdumpJob) (func(), error) {
	nd := s.nodeByName(job.node)
	release := func() { <-nd.vzdump }
	select {
	case nd.vzdump <- struct{}{}:
		return release, nil
	default:
	}
	lockwait := time.Duration(job.p.intv("lockwait", 180)) * time.Minute
	if lockwait == 0 {
		t.log("ERROR: can't acquire lock '/var/run/vzdump.lock' (wait = 0)")
		return nil, errExitNoStatus
	}
	t.log("INFO: trying to get global lock - waiting...")
	tm := time.NewTimer(lockwait)
	defer tm.Stop()
	select {
	case nd.vzdump <- struct{}{}:
		t.log("INFO: got global lock")
		return release, nil
	case <-tm.C:
		t.log("ERROR: can't acquire lock '/var/run/vzdump.lock' - got timeout")
		return nil, errExitNoStatus
	case <-t.ctx.Done():
		return nil, errInterrupted
	}
}

// checkVMBackupPerGuest is exec_backup's VM.Backup check: without all=1 a
// guest the caller may not back up fails the task; with all=1 it is skipped.
func (s *Sim) checkVMBackupPerGuest(job *vzdumpJob) error {
	var vmids []int
	for _, id := range job.vmids {
		if s.guestExists(id) && !s.can(job.auth, fmt.Sprintf("/vms/%d", id), "VM.Backup") {
			if job.all {
				continue
			}
			return fmt.Errorf("403 Permission check failed (/vms/%d, VM.Backup)", id)
		}
		vmids = append(vmids, id)
	}
	job.vmids = vmids
	return nil
}

// stopRunningBackups (stop=1) interrupts the node's running vzdump tasks.
func (s *Sim) stopRunningBackups(n string) {
	s.mu.Lock()
	ts := append([]*task(nil), s.taskList...)
	s.mu.Unlock()
	for _, t := range ts {
		if t.node == n && t.typ == "vzdump" {
			t.cancel()
		}
	}
}

func (s *Sim) guestExists(vmid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.guests[vmid] != nil
}

func (s *Sim) nodeByName(n string) *node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[n]
}

// guestLog collects the per-guest log (copied next to the archive).
type guestLog struct {
	t     *task
	lines []string
}

func (gl *guestLog) log(level, format string, args ...any) {
	line := level + ": " + fmt.Sprintf(format, args...)
	if level == "WARN" {
		gl.t.warn("%s", fmt.Sprintf(format, args...))
	} else {
		gl.t.log("%s", line)
	}
	gl.lines = append(gl.lines, time.Now().Format("2006-01-02 15:04:05")+" "+line)
}

// guestBackup is one guest's share of a vzdump task. Its methods are the
// steps of vzdump's exec_backup_task, in the order the task log shows them.
type guestBackup struct {
	s     *Sim
	t     *task
	job   *vzdumpJob
	st    *storage // nil with dumpdir
	vmid  int
	gl    *guestLog
	begin time.Time

	g       *guest
	typ     string // lxc or qemu
	status  string // the guest's status when the backup began
	name    string
	conf    *guestConf // the config that goes into the archive (no lock)
	diskKey string     // the VM's scsi0 line
	mode    string     // the job's mode; stop when the guest is not running

	stoppedByUs, suspendedByUs bool
	out                        backupTarget
}

// backupTarget is where one backup goes.
type backupTarget struct {
	time    time.Time
	path    string // the final archive (dir) or the snapshot's archive.tar (PBS)
	dat     string // written here first; a dir archive is renamed to path afterwards
	pbsName string // "<ct|vm>/<vmid>/<time>" on PBS, otherwise ""
	volid   string // "" with dumpdir
}

// backupGuest backs up one guest of the job, logging as exec_backup_task does.
func (s *Sim) backupGuest(t *task, job *vzdumpJob, st *storage, vmid int) (rerr error) {
	b := &guestBackup{s: s, t: t, job: job, st: st, vmid: vmid, gl: &guestLog{t: t}, begin: time.Now()}
	if err := b.checkGuestAndLimits(); err != nil {
		return b.fail(err)
	}
	b.gl.log("INFO", "Starting Backup of VM %d (%s)", vmid, b.typ)
	b.gl.log("INFO", "Backup started at %s", b.begin.In(s.loc).Format("2006-01-02 15:04:05"))
	if err := b.lockGuest(); err != nil {
		return b.fail(err)
	}
	defer func() { b.unlockGuest(rerr != nil) }()
	b.logPlan()
	if err := b.chooseArchiveName(); err != nil {
		return b.fail(err)
	}
	b.stopOrSuspendGuest()
	b.logArchiveStart()
	written, dataBytes, err := s.writeArchive(t, job, st, b.g, b.typ, b.conf, b.out.dat)
	if err != nil {
		return b.discardPartialArchive(err)
	}
	b.logTotals(written, dataBytes)
	if err := b.renameArchive(); err != nil {
		return b.fail(err)
	}
	if b.typ == "qemu" && b.status != "running" {
		b.gl.log("INFO", "stopping kvm after backup task")
	}
	if err := b.addNotesAndProtection(); err != nil {
		return b.fail(err)
	}
	if st != nil {
		if err := s.pruneAfterBackup(b.gl, job, st, vmid, b.typ); err != nil {
			return b.fail(err)
		}
	}
	b.restartOrResumeGuest()
	b.finish()
	return nil
}

// fail logs the guest's failure as exec_backup_task does and returns err.
func (b *guestBackup) fail(err error) error {
	msg := strings.TrimRight(err.Error(), "\n")
	b.gl.log("ERROR", "Backup of VM %d failed - %s", b.vmid, msg)
	b.gl.log("INFO", "Failed at %s", time.Now().In(b.s.loc).Format("2006-01-02 15:04:05"))
	return err
}

// checkGuestAndLimits finds the guest and, with a storage, applies the
// backup limits before anything is logged for it.
func (b *guestBackup) checkGuestAndLimits() error {
	s := b.s
	s.mu.Lock()
	b.g = s.guests[b.vmid]
	if b.g != nil {
		b.typ = b.g.typ
	}
	s.mu.Unlock()
	if b.g == nil {
		return fmt.Errorf("unable to find VM '%d'", b.vmid)
	}
	if b.st != nil {
		return s.checkBackupLimits(b.job, b.st, b.vmid, b.typ)
	}
	return nil
}

// lockGuest logs the guest's status and then locks it "backup" (an already
// locked guest fails here), taking a copy of the config for the archive.
func (b *guestBackup) lockGuest() error {
	s, g := b.s, b.g
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.guests[b.vmid] != g {
		return fmt.Errorf("unable to find VM '%d'", b.vmid)
	}
	b.gl.log("INFO", "status = %s", g.status)
	if l := g.lock(); l != "" {
		return fmt.Errorf("%s is locked (%s)", g.kind(), l)
	}
	g.setLock("backup")
	b.status = g.status
	b.name = g.name()
	b.conf = g.conf.clone()
	b.conf.del("lock")
	b.diskKey = g.conf.get("scsi0")
	b.mode = b.job.mode
	if b.status != "running" {
		b.mode = "stop"
	}
	return nil
}

// unlockGuest removes the backup lock, resumes a guest this backup paused
// and, when the backup failed, starts a guest it stopped.
func (b *guestBackup) unlockGuest(failed bool) {
	s, g := b.s, b.g
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.lock() == "backup" {
		g.setLock("")
	}
	if b.suspendedByUs && g.status == "paused" {
		g.status = "running"
	}
	if b.stoppedByUs && failed {
		g.status, g.started = "running", time.Now()
	}
}

// logPlan logs what will be backed up and how.
func (b *guestBackup) logPlan() {
	gl, p := b.gl, b.job.p
	if b.typ == "lxc" {
		gl.log("INFO", "CT Name: %s", b.name)
		gl.log("INFO", "including mount point rootfs ('/') in backup")
	} else {
		gl.log("INFO", "VM Name: %s", b.name)
		size := int64(0)
		if fi, err := os.Stat(b.s.GuestDisk(b.vmid)); err == nil {
			size = fi.Size()
		}
		vol, _, _ := strings.Cut(b.diskKey, ",")
		gl.log("INFO", "include disk 'scsi0' '%s' %s", vol, humanPVE(size))
	}
	gl.log("INFO", "backup mode: %s", b.mode)
	gl.log("INFO", "ionice priority: %d", p.intv("ionice", 7))
	if p.has("bwlimit") && p.intv("bwlimit", 0) > 0 {
		gl.log("INFO", "bandwidth limit: %d KiB/s", p.intv("bwlimit", 0))
	}
}

// chooseArchiveName picks the archive's name from the current time; when
// that name (or PBS snapshot) is taken it waits for the next second, so a
// backup never overwrites another.
func (b *guestBackup) chooseArchiveName() error {
	for {
		out := b.targetAt(time.Now())
		if !b.targetTaken(out) {
			b.out = out
			return nil
		}
		if err := b.t.sleep(time.Until(out.time.Truncate(time.Second).Add(time.Second))); err != nil {
			return err
		}
	}
}

// targetAt is where a backup started at now goes: a PBS snapshot
// directory, or vzdump-<type>-<vmid>-<local time>.<tar|vma>[.ext] in the
// storage's dump directory (or dumpdir).
func (b *guestBackup) targetAt(now time.Time) backupTarget {
	s, st, job := b.s, b.st, b.job
	out := backupTarget{time: now}
	if st != nil && st.cfg.Type == "pbs" {
		kind := map[string]string{"lxc": "ct", "qemu": "vm"}[b.typ]
		out.pbsName = fmt.Sprintf("%s/%d/%s", kind, b.vmid, now.UTC().Format("2006-01-02T15:04:05Z"))
		out.path = filepath.Join(s.pbsDir(st), filepath.FromSlash(out.pbsName), "archive.tar")
		out.dat = out.path
		out.volid = st.cfg.ID + ":backup/" + out.pbsName
		return out
	}
	dir := job.dumpdir
	if st != nil {
		dir = filepath.Join(s.storagePath(st, job.node), "dump")
	}
	base := fmt.Sprintf("vzdump-%s-%d-%s", b.typ, b.vmid, now.In(s.loc).Format("2006_01_02-15_04_05"))
	ext := ".tar"
	if b.typ == "qemu" {
		ext = ".vma"
	}
	out.path = filepath.Join(dir, base+ext+archive.CompressExt(job.compress))
	out.dat = filepath.Join(dir, base+".dat")
	if st != nil {
		out.volid = st.cfg.ID + ":backup/" + filepath.Base(out.path)
	}
	return out
}

// targetTaken reports whether the archive, its temporary file or (PBS)
// its snapshot directory already exists.
func (b *guestBackup) targetTaken(out backupTarget) bool {
	_, e1 := os.Stat(out.path)
	_, e2 := os.Stat(out.dat)
	if !os.IsNotExist(e1) || !os.IsNotExist(e2) {
		return true
	}
	if out.pbsName != "" {
		_, e3 := os.Stat(filepath.Dir(out.path))
		return !os.IsNotExist(e3)
	}
	return false
}

// stopOrSuspendGuest applies the backup mode to a running guest: stop mode
// stops it, suspend mode pauses a VM (a CT is only logged), snapshot mode
// logs the CT's storage snapshot.
func (b *guestBackup) stopOrSuspendGuest() {
	s, g, gl := b.s, b.g, b.gl
	running := b.status == "running"
	if b.mode == "stop" && running {
		gl.log("INFO", "stopping virtual guest")
		s.mu.Lock()
		g.status = "stopped"
		s.mu.Unlock()
		b.stoppedByUs = true
	}
	if b.mode == "suspend" && running {
		gl.log("INFO", "suspending guest")
		if b.typ == "qemu" {
			s.mu.Lock()
			g.status = "paused"
			s.mu.Unlock()
			b.suspendedByUs = true
		}
	}
	if b.mode == "snapshot" && b.typ == "lxc" {
		gl.log("INFO", "create storage snapshot 'vzdump'")
	}
	if b.typ == "qemu" && !running {
		gl.log("INFO", "starting kvm to execute backup task")
	}
}

// logArchiveStart logs the archive being created (and, on PBS, the
// proxmox-backup-client command line).
func (b *guestBackup) logArchiveStart() {
	gl, out, st := b.gl, b.out, b.st
	if out.pbsName != "" {
		gl.log("INFO", "creating Proxmox Backup Server archive '%s'", out.pbsName)
		gl.log("INFO", "run: /usr/bin/proxmox-backup-client backup --crypt-mode=none %s --backup-type %s --backup-id %d --backup-time %d --repository %s@%s:%s",
			map[string]string{"lxc": "pct.conf:/var/tmp/vzdumptmp/etc/vzdump/pct.conf root.pxar:/mnt/vzsnap0", "qemu": "qemu-server.conf:/var/tmp/vzdumptmp/qemu-server.conf drive-scsi0.img:/dev/zvol"}[b.typ],
			map[string]string{"lxc": "ct", "qemu": "vm"}[b.typ], b.vmid, out.time.Unix(), st.cfg.Username, st.cfg.Server, st.cfg.Datastore)
		gl.log("INFO", "Starting backup: %s", out.pbsName)
		gl.log("INFO", "Client name: %s", b.job.node)
		return
	}
	gl.log("INFO", "creating vzdump archive '%s'", out.path)
	if b.typ == "qemu" {
		gl.log("INFO", "started backup task '%s'", newUUID())
	}
}

// discardPartialArchive removes what a failed write left (the temporary
// file, or the PBS snapshot directory) and fails the guest.
func (b *guestBackup) discardPartialArchive(werr error) error {
	if b.out.pbsName != "" {
		_ = os.RemoveAll(filepath.Dir(b.out.path))
	} else {
		_ = os.Remove(b.out.dat)
	}
	if errors.Is(werr, errInterrupted) {
		_ = b.fail(werr)
		return errInterrupted
	}
	return b.fail(werr)
}

// logTotals logs the amount written as tar, vma or the PBS client report it.
func (b *guestBackup) logTotals(written, dataBytes int64) {
	gl := b.gl
	elapsed := time.Since(b.begin)
	rate := float64(dataBytes) / max(elapsed.Seconds(), 0.001)
	switch {
	case b.out.pbsName != "":
		gl.log("INFO", "%s: had to backup %s of %s (compressed %s) in %.2fs", map[string]string{"lxc": "root.pxar", "qemu": "scsi0"}[b.typ],
			humanIEC(dataBytes), humanIEC(dataBytes), humanIEC(written), elapsed.Seconds())
		gl.log("INFO", "Duration: %.2fs", elapsed.Seconds())
		gl.log("INFO", "End Time: %s", time.Now().In(b.s.loc).Format("Mon Jan  2 15:04:05 2006"))
	case b.typ == "lxc":
		gl.log("INFO", "Total bytes written: %d (%s, %s/s)", written, humanIEC(written), humanIEC(int64(rate)))
	default:
		gl.log("INFO", "100%% (%s of %s) in %ds, read: %s/s, write: %s/s", humanIEC(dataBytes), humanIEC(dataBytes), int(elapsed.Seconds()), humanIEC(int64(rate)), humanIEC(int64(rate)))
		gl.log("INFO", "backup is sparse: 0 B (0%%) total zero data")
		gl.log("INFO", "transferred %s in %d seconds (%s/s)", humanIEC(dataBytes), max(int(elapsed.Seconds()), 1), humanIEC(int64(rate)))
	}
}

// renameArchive gives a dir archive its final name and logs its size; a
// PBS snapshot is already in place.
func (b *guestBackup) renameArchive() error {
	if b.out.pbsName != "" {
		return nil
	}
	if err := os.Rename(b.out.dat, b.out.path); err != nil {
		_ = os.Remove(b.out.dat)
		return err
	}
	if fi, err := os.Stat(b.out.path); err == nil {
		b.gl.log("INFO", "archive file size: %s", formatSize(fi.Size()))
	}
	return nil
}

// addNotesAndProtection writes the notes from notes-template (a failure is
// a warning) and the protected flag (a failure fails the guest).
func (b *guestBackup) addNotesAndProtection() error {
	s, gl, p := b.s, b.gl, b.job.p
	var v *volume
	if b.st != nil {
		v, _ = s.parseVolume(b.st, b.job.node, b.out.volid)
	}
	if v == nil {
		return nil
	}
	if tmpl := p.str("notes-template"); tmpl != "" && tmpl != "0" {
		cluster := s.cfg.ClusterName
		if cluster == "" {
			cluster = "standalone node"
		}
		gl.log("INFO", "adding notes to backup")
		notes, err := generateNotes(tmpl, map[string]string{"cluster": cluster, "guestname": b.name, "node": b.job.node, "vmid": strconv.Itoa(b.vmid)})
		if err == nil {
			err = s.setNotes(v, notes)
		}
		if err != nil {
			gl.log("WARN", "unable to add notes - %s", err)
		}
	}
	if p.boolv("protected", false) {
		gl.log("INFO", "marking backup as protected")
		if err := s.setProtected(v, true); err != nil {
			return fmt.Errorf("unable to set protected flag - %s", err)
		}
	}
	return nil
}

// restartOrResumeGuest brings a guest this backup stopped or paused back.
func (b *guestBackup) restartOrResumeGuest() {
	if b.stoppedByUs {
		b.gl.log("INFO", "restarting vm")
		b.s.mu.Lock()
		b.g.status, b.g.started = "running", time.Now()
		b.s.mu.Unlock()
		b.stoppedByUs = false
	}
	if b.suspendedByUs {
		b.gl.log("INFO", "resume vm")
	}
	if b.mode == "snapshot" && b.typ == "lxc" {
		b.gl.log("INFO", "cleanup temporary 'vzdump' snapshot")
	}
}

// finish logs the guest's last lines and writes its log next to the
// archive (<base>.log) or into the PBS snapshot (client.log).
func (b *guestBackup) finish() {
	b.gl.log("INFO", "Finished Backup of VM %d (%s)", b.vmid, fmtDuration(time.Since(b.begin)))
	b.gl.log("INFO", "Backup finished at %s", time.Now().In(b.s.loc).Format("2006-01-02 15:04:05"))
	logText := strings.Join(b.gl.lines, "\n") + "\n"
	if b.out.pbsName != "" {
		_ = os.WriteFile(filepath.Join(filepath.Dir(b.out.path), "client.log"), []byte(logText), 0o644)
		return
	}
	_, _, lp := dirBackupSidecars(b.out.path)
	_ = os.WriteFile(lp, []byte(logText), 0o644)
}

// humanPVE renders disk sizes like PVE's render_bytes ("32G", "16K").
func humanPVE(n int64) string {
	units := []string{"", "K", "M", "G", "T"}
	i := 0
	for n >= 1024 && n%1024 == 0 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%d%s", n, units[i])
}

// writeArchive produces the archive at dat (renamed by the caller) while
// pacing the work at the simulated throughput.
func (s *Sim) writeArchive(t *task, job *vzdumpJob, st *storage, g *guest, typ string, conf *guestConf, dat string) (written, dataBytes int64, err error) {
	var excl func(string) bool
	var expected int64
	if typ == "lxc" {
		excl = archive.Excluder(job.p.arr["exclude-path"], job.p.boolv("stdexcludes", true))
		expected = archive.RootfsSize(s.GuestRootfs(g.vmid), excl)
	} else if fi, err := os.Stat(s.GuestDisk(g.vmid)); err == nil {
		expected = fi.Size()
	}
	limit := int64(-1)
	if st != nil {
		_, _, avail := s.storageUsage(st, job.node)
		limit = avail
	}
	faultMsg, faulted := s.takeTaskFault("vzdump", g.vmid)
	if err := os.MkdirAll(filepath.Dir(dat), 0o755); err != nil {
		return 0, 0, err
	}
	f, err := os.Create(dat)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	cw := &archive.CountingWriter{W: f, Limit: limit}
	ext := archive.CompressExt(job.compress)
	if st != nil && st.cfg.Type == "pbs" {
		ext = ""
	}
	zw := archive.NewCompressor(cw, ext)
	tc := &archive.CountingWriter{W: zw, Limit: -1} // tar stream bytes ("Total bytes written")
	pc := s.newPacer(t, job.p.intv("bwlimit", 0))
	var done int64
	progress := func(n int64) error {
		done += n
		if faulted && done*2 >= expected {
			return &taskFault{msg: faultMsg}
		}
		return pc.advance(n)
	}
	confText := conf.render()
	if typ == "lxc" {
		dataBytes, err = archive.WriteLXCTar(tc, s.GuestRootfs(g.vmid), confText, excl, progress)
	} else {
		dataBytes, err = archive.WriteQemuTar(tc, s.GuestDisk(g.vmid), confText, progress)
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil && faulted {
		err = &taskFault{msg: faultMsg}
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		var tf *taskFault
		switch {
		case errors.As(err, &tf):
			return 0, dataBytes, errors.New(tf.msg)
		case errors.Is(err, errInterrupted):
			return 0, dataBytes, errInterrupted
		case errors.Is(err, archive.ErrNoSpace):
			if typ == "qemu" {
				return 0, dataBytes, errors.New("vma_queue_write: write error - No space left on device")
			}
			t.log("INFO: tar: -: Cannot write: No space left on device")
			t.log("INFO: tar: Error is not recoverable: exiting now")
			comp := map[string]string{".zst": " | zstd '--threads=1'", ".gz": " | gzip --rsyncable", ".lzo": " | lzop"}[ext]
			return 0, dataBytes, fmt.Errorf("command 'set -o pipefail && tar cpf - --totals --one-file-system -p --sparse --numeric-owner --acls --xattrs '--directory=/mnt/vzsnap0' ./etc/vzdump/pct.conf ./%s >%s' failed: exit code 2", comp, dat)
		}
		return 0, dataBytes, err
	}
	return tc.N, dataBytes, nil
}

type taskFault struct{ msg string }

func (e *taskFault) Error() string { return e.msg }

// checkBackupLimits mirrors exec_backup_task: with protected=1 the
// per-guest protected limit, otherwise (remove=0 and a finite retention) the
// max backup limit = the sum of the keep-* values, counting the guest's
// unprotected backups of the same type.
func (s *Sim) checkBackupLimits(job *vzdumpJob, st *storage, vmid int, typ string) error {
	protected := job.p.boolv("protected", false)
	r, err := s.effectiveRetention(job, st)
	if err != nil {
		return err
	}
	limit := 0
	if !r.keepAll {
		for _, n := range r.keep {
			limit += n
		}
	}
	remove := job.p.boolv("remove", true) && !r.keepAll
	if !protected && (limit == 0 || remove) {
		return nil
	}
	count, prot := 0, 0
	for _, b := range s.listBackups(st, job.node) {
		if b.owner != vmid || b.subtype != typ && b.subtype != "" {
			continue
		}
		if b.protected {
			prot++
		} else {
			count++
		}
	}
	if protected {
		if maxProt := s.maxProtected(job.auth, st); maxProt >= 0 && prot >= maxProt {
			return fmt.Errorf("The number of protected backups per guest is limited to %d on storage '%s'", maxProt, st.cfg.ID) //nolint:staticcheck // PVE's exact message
		}
		return nil
	}
	if count >= limit {
		return fmt.Errorf("There is a max backup limit of %d enforced by the target storage or the vzdump parameters. Either increase the limit or delete old backups.", limit) //nolint:staticcheck // PVE's exact message
	}
	return nil
}

// effectiveRetention: the prune-backups parameter, else the storage's, else keep-all.
func (s *Sim) effectiveRetention(job *vzdumpJob, st *storage) (*retention, error) {
	spec := job.p.str("prune-backups")
	if spec == "" {
		spec = st.cfg.PruneBackups
	}
	if spec == "" {
		spec = "keep-all=1"
	}
	return parseRetention(spec)
}

// --- pruning -----------------------------------------------------------------

var retentionKeys = []string{"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly"}

type retention struct {
	keepAll bool
	keep    map[string]int
	text    string
}

func parseRetention(s string) (*retention, error) {
	r := &retention{keep: map[string]int{}}
	var parts []string
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("invalid format - missing value for '%s'", k)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("invalid format - value '%s' for '%s' is not a valid integer", v, k)
		}
		if k == "keep-all" {
			r.keepAll = n == 1
			parts = append(parts, kv)
			continue
		}
		known := false
		for _, rk := range retentionKeys {
			if rk == k {
				known = true
			}
		}
		if !known {
			return nil, fmt.Errorf("invalid format - unknown property '%s'", k)
		}
		if n > 0 {
			r.keep[k] = n
		}
		parts = append(parts, kv)
	}
	if r.keepAll && len(r.keep) > 0 {
		return nil, errors.New("keep-all cannot be set together with other options.") //nolint:staticcheck // PVE's exact message
	}
	if !r.keepAll && len(r.keep) == 0 {
		r.keepAll = true
	}
	r.text = strings.Join(parts, ", ")
	return r, nil
}

func (s *Sim) pruneAfterBackup(gl *guestLog, job *vzdumpJob, st *storage, vmid int, typ string) error {
	r, err := s.effectiveRetention(job, st)
	if err != nil {
		return err
	}
	if r.keepAll || !job.p.boolv("remove", true) {
		return nil
	}
	gl.log("INFO", "prune older backups with retention: %s", r.text)
	// With a storage, vzdump prunes through the storage's prune_backups for
	// this guest and type: the same marks as the prunebackups API.
	pruned := 0
	for _, e := range s.pruneList(st, job.node, r, vmid, typ) {
		if e.mark != "remove" {
			continue
		}
		gl.log("INFO", "removing backup '%s'", e.volid)
		if e.pbs {
			_ = os.RemoveAll(e.path)
		} else if err := removeArchive(e.path); err != nil {
			gl.log("ERROR", "error when removing backup '%s' - %s", e.volid, err)
		}
		pruned++
	}
	if pruned > 0 {
		gl.log("INFO", "pruned %d backup(s) not covered by keep-retention policy", pruned)
	} else {
		gl.log("INFO", "pruned 0 backup(s)")
	}
	return nil
}

// --- extractconfig -------------------------------------------------------------

func (s *Sim) hExtractConfig(rq *request) (any, error) {
	vol := rq.p.str("volume")
	m := reVolid.FindStringSubmatch(vol)
	if m == nil {
		return nil, err500("unable to parse volume ID '%s'", vol)
	}
	st, err := s.storageFor(m[1], rq.vars["node"])
	if err != nil {
		return nil, err
	}
	v, err := s.parseVolume(st, rq.vars["node"], vol)
	if err != nil {
		return nil, err
	}
	if v.vtype != "backup" {
		return nil, err500("unable to use volume %s - content type needs to be 'backup'", vol)
	}
	if err := s.volumeAccess(rq.auth, st.cfg.ID, v.owner, "backup", v.volid); err != nil {
		return nil, err
	}
	if v.owner > 0 {
		if err := s.checkAll(rq.auth, fmt.Sprintf("/vms/%d", v.owner), "VM.Backup"); err != nil {
			return nil, err
		}
	}
	p := v.path
	if v.pbs {
		p = filepath.Join(v.path, "archive.tar")
	}
	if _, err := os.Stat(p); err != nil {
		return nil, err500("unable to open file '%s' - No such file or directory", p)
	}
	text, _, err := archive.ReadConfig(p)
	if err != nil {
		return nil, err500("%s", err)
	}
	return text, nil
}
