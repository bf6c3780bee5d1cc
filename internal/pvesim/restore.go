package pvesim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
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
		sc[k] = pdImin(0)
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
		"bwlimit":                pdImin(0),
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
		sc[k] = pdImin(0)
	}
	delete(sc, "lock")
	return sc
}

// backupVolumeForRestore resolves a backup volid to its archive file.
func (s *Sim) backupVolumeForRestore(a *authInfo, n, volid string, vmid int) (*volume, string, error) {
	m := reVolid.FindStringSubmatch(volid)
	if m == nil {
		return nil, "", err500("unable to parse volume ID '%s'", volid)
	}
	st, err := s.storageFor(m[1], n)
	if err != nil {
		return nil, "", err
	}
	v, err := s.parseVolume(st, n, volid)
	if err != nil {
		return nil, "", err
	}
	if v.vtype != "backup" {
		return nil, "", err500("unable to use volume %s - content type needs to be 'backup'", volid)
	}
	if v.owner != vmid {
		if err := s.volumeAccess(a, st.cfg.ID, v.owner, "backup"); err != nil {
			return nil, "", err
		}
	} else if err := s.checkAny(a, "/storage/"+st.cfg.ID, "Datastore.AllocateSpace", "Datastore.Allocate"); err != nil {
		return nil, "", err
	}
	p := v.path
	if v.pbs {
		p = filepath.Join(v.path, "archive.tar")
	}
	return v, p, nil
}

func (s *Sim) hLXCCreate(rq *request) (any, error) {
	a, p, n := rq.auth, rq.p, rq.vars["node"]
	vmid := int(p.intv("vmid", 0))
	restore := p.boolv("restore", false)
	force := p.boolv("force", false)
	if !restore {
		return nil, err500("pvesim: creating containers from templates is not simulated (use restore=1)")
	}
	s.mu.Lock()
	g := s.guests[vmid]
	exists := g != nil && g.node == n && g.typ == "lxc"
	s.mu.Unlock()
	overwrite := exists && restore && force
	if overwrite {
		s.mu.Lock()
		running, prot := g.status != "stopped", g.protected()
		s.mu.Unlock()
		if running {
			return nil, err500("can't overwrite running container")
		}
		if prot {
			return nil, err500("unable to restore CT %d - protection mode enabled", vmid)
		}
	} else if g != nil {
		return nil, err500("%s %d already exists on node '%s'", g.kind(), vmid, g.node)
	}
	vmPath := fmt.Sprintf("/vms/%d", vmid)
	if !s.can(a, vmPath, "VM.Allocate") && (!overwrite || !s.can(a, vmPath, "VM.Backup")) {
		return nil, permErr(vmPath, "VM.Allocate")
	}
	vol, archive, err := s.backupVolumeForRestore(a, n, p.str("ostemplate"), vmid)
	if err != nil {
		return nil, err
	}
	storID := p.str("storage")
	if storID == "" {
		storID = "local"
	}
	if err := s.checkAll(a, "/storage/"+storID, "Datastore.AllocateSpace"); err != nil {
		return nil, err
	}
	tst, err := s.storageFor(storID, n)
	if err != nil {
		return nil, err
	}
	if !tst.content["rootdir"] {
		return nil, paramErr1("storage", fmt.Sprintf("storage '%s' does not support container directories", storID))
	}
	if p.boolv("start", false) {
		if err := s.checkAll(a, vmPath, "VM.PowerMgmt"); err != nil {
			return nil, err
		}
	}
	// create_and_lock_config
	s.mu.Lock()
	g = s.guests[vmid]
	created := false
	if g != nil && exists {
		if l := g.lock(); l != "" {
			s.mu.Unlock()
			return nil, err500("unable to restore CT %d - CT is locked (%s)", vmid, l)
		}
		g.setLock("create")
	} else if g != nil {
		s.mu.Unlock()
		return nil, err500("CT %d already exists on node '%s'", vmid, g.node)
	} else {
		g = s.newRestoreStub(vmid, "lxc", n)
		created = true
	}
	s.mu.Unlock()

	return s.forkRestore(n, vmid, "vzrestore", "CT", a.authid, func(t *task) error {
		return s.restoreLXC(t, g, vol, archive, tst, p, created)
	}), nil
}

// newRestoreStub registers the stub config, locked "create", that a restore
// into a new vmid makes visible at once (caller holds s.mu).
func (s *Sim) newRestoreStub(vmid int, typ, node string) *guest {
	g := &guest{vmid: vmid, typ: typ, node: node, status: "stopped", conf: newConf()}
	g.setLock("create")
	s.guests[vmid] = g
	return g
}

// forkRestore runs a restore worker and words its failure as PVE does:
// "unable to restore CT|VM <vmid> - <reason>".
func (s *Sim) forkRestore(node string, vmid int, taskType, kind, authid string, work func(*task) error) string {
	t := s.newTask(node, taskType, fmt.Sprint(vmid), authid)
	s.runTask(t, func(t *task) error {
		err := work(t)
		if err != nil && !errors.Is(err, errInterrupted) {
			return fmt.Errorf("unable to restore %s %d - %s", kind, vmid, strings.TrimRight(err.Error(), "\n"))
		}
		return err
	})
	return t.upid
}

