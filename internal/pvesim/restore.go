package pvesim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim/internal/archive"
)

var lxcConfigKeys = []string{"hostname", "memory", "swap", "cores", "cpulimit", "cpuunits", "description", "tags", "onboot",
	"arch", "ostype", "nameserver", "searchdomain", "features", "protection", "startup", "timezone", "console", "tty", "cmode",
	"template", "unprivileged", "rootfs", "mp0", "mp1", "mp2", "mp3", "net0", "net1", "net2", "net3", "lock", "hookscript", "debug", "entrypoint", "env"}

var qemuConfigKeys = []string{"name", "memory", "balloon", "cores", "sockets", "cpu", "cpulimit", "cpuunits", "description", "tags", "onboot",
	"ostype", "bios", "boot", "agent", "scsihw", "machine", "numa", "vga", "serial0", "protection", "startup", "net0", "net1", "net2", "net3",
	"scsi0", "scsi1", "virtio0", "virtio1", "sata0", "ide0", "ide2", "efidisk0", "tpmstate0", "smbios1", "vmgenid", "hotplug", "kvm", "args", "lock", "template", "hookscript"}

var reDriveKey = regexp.MustCompile(`^(scsi|virtio|sata|ide|efidisk|tpmstate)\d+$`)

func lxcCreateSchema() schema {
	sc := schema{
		"vmid":                 pdVMID(true),
		"ostemplate":           pd{t: "string", req: true, maxLen: 255},
		"restore":              pdB(),
		"force":                pdB(),
		"storage":              pdStorage(),
		"unique":               pdB().needs("restore"),
		"ignore-unpack-errors": pdB(),
		"start":                pdB(),
		"bwlimit":              pd{t: "number", min: i64(0)},
		"pool":                 pdS(),
		"ha-managed":           pdB(),
		"password":             pdS(),
		"ssh-public-keys":      pdS(),
	}
	for _, k := range lxcConfigKeys {
		if _, ok := sc[k]; !ok {
			sc[k] = pdS()
		}
	}
	for _, k := range []string{"onboot", "protection", "unprivileged", "template", "console", "debug"} {
		sc[k] = pdB()
	}
	for _, k := range []string{"memory", "swap", "cores", "cpuunits", "tty"} {
		sc[k] = pdUint()
	}
	delete(sc, "lock")
	return sc
}

func qemuCreateSchema() schema {
	sc := schema{
		"vmid":                   pdVMID(true),
		"archive":                pd{t: "string", maxLen: 255},
		"force":                  pdB().needs("archive"),
		"unique":                 pdB().needs("archive"),
		"storage":                pdStorage(),
		"live-restore":           pdB(),
		"start":                  pdB(),
		"bwlimit":                pdUint(),
		"pool":                   pdS(),
		"ha-managed":             pdB(),
		"import-working-storage": pdStorage(),
	}
	for _, k := range qemuConfigKeys {
		if _, ok := sc[k]; !ok {
			sc[k] = pdS()
		}
	}
	for _, k := range []string{"onboot", "protection", "numa", "template", "kvm"} {
		sc[k] = pdB()
	}
	for _, k := range []string{"memory", "cores", "sockets", "cpuunits"} {
		sc[k] = pdUint()
	}
	delete(sc, "lock")
	return sc
}

// restoreSource is a restore's archive after PVE::Storage::check_volume_access.
type restoreSource struct {
	vol  *volume // nil: not a volume ID (a file system path)
	path string  // the archive file (dir) or the snapshot's archive.tar (PBS)
	raw  string  // the parameter as given
}

// checkRestoreVolume is PVE::Storage::check_volume_access(..., 'backup') as
// the create/restore endpoints call it before forking: the volume must be a
// backup, and the caller needs Datastore.Allocate on its storage, or own it
// (the archive's vmid is the target vmid), or hold Datastore.AllocateSpace
// plus VM.Backup on the archive's guest. It does not look at the file.
func (s *Sim) checkRestoreVolume(a *authInfo, n, volid string, vmid int) (*restoreSource, error) {
	m := reVolid.FindStringSubmatch(volid)
	if m == nil {
		// A path: only root@pam itself (not even its tokens) may pass one.
		if a.authid != "root@pam" {
			return nil, err500("Only root can pass arbitrary filesystem paths.")
		}
		return &restoreSource{raw: volid}, nil
	}
	s.mu.Lock()
	st := s.storages[m[1]]
	s.mu.Unlock()
	if st == nil {
		return nil, err500("storage '%s' does not exist", m[1])
	}
	v, err := s.parseVolume(st, n, volid)
	if err != nil {
		return nil, err
	}
	if v.vtype != "backup" {
		return nil, err500("unable to use volume %s - content type needs to be 'backup'", volid)
	}
	sp := "/storage/" + st.cfg.ID
	switch {
	case s.can(a, sp, "Datastore.Allocate"):
	case v.owner == vmid:
		// the owner may restore its own backups
	case v.owner > 0:
		if err := s.checkAll(a, sp, "Datastore.AllocateSpace"); err != nil {
			return nil, err
		}
		if err := s.checkAll(a, fmt.Sprintf("/vms/%d", v.owner), "VM.Backup"); err != nil {
			return nil, err
		}
	default:
		return nil, err500("missing privileges to access %s", volid)
	}
	src := &restoreSource{vol: v, path: v.path, raw: volid}
	if v.pbs {
		src.path = filepath.Join(v.path, "archive.tar")
	}
	return src, nil
}

// findArchive is PVE::Storage::abs_filesystem_path: the archive must be a
// file, else "can't find file '<volid>'".
func (src *restoreSource) findArchive() error {
	if src.vol == nil {
		return fmt.Errorf("can't find file '%s'", src.raw)
	}
	if fi, err := os.Stat(src.path); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("can't find file '%s'", src.raw)
	}
	return nil
}

// pbsClientError is how a failed proxmox-backup-client call surfaces.
func pbsClientError(v *volume, file string) error {
	return fmt.Errorf("command '/usr/bin/proxmox-backup-client restore %s %s - --repository %s@%s:%s' failed: exit code 255",
		strings.TrimPrefix(v.volname, "backup/"), file, v.st.cfg.Username, v.st.cfg.Server, v.st.cfg.Datastore)
}

// createAndLockConfig is AbstractConfig::create_and_lock_config for the
// restore endpoints: without force the vmid must be free cluster-wide
// ("<CT|VM> N already exists on node 'X'"); with force an existing config of
// this type on this node is locked "create" after checking it is not locked
// already. A new vmid gets an empty config holding only the lock, visible at
// once. The caller holds s.mu.
func (s *Sim) createAndLockConfig(vmid int, typ, n string, force bool) (g *guest, created bool, err error) {
	g = s.guests[vmid]
	switch {
	case g != nil && (!force || g.node != n || g.typ != typ):
		return nil, false, fmt.Errorf("%s %d already exists on node '%s'", g.kind(), vmid, g.node)
	case g != nil:
		if l := g.lock(); l != "" {
			return nil, false, fmt.Errorf("%s is locked (%s)", g.kind(), l)
		}
		g.setLock("create")
		return g, false, nil
	}
	g = &guest{vmid: vmid, typ: typ, node: n, status: "stopped", conf: newConf()}
	g.setLock("create")
	s.guests[vmid] = g
	return g, true, nil
}