// dropGuest removes a guest config (lock held by caller not required).
func (s *Sim) dropGuest(g *guest) {
	s.mu.Lock()
	if s.guests[g.vmid] == g {
		delete(s.guests, g.vmid)
	}
	s.mu.Unlock()
}

func (s *Sim) restoreLXC(t *task, g *guest, vol *volume, archive string, tst *storage, p *params, created bool) (rerr error) {
	disksTouched := false
	defer func() {
		if rerr == nil {
			return
		}
		if created || disksTouched {
			if disksTouched { // destroy_disks: the volumes this restore allocated go too
				_ = os.RemoveAll(s.GuestRootfs(g.vmid))
			}
			s.dropGuest(g)
		} else {
			s.mu.Lock()
			if g.lock() == "create" {
				g.setLock("")
			}
			s.mu.Unlock()
		}
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
	faultMsg, faulted := s.takeTaskFault("vzrestore", g.vmid)
	t.log("recovering backed-up configuration from '%s'", vol.volid)
	if _, err := os.Stat(archive); err != nil {
		return fmt.Errorf("ERROR: file '%s' does not exist", archive)
	}
	if vol.pbs && vol.format != "pbs-ct" {
		return fmt.Errorf("got unexpected backup format '%s'", vol.format)
	}
	confText, kind, err := readArchiveConfig(archive)
	if err != nil {
		return err
	}
	if kind != "lxc" {
		// pve-container reads ./etc/vzdump/pct.conf with tar (recover_config_from_tar
		// -> extract_vzdump_config_tar), which finds none in a VMA archive.
		return errors.New("ERROR: archive contains no configuration file")
	}
	bconf := parseConf(confText)
	if bconf.get("rootfs") == "" {
		return errors.New("rootfs configuration could not be recovered, please check and specify manually!") //nolint:staticcheck // PVE's exact message
	}
	// destroy old volumes, allocate new ones
	disksTouched = true
	root := s.GuestRootfs(g.vmid)
	size := "8G"
	if _, opts, ok := strings.Cut(bconf.get("rootfs"), ","); ok {
		for _, o := range strings.Split(opts, ",") {
			if strings.HasPrefix(o, "size=") {
				size = strings.TrimPrefix(o, "size=")
			}
		}
	}
	newVol := fmt.Sprintf("%s:vm-%d-disk-0", tst.cfg.ID, g.vmid)
	t.log("  Logical volume \"vm-%d-disk-0\" created.", g.vmid)
	t.log("Creating filesystem with %s blocks and inodes", size)
	t.log("restoring '%s' now..", vol.volid)
	if !vol.pbs {
		t.log("extracting archive '%s'", archive)
	}
	begin := time.Now()
	pc := s.newPacer(t, int64(p.numv("bwlimit", 0)))
	expected := fileSize(archive)
	var done int64
	n, err := extractLXC(archive, root, func(k int64) error {
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
	t.log("merging backed-up and given configuration..")
	nc := bconf.clone()
	nc.del("lock")
	nc.set("rootfs", newVol+",size="+size)
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
				nc.kv[k] = regexp.MustCompile(`hwaddr=[0-9A-Fa-f:]+`).ReplaceAllString(v, "hwaddr="+macFor(g.vmid+int(time.Now().UnixNano()%1000), 1))
			}
		}
	}
	nc.set("lock", "create")
	s.mu.Lock()
	g.conf = nc
	s.mu.Unlock()
	if p.boolv("start", false) {
		t.log("starting CT %d", g.vmid)
		s.mu.Lock()
		g.status, g.started = "running", time.Now()
		s.mu.Unlock()
	}
	s.mu.Lock()
	g.setLock("")
	s.mu.Unlock()
	return nil
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
	for k := range p.m {
		if reDriveKey.MatchString(k) {
			return nil, paramErr1(k, "option conflicts with option 'archive'")
		}
	}
	force := p.boolv("force", false)
	s.mu.Lock()
	g := s.guests[vmid]
	exists := g != nil && g.node == n && g.typ == "qemu"
	s.mu.Unlock()
	overwrite := force && exists
	vmPath := fmt.Sprintf("/vms/%d", vmid)
	if !s.can(a, vmPath, "VM.Allocate") && (!overwrite || !s.can(a, vmPath, "VM.Backup")) {
		return nil, permErr(vmPath, "VM.Allocate")
	}
	if p.boolv("start", false) {
		if err := s.checkAll(a, vmPath, "VM.PowerMgmt"); err != nil {
			return nil, err
		}
	}
	storID := p.str("storage")
	var tst *storage
	if storID != "" {
		if err := s.checkAll(a, "/storage/"+storID, "Datastore.AllocateSpace"); err != nil {
			return nil, err
		}
		var err error
		if tst, err = s.storageFor(storID, n); err != nil {
			return nil, err
		}
		if !tst.content["images"] {
			return nil, paramErr1("storage", fmt.Sprintf("storage '%s' does not support vm images", storID))
		}
	}
	vol, archive, err := s.backupVolumeForRestore(a, n, p.str("archive"), vmid)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	g = s.guests[vmid]
	created := false
	switch {
	case g != nil && (!force || g.node != n || g.typ != "qemu"):
		s.mu.Unlock()
		return nil, err500("unable to restore VM %d - %s %d already exists on node '%s'", vmid, g.kind(), vmid, g.node)
	case g != nil:
		if l := g.lock(); l != "" {
			s.mu.Unlock()
			return nil, err500("unable to restore VM %d - VM is locked (%s)", vmid, l)
		}
		g.setLock("create")
	default:
		g = s.newRestoreStub(vmid, "qemu", n)
		created = true
	}
	s.mu.Unlock()
	return s.forkRestore(n, vmid, "qmrestore", "VM", a.authid, func(t *task) error {
		return s.restoreQemu(t, g, vol, archive, tst, p, created)
	}), nil
}