// hLXCCreate is POST /nodes/{node}/lxc with restore=1: create_vm's
// synchronous checks in PVE's order, then the vzrestore worker.
func (s *Sim) hLXCCreate(rq *request) (any, error) {
	a, p, n := rq.auth, rq.p, rq.vars["node"]
	vmid := int(p.intv("vmid", 0))
	force := p.boolv("force", false)
	if !p.boolv("restore", false) {
		return nil, err500("pvesim: creating containers from templates is not simulated (use restore=1)")
	}
	if p.boolv("ha-managed", false) {
		if err := s.checkAll(a, "/", "Sys.Console"); err != nil {
			return nil, err
		}
	}
	if err := s.checkLXCRestoreTarget(a, n, vmid, force); err != nil {
		return nil, err
	}
	src, err := s.checkRestoreVolume(a, n, p.str("ostemplate"), vmid)
	if err != nil {
		return nil, err
	}
	tst, err := s.lxcRestoreStorage(a, n, p.str("storage"))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	g, created, err := s.createAndLockConfig(vmid, "lxc", n, force)
	s.mu.Unlock()
	if err != nil {
		return nil, err500("unable to restore CT %d - %s", vmid, err)
	}
	t := s.newTask(n, "vzrestore", fmt.Sprint(vmid), a.authid)
	s.runTask(t, func(t *task) error {
		err := s.restoreLXC(t, g, src, tst, p, created)
		if errors.Is(err, errInterrupted) {
			// the worker's SIGTERM handler dies inside create_vm's eval
			err = errors.New("received interrupt")
		}
		if err != nil {
			err = fmt.Errorf("unable to restore CT %d - %s", vmid, strings.TrimRight(err.Error(), "\n"))
		}
		if err == nil && p.boolv("start", false) {
			// vm_start runs after the lock is released; its own failures fail the task.
			s.mu.Lock()
			g.status, g.started = "running", time.Now()
			s.mu.Unlock()
		}
		return err
	})
	return t.upid, nil
}

// checkLXCRestoreTarget: the vmid must be free in the cluster unless force
// restores over this node's CT, which must be stopped and unprotected; the
// caller needs VM.Allocate, or VM.Backup for such an overwrite.
func (s *Sim) checkLXCRestoreTarget(a *authInfo, n string, vmid int, force bool) error {
	s.mu.Lock()
	g := s.guests[vmid]
	sameExists := g != nil && g.node == n && g.typ == "lxc"
	var running, prot bool
	if sameExists {
		running, prot = g.status != "stopped", g.protected()
	}
	s.mu.Unlock()
	switch {
	case (!sameExists || !force) && g != nil:
		return err500("%s %d already exists on node '%s'", g.kind(), vmid, g.node)
	case sameExists && force && running:
		return err500("can't overwrite running container")
	case sameExists && force && prot:
		return err500("unable to restore CT %d - protection mode enabled", vmid)
	}
	vmPath := fmt.Sprintf("/vms/%d", vmid)
	mayOverwrite := force && sameExists && s.can(a, vmPath, "VM.Backup")
	if !s.can(a, vmPath, "VM.Allocate") && !mayOverwrite {
		return errf(403, "Permission check failed")
	}
	return nil
}

// lxcRestoreStorage checks the target storage (default local): it must
// exist on this node, hold container directories, and the caller needs
// Datastore.AllocateSpace on it.
func (s *Sim) lxcRestoreStorage(a *authInfo, n, storID string) (*storage, error) {
	if storID == "" {
		storID = "local"
	}
	tst, err := s.storageFor(storID, n)
	if err != nil {
		return nil, err
	}
	if !tst.content["rootdir"] {
		return nil, paramErr1("storage", fmt.Sprintf("storage '%s' does not support container directories", storID))
	}
	if err := s.checkAll(a, "/storage/"+storID, "Datastore.AllocateSpace"); err != nil {
		return nil, err
	}
	return tst, nil
}

// restoreLXC is the vzrestore worker of pve-container's create_vm. Before
// the new volumes are allocated a failure only drops the "create" lock of an
// existing CT (a new CT's config is removed); from then on the old CT's
// volumes are destroyed first and any failure removes the new volumes and the
// whole config, so an existing CT is gone.
func (s *Sim) restoreLXC(t *task, g *guest, src *restoreSource, tst *storage, p *params, created bool) (rerr error) {
	destroyConfigOnError := created
	root := s.GuestRootfs(g.vmid)
	defer func() {
		if rerr == nil {
			return
		}
		if destroyConfigOnError {
			_ = os.RemoveAll(root)
			s.dropGuest(g)
			return
		}
		s.mu.Lock()
		if g.lock() == "create" {
			g.setLock("")
		}
		s.mu.Unlock()
	}()
	if s.overhead > 0 {
		if err := t.sleep(s.overhead); err != nil {
			return err
		}
	}
	s.mu.Lock()
	running := g.status != "stopped"
	s.mu.Unlock()
	if running {
		return errors.New("can't overwrite running container")
	}
	bconf, size, err := recoverLXCConfig(t, src)
	if err != nil {
		return err
	}
	// From here on PVE has modified the container: any failure destroys
	// the new volumes and the config.
	destroyConfigOnError = true
	newVol := fmt.Sprintf("%s:vm-%d-disk-0", tst.cfg.ID, g.vmid)
	t.log("  Logical volume \"vm-%d-disk-0\" created.", g.vmid)
	t.log("Creating filesystem with %s blocks and inodes", size)
	// destroy_lxc_container: the old CT's volumes go before the extraction
	if err := archive.EmptyDir(root); err != nil {
		return err
	}
	if err := s.extractLXCArchive(t, g, src, p, root); err != nil {
		return err
	}
	t.log("merging backed-up and given configuration..")
	nc := mergeLXCConfig(g.vmid, bconf, newVol+",size="+size, p)
	s.mu.Lock()
	g.conf = nc // written without the lock: lock_config's end is the unlock
	s.mu.Unlock()
	return nil
}

// recoverLXCConfig is recover_config: it finds the archive, reads the
// backed-up pct.conf from it and the rootfs size from its rootfs line.
func recoverLXCConfig(t *task, src *restoreSource) (*guestConf, string, error) {
	t.log("recovering backed-up configuration from '%s'", src.raw)
	if src.vol != nil && src.vol.pbs {
		if src.vol.format != "pbs-ct" {
			return nil, "", fmt.Errorf("got unexpected backup format '%s'", src.vol.format)
		}
		if _, err := os.Stat(src.path); err != nil {
			return nil, "", pbsClientError(src.vol, "pct.conf")
		}
	} else if err := src.findArchive(); err != nil {
		return nil, "", err
	}
	confText, kind, err := archive.ReadConfig(src.path)
	if err != nil || kind != "lxc" {
		// recover_config_from_tar -> extract_vzdump_config_tar finds no
		// ./etc/vzdump/pct.conf (a VMA archive is no tar at all).
		return nil, "", errors.New("ERROR: archive contains no configuration file")
	}
	bconf := parseConf(confText)
	rootfs := bconf.get("rootfs")
	if rootfs == "" {
		return nil, "", errors.New("rootfs configuration could not be recovered, please check and specify manually!") //nolint:staticcheck // PVE's exact message
	}
	size := ""
	if _, opts, ok := strings.Cut(rootfs, ","); ok {
		for _, o := range strings.Split(opts, ",") {
			if strings.HasPrefix(o, "size=") {
				size = strings.TrimPrefix(o, "size=")
			}
		}
	}
	if size == "" {
		return nil, "", errors.New("unable to detect disk size - please specify rootfs (size)")
	}
	return bconf, size, nil
}

// extractLXCArchive is restore_archive: it extracts the archive into the
// (emptied) rootfs at the paced rate; a vzrestore task fault fails it
// halfway through the data.
func (s *Sim) extractLXCArchive(t *task, g *guest, src *restoreSource, p *params, root string) error {
	t.log("restoring '%s' now..", src.raw)
	if !src.vol.pbs {
		t.log("extracting archive '%s'", src.path)
	}
	faultMsg, faulted := s.takeTaskFault("vzrestore", g.vmid)
	begin := time.Now()
	pc := s.newPacer(t, int64(p.numv("bwlimit", 0)))
	expected := fileSize(src.path)
	var done int64
	n, err := archive.ExtractLXC(src.path, root, func(k int64) error {
		done += k
		if faulted && done*2 >= expected {
			return &taskFault{msg: faultMsg}
		}
		return pc.advance(k)
	})
	if err == nil && faulted {
		err = &taskFault{msg: faultMsg}
	}
	if err != nil {
		var tf *taskFault
		if errors.As(err, &tf) {
			return errors.New(tf.msg)
		}
		return err
	}
	el := time.Since(begin).Seconds()
	t.log("Total bytes read: %d (%s, %s/s)", n, humanIEC(n), humanIEC(int64(float64(n)/max(el, 0.001))))
	return nil
}