func (s *Sim) restoreQemu(t *task, g *guest, vol *volume, archive string, tst *storage, p *params, created bool) (rerr error) {
	dataStarted := false
	defer func() {
		if rerr == nil {
			return
		}
		if created && !dataStarted {
			s.dropGuest(g)
			return
		}
		if dataStarted {
			t.warn("error before or during data restore, some or all disks were not completely restored. VM %d state is NOT cleaned up.", g.vmid)
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
	prot, running := g.protected(), g.status != "stopped"
	s.mu.Unlock()
	if prot {
		return errors.New("protection mode enabled")
	}
	if running {
		return errors.New("vm is running")
	}
	if p.boolv("live-restore", false) && !vol.pbs {
		return errors.New("live-restore is only compatible with backup images from a Proxmox Backup Server")
	}
	if _, err := os.Stat(archive); err != nil {
		return fmt.Errorf("unable to open file '%s' - No such file or directory", archive)
	}
	if vol.pbs && vol.format != "pbs-vm" {
		return fmt.Errorf("got unexpected backup format '%s'", vol.format)
	}
	confText, kind, err := readArchiveConfig(archive)
	if err != nil {
		return err
	}
	if kind != "qemu" {
		return fmt.Errorf("got unexpected backup format '%s'", vol.format)
	}
	faultMsg, faulted := s.takeTaskFault("qmrestore", g.vmid)
	bconf := parseConf(confText)
	disk := bconf.get("scsi0")
	oldStor, rest, _ := strings.Cut(disk, ":")
	storID := oldStor
	if tst != nil {
		storID = tst.cfg.ID
	}
	_, opts, _ := strings.Cut(rest, ",")
	newVol := fmt.Sprintf("%s:vm-%d-disk-0", storID, g.vmid)
	if vol.pbs {
		t.log("restore proxmox backup image: /usr/bin/pbs-restore --repository %s@%s:%s %s drive-scsi0.img.fidx /dev/zvol --verbose --format raw --skip-zero",
			vol.st.cfg.Username, vol.st.cfg.Server, vol.st.cfg.Datastore, strings.TrimPrefix(vol.volname, "backup/"))
	} else {
		t.log("restore vma archive: vma extract -v -r /var/tmp/vzdumptmp.fifo %s /var/tmp/vzdumptmp", archive)
		t.log("CFG: size: %d name: qemu-server.conf", len(confText))
		t.log("DEV: dev_id=1 size: %d devname: drive-scsi0", fileSize(s.GuestDisk(g.vmid)))
		t.log("CTIME: %s", time.Now().Format("Mon Jan  2 15:04:05 2006"))
	}
	t.log("new volume ID is '%s'", newVol)
	t.log("map 'drive-scsi0' to '/dev/pve/vm-%d-disk-0' (write zeros = 0)", g.vmid)
	dataStarted = true
	pc := s.newPacer(t, p.intv("bwlimit", 0))
	expected := fileSize(archive)
	var done int64
	tmp := s.GuestDisk(g.vmid) + ".restore"
	n, err := extractQemuDisk(archive, tmp, func(k int64) error {
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
		return err
	}
	if err := os.Rename(tmp, s.GuestDisk(g.vmid)); err != nil {
		return err
	}
	t.log("progress 100%% (read %d bytes, duplicate 0 bytes)", n)
	t.log("total bytes read %d, sparse bytes 0 (0%%)", n)
	t.log("space reduction due to 4K zero blocks 0%%")
	t.log("rescan volumes...")
	nc := bconf.clone()
	nc.del("lock")
	if opts != "" {
		nc.set("scsi0", newVol+","+opts)
	} else {
		nc.set("scsi0", newVol)
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
	if p.boolv("start", false) && !p.boolv("live-restore", false) {
		g.status, g.started = "running", time.Now()
	}
	s.mu.Unlock()
	if p.boolv("start", false) {
		t.log("start VM %d: UPID:%s", g.vmid, "...")
	}
	return nil
}