// mergeLXCConfig is restore_configuration: the backed-up config without its
// lock, on the new rootfs volume, with the given keys over it; unique=1
// gives the network devices new MAC addresses.
func mergeLXCConfig(vmid int, bconf *guestConf, rootfs string, p *params) *guestConf {
	nc := bconf.clone()
	nc.del("lock")
	nc.set("rootfs", rootfs)
	for _, k := range lxcConfigKeys {
		if k == "lock" || k == "rootfs" || !p.has(k) {
			continue
		}
		if k == "description" {
			nc.setDescription(p.str(k))
			continue
		}
		nc.set(k, p.str(k))
	}
	if p.boolv("unique", false) {
		for k, v := range nc.kv {
			if strings.HasPrefix(k, "net") {
				nc.kv[k] = regexp.MustCompile(`hwaddr=[0-9A-Fa-f:]+`).ReplaceAllString(v, "hwaddr="+macFor(vmid+int(time.Now().UnixNano()%1000), 1))
			}
		}
	}
	return nc
}

// dropGuest removes a guest's config.
func (s *Sim) dropGuest(g *guest) {
	s.mu.Lock()
	if s.guests[g.vmid] == g {
		delete(s.guests, g.vmid)
	}
	s.mu.Unlock()
}

func fileSize(p string) int64 {
	if fi, err := os.Stat(p); err == nil {
		return fi.Size()
	}
	return 0
}

func (s *Sim) hQemuCreate(rq *request) (any, error) {
	a, p, n := rq.auth, rq.p, rq.vars["node"]
	vmid := int(p.intv("vmid", 0))
	if !p.has("archive") {
		return nil, err500("pvesim: creating VMs without 'archive' is not simulated")
	}
	force := p.boolv("force", false)
	storID := p.str("storage")
	vmPath := fmt.Sprintf("/vms/%d", vmid)
	if storID != "" {
		if err := s.checkAll(a, "/storage/"+storID, "Datastore.AllocateSpace"); err != nil {
			return nil, err
		}
	}
	if p.boolv("ha-managed", false) {
		if err := s.checkAll(a, "/", "Sys.Console"); err != nil {
			return nil, err
		}
	}
	if p.boolv("start", false) {
		if err := s.checkAll(a, vmPath, "VM.PowerMgmt"); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	g := s.guests[vmid]
	exists := g != nil && g.node == n && g.typ == "qemu" // -f on this node's config file
	s.mu.Unlock()
	mayOverwrite := force && exists && s.can(a, vmPath, "VM.Backup")
	if !s.can(a, vmPath, "VM.Allocate") && !mayOverwrite {
		return nil, errf(403, "Permission check failed")
	}
	for _, k := range sortedKeys(p.m) {
		if reDriveKey.MatchString(k) {
			return nil, paramErr1(k, "option conflicts with option 'archive'")
		}
	}
	src, err := s.checkRestoreVolume(a, n, p.str("archive"), vmid)
	if err != nil {
		return nil, err
	}
	// $classify_restore_archive: a PBS snapshot is taken as it is; anything
	// else must be a file now (abs_filesystem_path), before any config exists.
	if src.vol == nil || !src.vol.pbs {
		if err := src.findArchive(); err != nil {
			return nil, err500("%s", err)
		}
	}
	s.mu.Lock()
	g, _, err = s.createAndLockConfig(vmid, "qemu", n, force)
	s.mu.Unlock()
	if err != nil {
		return nil, err500("unable to restore VM %d - %s", vmid, err)
	}
	t := s.newTask(n, "qmrestore", fmt.Sprint(vmid), a.authid)
	s.runTask(t, func(t *task) error {
		return s.restoreQemu(t, a, g, src, storID, p)
	})
	return t.upid, nil
}

// restoreQemu is the qmrestore worker of qemu-server's create_vm. Whatever
// fails, PVE only removes the "create" lock and leaves the VM as the failure
// found it: a new vmid keeps its empty config; an existing VM whose restore
// got past reading the archive header has a temporary config
// ("memory: 128") and its old disks are already freed.
func (s *Sim) restoreQemu(t *task, a *authInfo, g *guest, src *restoreSource, storID string, p *params) (rerr error) {
	restoredData := false
	defer func() {
		if rerr == nil {
			return
		}
		s.mu.Lock()
		lock := g.lock()
		if lock == "create" {
			g.setLock("")
		}
		s.mu.Unlock()
		switch lock {
		case "create":
		case "":
			t.log("no lock found trying to remove 'create' lock")
		default:
			t.log("found lock '%s' trying to remove 'create' lock", lock)
		}
		if restoredData {
			t.log("error after data was restored, VM disks should be OK but config may require adaptions. VM %d state is NOT cleaned up.", g.vmid)
		} else {
			t.log("error before or during data restore, some or all disks were not completely restored. VM %d state is NOT cleaned up.", g.vmid)
		}
	}()
	if s.overhead > 0 {
		if err := t.sleep(s.overhead); err != nil {
			return err
		}
	}
	s.mu.Lock()
	prot, running := g.protected(), g.status != "stopped"
	s.mu.Unlock()
	if prot {
		// check_protection($conf, "unable to restore VM N -") adds its own " - "
		return fmt.Errorf("unable to restore VM %d - - protection mode enabled", g.vmid)
	}
	if running {
		return fmt.Errorf("unable to restore VM %d - vm is running", g.vmid)
	}
	v := src.vol
	if v.pbs {
		if err := s.restoreQemuPBS(t, a, g, src, storID, p); err != nil {
			return err
		}
	} else {
		if p.boolv("live-restore", false) {
			return errors.New("live-restore is only compatible with backup images from a Proxmox Backup Server")
		}
		if !strings.HasPrefix(v.format, "vma") {
			return s.restoreQemuTar(src, p)
		}
		if err := s.restoreQemuVMA(t, a, g, src, storID, p); err != nil {
			return err
		}
	}
	restoredData = true
	if p.boolv("start", false) && !p.boolv("live-restore", false) {
		t.log("Execute autostart")
		s.mu.Lock()
		g.status, g.started = "running", time.Now()
		s.mu.Unlock()
	}
	return nil
}

// restoreQemuTar is restore_tar_archive given a non-VMA (container) archive:
// it refuses override options, then the first member is not
// qemu-server.conf. Nothing has been changed yet.
func (s *Sim) restoreQemuTar(src *restoreSource, p *params) error {
	var keys []string
	for _, k := range sortedKeys(p.m) {
		switch k {
		case "node", "vmid", "archive", "force", "unique", "storage", "live-restore", "start", "bwlimit", "pool", "ha-managed", "import-working-storage":
		default:
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		return fmt.Errorf("cannot pass along options (%s) when restoring from tar archive", strings.Join(keys, " "))
	}
	return fmt.Errorf("ERROR: file '%s' does not look like a QemuServer vzdump backup", src.path)
}

// qemuTargetStorage is parse_backup_hints' choice for scsi0: the storage
// parameter, else the storage in the backed-up drive line, else 'local';
// it must exist and allow images.
func (s *Sim) qemuTargetStorage(a *authInfo, bconf *guestConf, storID string) (*storage, error) {
	id := storID
	if id == "" {
		id, _, _ = strings.Cut(bconf.get("scsi0"), ":")
	}
	if id == "" {
		id = "local"
	}
	s.mu.Lock()
	st := s.storages[id]
	s.mu.Unlock()
	if st == nil {
		return nil, fmt.Errorf("storage '%s' does not exist", id)
	}
	if !st.content["images"] {
		return nil, fmt.Errorf("Content type 'images' is not available on storage '%s'", id) //nolint:staticcheck // PVE's exact message
	}
	if a.authid != "root@pam" {
		if err := s.checkAll(a, "/storage/"+id, "Datastore.AllocateSpace"); err != nil {
			return nil, asWorkerError(err)
		}
	}
	return st, nil
}

// freeOldDisk is $restore_cleanup_oldconf for scsi0: the VM's old disk is
// freed because the backup restores that drive.
func (s *Sim) freeOldDisk(g *guest, oldconf *guestConf) {
	if oldconf.get("scsi0") == "" {
		return
	}
	_ = os.Remove(s.GuestDisk(g.vmid))
}

func (s *Sim) restoreQemuVMA(t *task, a *authInfo, g *guest, src *restoreSource, storID string, p *params) error {
	archivePath := src.path
	t.log("restore vma archive: vma extract -v -r /var/tmp/vzdumptmp%d.fifo %s /var/tmp/vzdumptmp%d", t.pid, archivePath, t.pid)
	confText, kind, err := archive.ReadConfig(archivePath)
	if err != nil || kind != "qemu" {
		return fmt.Errorf("command 'vma extract -v -r /var/tmp/vzdumptmp%d.fifo %s /var/tmp/vzdumptmp%d' failed: exit code 1", t.pid, archivePath, t.pid)
	}
	diskSize, hasDisk := archive.DiskSize(archivePath)
	t.log("CFG: size: %d name: qemu-server.conf", len(confText))
	if hasDisk {
		t.log("DEV: dev_id=1 size: %d devname: drive-scsi0", diskSize)
	}
	t.log("CTIME: %s", time.Now().Format("Mon Jan  2 15:04:05 2006"))
	// print_devmap, once the header is read
	bconf := parseConf(confText)
	var tst *storage
	if hasDisk {
		if tst, err = s.qemuTargetStorage(a, bconf, storID); err != nil {
			return err
		}
	}
	// The config file always exists by now (create_and_lock_config wrote at
	// least the lock), so the temporary config, without the lock, replaces
	// it for a new vmid too.
	s.mu.Lock()
	oldconf := g.conf.clone()
	tmp := newConf()
	tmp.set("memory", "128")
	g.conf = tmp
	s.mu.Unlock()
	s.freeOldDisk(g, oldconf)
	newVol := ""
	if hasDisk {
		newVol = fmt.Sprintf("%s:vm-%d-disk-0", tst.cfg.ID, g.vmid)
		t.log("new volume ID is '%s'", newVol)
		t.log("map 'drive-scsi0' to '/dev/pve/vm-%d-disk-0' (write zeros = 0)", g.vmid)
	}
	if err := s.restoreQemuDisk(t, g, archivePath, hasDisk, p); err != nil {
		if hasDisk {
			t.log("temporary volume '%s' successfully removed", newVol)
		}
		return err
	}
	if hasDisk {
		t.log("progress 100%% (read %d bytes, duplicate 0 bytes)", diskSize)
		t.log("total bytes read %d, sparse bytes 0 (0%%)", diskSize)
		t.log("space reduction due to 4K zero blocks 0%%")
	}
	t.log("rescan volumes...")
	s.finishQemuConfig(g, bconf, newVol, p)
	return nil
}

func (s *Sim) restoreQemuPBS(t *task, a *authInfo, g *guest, src *restoreSource, storID string, p *params) error {
	v := src.vol
	if v.format != "pbs-vm" {
		return fmt.Errorf("got unexpected backup format '%s'", v.format)
	}
	if _, err := os.Stat(src.path); err != nil {
		return pbsClientError(v, "index.json")
	}
	confText, kind, err := archive.ReadConfig(src.path)
	if err != nil || kind != "qemu" {
		return errors.New("backup does not look like a qemu-server backup (missing 'qemu-server.conf' file)")
	}
	_, hasDisk := archive.DiskSize(src.path)
	bconf := parseConf(confText)
	var tst *storage
	if hasDisk {
		if tst, err = s.qemuTargetStorage(a, bconf, storID); err != nil {
			return err
		}
	}
	s.mu.Lock()
	oldconf := g.conf.clone()
	// the temporary config keeps the lock here
	tmp := newConf()
	tmp.set("memory", "128")
	tmp.set("lock", "create")
	g.conf = tmp
	s.mu.Unlock()
	s.freeOldDisk(g, oldconf)
	newVol := ""
	if hasDisk {
		newVol = fmt.Sprintf("%s:vm-%d-disk-0", tst.cfg.ID, g.vmid)
		t.log("new volume ID is '%s'", newVol)
		t.log("restore proxmox backup image: /usr/bin/pbs-restore --repository %s@%s:%s %s drive-scsi0.img.fidx /dev/pve/vm-%d-disk-0 --verbose --format raw --skip-zero",
			v.st.cfg.Username, v.st.cfg.Server, v.st.cfg.Datastore, strings.TrimPrefix(v.volname, "backup/"), g.vmid)
	}
	if err := s.restoreQemuDisk(t, g, src.path, hasDisk, p); err != nil {
		if hasDisk {
			t.log("temporary volume '%s' successfully removed", newVol)
		}
		return err
	}
	t.log("rescan volumes...")
	s.finishQemuConfig(g, bconf, newVol, p)
	return nil
}

// restoreQemuDisk writes the archive's disk (or fails halfway through with
// an injected task fault). On failure the new volume is gone.
func (s *Sim) restoreQemuDisk(t *task, g *guest, archivePath string, hasDisk bool, p *params) error {
	faultMsg, faulted := s.takeTaskFault("qmrestore", g.vmid)
	if !hasDisk {
		if faulted {
			return errors.New(faultMsg)
		}
		return nil
	}
	pc := s.newPacer(t, p.intv("bwlimit", 0))
	expected := fileSize(archivePath)
	var done int64
	tmp := s.GuestDisk(g.vmid) + ".restore"
	_, err := archive.ExtractQemuDisk(archivePath, tmp, func(k int64) error {
		done += k
		if faulted && done*2 >= expected {
			return &taskFault{msg: faultMsg}
		}
		return pc.advance(k)
	})
	if err == nil && faulted {
		err = &taskFault{msg: faultMsg}
	}
	if err != nil {
		_ = os.Remove(tmp)
		var tf *taskFault
		if errors.As(err, &tf) {
			return errors.New(tf.msg)
		}
		if errors.Is(err, errInterrupted) {
			// restore_vma_archive's own signal handler during the extraction
			return errors.New("interrupted by signal")
		}
		return err
	}
	return os.Rename(tmp, s.GuestDisk(g.vmid))
}

// finishQemuConfig writes the restored config (restore_merge_config): the
// backed-up config with the new volume and the given overrides.
func (s *Sim) finishQemuConfig(g *guest, bconf *guestConf, newVol string, p *params) {
	nc := bconf.clone()
	nc.del("lock")
	if newVol != "" {
		_, rest, _ := strings.Cut(bconf.get("scsi0"), ":")
		if _, opts, ok := strings.Cut(rest, ","); ok && opts != "" {
			nc.set("scsi0", newVol+","+opts)
		} else {
			nc.set("scsi0", newVol)
		}
	}
	for _, k := range qemuConfigKeys {
		if k == "lock" || reDriveKey.MatchString(k) || !p.has(k) {
			continue
		}
		if k == "description" {
			nc.setDescription(p.str(k))
			continue
		}
		nc.set(k, p.str(k))
	}
	if p.boolv("unique", false) {
		for k, v := range nc.kv {
			if strings.HasPrefix(k, "net") {
				nc.kv[k] = regexp.MustCompile(`=([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}`).ReplaceAllString(v, "="+macFor(g.vmid+int(time.Now().UnixNano()%1000), 2))
			}
		}
		nc.set("vmgenid", newUUID())
	}
	s.mu.Lock()
	g.conf = nc
	s.mu.Unlock()
}

// asWorkerError is a PVE::Exception as a worker's task status shows it: the
// HTTP code comes first ("403 Permission check failed (...)").
func asWorkerError(err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return fmt.Errorf("%d %s", ae.status, ae.msg)
	}
	return err
}
