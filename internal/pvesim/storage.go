package pvesim

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim/internal/archive"
)

var (
	reVolid        = regexp.MustCompile(`(?i)^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$`)
	reBackupFile   = regexp.MustCompile(`^[^/]+\.(tgz|(?:tar|vma)(?:\.(?:gz|lzo|zst|bz2))?)$`)
	reBackupOwner  = regexp.MustCompile(`^vzdump-(openvz|lxc|qemu)-(\d+)-.+`)
	reStdBackup    = regexp.MustCompile(`^(vzdump-(lxc|openvz|qemu)-([1-9][0-9]{2,8})-(\d{4})_(\d{2})_(\d{2})-(\d{2})_(\d{2})_(\d{2}))\.(tgz|(?:tar|vma)(?:\.(?:gz|lzo|zst|bz2))?)$`)
	rePBSVolname   = regexp.MustCompile(`^backup/([^\s_/]+)/([^\s_/]+)/([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)$`)
	reDiskVolname  = regexp.MustCompile(`^(?:(\d+)/)?(?:vm|subvol|base)-(\d+)-disk-\d+`)
	reISOVolname   = regexp.MustCompile(`^iso/([^/]+\.[Ii][Ss][Oo])$`)
	reVztmplVolnam = regexp.MustCompile(`^vztmpl/([^/]+\.tar\.(?:gz|xz|zst|bz2))$`)
)

// volume is a parsed volume of a storage.
type volume struct {
	st      *storage
	volid   string
	volname string
	vtype   string // backup | iso | vztmpl | images | rootdir
	path    string // file (dir) or snapshot dir (pbs)
	owner   int
	subtype string // lxc | qemu | openvz | unknown
	format  string // tar.zst ... | pbs-ct | pbs-vm
	pbs     bool
	pbsTime time.Time
}

// backupItem is a backup as found on a storage.
type backupItem struct {
	volume
	size      int64
	ctime     int64
	notes     string // whole notes
	protected bool
}

func (b *backupItem) notesFirstLine() string {
	l, _, _ := strings.Cut(b.notes, "\n")
	return l
}

// storageFor returns the storage or the PVE error for node n.
func (s *Sim) storageFor(id, n string) (*storage, error) {
	s.mu.Lock()
	st := s.storages[id]
	s.mu.Unlock()
	if st == nil {
		return nil, err500("storage '%s' does not exist", id)
	}
	if st.cfg.Disabled {
		return nil, err500("storage '%s' is disabled", id)
	}
	if !st.onNode(n) {
		return nil, err500("storage '%s' is not available on node '%s'", id, n)
	}
	return st, nil
}

// parseVolume parses "storage:volname" (or a bare volname of st).
func (s *Sim) parseVolume(st *storage, n, vol string) (*volume, error) {
	volname := vol
	if m := reVolid.FindStringSubmatch(vol); m != nil {
		if m[1] != st.cfg.ID {
			return nil, paramErr1("volume", fmt.Sprintf("storage ID mismatch (%s != %s)", m[1], st.cfg.ID))
		}
		volname = m[2]
	}
	v := &volume{st: st, volname: volname, volid: st.cfg.ID + ":" + volname}
	if st.cfg.Type == "pbs" {
		m := rePBSVolname.FindStringSubmatch(volname)
		if m == nil {
			return nil, err500("unable to parse PBS volume name '%s'", volname)
		}
		v.vtype, v.pbs = "backup", true
		v.path = filepath.Join(s.pbsDir(st), m[1], m[2], m[3])
		v.owner, _ = strconv.Atoi(m[2])
		v.subtype = map[string]string{"ct": "lxc", "vm": "qemu"}[m[1]]
		v.format = "pbs-" + m[1]
		v.pbsTime, _ = time.Parse("2006-01-02T15:04:05Z", m[3])
		return v, nil
	}
	base := s.storagePath(st, n)
	switch {
	case strings.HasPrefix(volname, "backup/") && reBackupFile.MatchString(strings.TrimPrefix(volname, "backup/")):
		file := strings.TrimPrefix(volname, "backup/")
		v.vtype = "backup"
		v.path = filepath.Join(base, "dump", file)
		v.format = reBackupFile.FindStringSubmatch(file)[1]
		v.subtype = "unknown"
		if m := reBackupOwner.FindStringSubmatch(file); m != nil {
			v.owner, _ = strconv.Atoi(m[2])
			v.subtype = m[1]
		}
	case reISOVolname.MatchString(volname):
		v.vtype, v.format = "iso", "iso"
		v.path = filepath.Join(base, "template", "iso", reISOVolname.FindStringSubmatch(volname)[1])
	case reVztmplVolnam.MatchString(volname):
		v.vtype, v.format = "vztmpl", "tgz"
		v.path = filepath.Join(base, "template", "cache", reVztmplVolnam.FindStringSubmatch(volname)[1])
	case reDiskVolname.MatchString(volname):
		m := reDiskVolname.FindStringSubmatch(volname)
		v.owner, _ = strconv.Atoi(m[2])
		v.vtype, v.format = "images", "raw"
		s.mu.Lock()
		if g := s.guests[v.owner]; g != nil {
			if g.typ == "lxc" {
				v.vtype = "rootdir"
				v.path = s.GuestRootfs(v.owner)
			} else {
				v.path = s.GuestDisk(v.owner)
			}
		}
		s.mu.Unlock()
	default:
		return nil, err500("unable to parse directory volume name '%s'", volname)
	}
	return v, nil
}

func dirBackupSidecars(archivePath string) (notes, protected, log string) {
	dir, file := filepath.Split(archivePath)
	base := file
	if m := reBackupFile.FindStringSubmatch(file); m != nil {
		base = strings.TrimSuffix(file, "."+m[1])
	}
	return archivePath + ".notes", archivePath + ".protected", filepath.Join(dir, base+".log")
}

// backupInfo stats a backup volume; ok=false when it does not exist.
func (s *Sim) backupInfo(v *volume) (*backupItem, bool) {
	b := &backupItem{volume: *v}
	if v.pbs {
		ents, err := os.ReadDir(v.path)
		if err != nil {
			return nil, false
		}
		found := false
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				continue
			}
			if e.Name() == "archive.tar" {
				found = true
			}
			if e.Name() == "archive.tar" || e.Name() == "index.json" {
				b.size += fi.Size()
			}
		}
		if !found {
			return nil, false
		}
		if nb, err := os.ReadFile(filepath.Join(v.path, "notes")); err == nil {
			b.notes = string(nb)
		}
		_, err = os.Stat(filepath.Join(v.path, "protected"))
		b.protected = err == nil
		b.ctime = v.pbsTime.Unix()
		return b, true
	}
	fi, err := os.Stat(v.path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	b.size = fi.Size()
	b.ctime = fi.ModTime().Unix()
	if m := reStdBackup.FindStringSubmatch(filepath.Base(v.path)); m != nil {
		ts := fmt.Sprintf("%s-%s-%s %s:%s:%s", m[4], m[5], m[6], m[7], m[8], m[9])
		if t, err := time.ParseInLocation("2006-01-02 15:04:05", ts, s.loc); err == nil {
			b.ctime = t.Unix()
		}
	}
	np, pp, _ := dirBackupSidecars(v.path)
	if nb, err := os.ReadFile(np); err == nil {
		b.notes = string(nb)
	}
	_, err = os.Stat(pp)
	b.protected = err == nil
	return b, true
}

// listBackups returns all backups on st as seen from node n, sorted by lc(volid).
func (s *Sim) listBackups(st *storage, n string) []*backupItem {
	var out []*backupItem
	if st.cfg.Type == "pbs" {
		root := s.pbsDir(st)
		for _, typ := range []string{"ct", "vm"} {
			ids, _ := os.ReadDir(filepath.Join(root, typ))
			for _, id := range ids {
				if _, err := strconv.Atoi(id.Name()); err != nil {
					continue
				}
				snaps, _ := os.ReadDir(filepath.Join(root, typ, id.Name()))
				for _, sn := range snaps {
					v, err := s.parseVolume(st, n, "backup/"+typ+"/"+id.Name()+"/"+sn.Name())
					if err != nil {
						continue
					}
					if b, ok := s.backupInfo(v); ok {
						out = append(out, b)
					}
				}
			}
		}
	} else {
		ents, _ := os.ReadDir(filepath.Join(s.storagePath(st, n), "dump"))
		for _, e := range ents {
			if !reBackupFile.MatchString(e.Name()) {
				continue
			}
			v, err := s.parseVolume(st, n, "backup/"+e.Name())
			if err != nil {
				continue
			}
			if b, ok := s.backupInfo(v); ok {
				out = append(out, b)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].volid) < strings.ToLower(out[j].volid) })
	return out
}

func (s *Sim) storageUsage(st *storage, n string) (total, used, avail int64) {
	total = st.cfg.Capacity
	root := s.pbsDir(st)
	if st.cfg.Type != "pbs" {
		root = s.storagePath(st, n)
	}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				used += fi.Size()
			}
		}
		return nil
	})
	if st.content["rootdir"] || st.content["images"] {
		s.mu.Lock()
		for _, g := range s.guests {
			if g.node != n && !st.cfg.Shared {
				continue
			}
			if s.guestStorage(g) == st.cfg.ID {
				used += s.guestDiskSize(g)
			}
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	full := st.full
	s.mu.Unlock()
	if full || used > total {
		used = total
	}
	return total, used, total - used
}

// guestStorage is the storage of the guest's root disk (lock held).
func (s *Sim) guestStorage(g *guest) string {
	key := "rootfs"
	if g.typ == "qemu" {
		key = "scsi0"
	}
	v := g.conf.get(key)
	id, _, _ := strings.Cut(v, ":")
	return id
}

func (s *Sim) guestDiskSize(g *guest) int64 {
	if g.typ == "lxc" {
		return 8 << 30
	}
	if fi, err := os.Stat(s.GuestDisk(g.vmid)); err == nil {
		return fi.Size()
	}
	return 0
}

// --- handlers --------------------------------------------------------------

var contentEnum = []string{"backup", "images", "import", "iso", "rootdir", "snippets", "vztmpl"}

func (s *Sim) hStorageIndex(rq *request) (any, error) {
	n := rq.vars["node"]
	s.mu.Lock()
	order := append([]string(nil), s.storageOrder...)
	s.mu.Unlock()
	if id := rq.p.str("storage"); id != "" {
		s.mu.Lock()
		_, ok := s.storages[id]
		s.mu.Unlock()
		if !ok {
			return nil, paramErr1("storage", "No such storage.")
		}
		order = []string{id}
	}
	var want []string
	if c := rq.p.str("content"); c != "" {
		want = strings.Split(c, ",")
	}
	out := []map[string]any{}
	for _, id := range order {
		s.mu.Lock()
		st := s.storages[id]
		s.mu.Unlock()
		if s.checkAny(rq.auth, "/storage/"+id, "Datastore.Audit", "Datastore.AllocateSpace") != nil {
			continue
		}
		enabled := !st.cfg.Disabled && st.onNode(n)
		if rq.p.boolv("enabled", false) && !enabled {
			continue
		}
		if len(want) > 0 {
			ok := false
			for _, c := range want {
				if st.content[strings.TrimSpace(c)] {
					ok = true
				}
			}
			if !ok || !enabled {
				continue
			}
		}
		it := map[string]any{"storage": id, "type": st.cfg.Type, "content": strings.Join(st.cfg.Content, ","),
			"shared": b2i(st.cfg.Shared), "enabled": b2i(enabled), "active": b2i(enabled)}
		if enabled {
			total, used, avail := s.storageUsage(st, n)
			it["total"], it["used"], it["avail"] = total, used, avail
			if total > 0 {
				it["used_fraction"] = float64(used) / float64(total)
			}
		} else {
			it["total"], it["used"], it["avail"] = 0, 0, 0
		}
		out = append(out, it)
	}
	return out, nil
}

func (s *Sim) hStorageStatus(rq *request) (any, error) {
	id := rq.vars["storage"]
	if err := s.checkAny(rq.auth, "/storage/"+id, "Datastore.Audit", "Datastore.AllocateSpace"); err != nil {
		return nil, err
	}
	st, err := s.storageFor(id, rq.vars["node"])
	if err != nil {
		return nil, err
	}
	total, used, avail := s.storageUsage(st, rq.vars["node"])
	return map[string]any{"storage": id, "type": st.cfg.Type, "content": strings.Join(st.cfg.Content, ","),
		"shared": b2i(st.cfg.Shared), "enabled": 1, "active": 1, "total": total, "used": used, "avail": avail}, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// hContentList is GET …/storage/{storage}/content: backups, templates and guest
// volumes the caller may see, sorted by volid.
func (s *Sim) hContentList(rq *request) (any, error) {
	id, n := rq.vars["storage"], rq.vars["node"]
	if err := s.checkAny(rq.auth, "/storage/"+id, "Datastore.Audit", "Datastore.AllocateSpace"); err != nil {
		return nil, err
	}
	st, err := s.storageFor(id, n)
	if err != nil {
		return nil, err
	}
	ct := rq.p.str("content")
	vmid := rq.p.intv("vmid", 0)
	out := []map[string]any{}
	if ct != "" && !st.content[ct] {
		return out, nil
	}
	if (ct == "" || ct == "backup") && st.content["backup"] {
		out = append(out, s.listBackupContent(rq.auth, st, n, vmid)...)
	}
	if (ct == "" || ct == "iso" || ct == "vztmpl") && st.cfg.Type == "dir" && vmid == 0 {
		out = append(out, s.listTemplateContent(rq.auth, st, n, ct)...)
	}
	if (ct == "" || ct == "images" || ct == "rootdir") && (st.content["images"] || st.content["rootdir"]) {
		out = append(out, s.listGuestVolumes(rq.auth, st, n, ct, vmid)...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		vi, _ := out[i]["volid"].(string)
		vj, _ := out[j]["volid"].(string)
		return strings.ToLower(vi) < strings.ToLower(vj)
	})
	return out, nil
}

// listBackupContent lists the storage's backups the caller may see. With
// vmid, a dir backup is matched by its name (as PVE's listing does), a PBS
// snapshot by its owner.
func (s *Sim) listBackupContent(a *authInfo, st *storage, n string, vmid int64) []map[string]any {
	var out []map[string]any
	for _, b := range s.listBackups(st, n) {
		if vmid > 0 {
			if b.pbs && b.owner != int(vmid) {
				continue
			}
			if !b.pbs && !regexp.MustCompile(`\S+-`+strconv.FormatInt(vmid, 10)+`-\S+`).MatchString(b.volname) {
				continue
			}
		}
		if s.volumeAccess(a, st.cfg.ID, b.owner, "backup", b.volid) != nil {
			continue
		}
		it := map[string]any{"volid": b.volid, "content": "backup", "format": b.format, "size": b.size, "ctime": b.ctime}
		if b.subtype != "" {
			it["subtype"] = b.subtype
		}
		if b.owner > 0 {
			it["vmid"] = b.owner
		} else if vmid > 0 {
			it["vmid"] = vmid
		}
		if b.notes != "" {
			it["notes"] = b.notesFirstLine()
		}
		if b.protected {
			it["protected"] = 1
		}
		if b.pbs {
			if vb, err := os.ReadFile(filepath.Join(b.path, "verify_state")); err == nil {
				it["verification"] = map[string]any{"state": strings.TrimSpace(string(vb)), "upid": ""}
			}
		}
		out = append(out, it)
	}
	return out
}

// listTemplateContent lists a dir storage's ISO images and container
// templates (content ct, or both when ct is empty).
func (s *Sim) listTemplateContent(a *authInfo, st *storage, n, ct string) []map[string]any {
	var out []map[string]any
	for _, sub := range []struct{ dir, typ, prefix string }{{"iso", "iso", "iso/"}, {"cache", "vztmpl", "vztmpl/"}} {
		if ct != "" && ct != sub.typ || !st.content[sub.typ] {
			continue
		}
		ents, _ := os.ReadDir(filepath.Join(s.storagePath(st, n), "template", sub.dir))
		for _, e := range ents {
			v, err := s.parseVolume(st, n, sub.prefix+e.Name())
			if err != nil || v.vtype != sub.typ {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			if s.volumeAccess(a, st.cfg.ID, 0, sub.typ, v.volid) != nil {
				continue
			}
			out = append(out, map[string]any{"volid": v.volid, "content": sub.typ, "format": v.format, "size": fi.Size(), "ctime": fi.ModTime().Unix()})
		}
	}
	return out
}

// listGuestVolumes lists the guest disks (images) and CT volumes (rootdir)
// that live on the storage.
func (s *Sim) listGuestVolumes(a *authInfo, st *storage, n, ct string, vmid int64) []map[string]any {
	id := st.cfg.ID
	s.mu.Lock()
	var gs []*guest
	for _, g := range s.guests {
		if (g.node == n || st.cfg.Shared) && s.guestStorage(g) == id {
			gs = append(gs, g)
		}
	}
	s.mu.Unlock()
	var out []map[string]any
	for _, g := range gs {
		typ := "images"
		if g.typ == "lxc" {
			typ = "rootdir"
		}
		if ct != "" && ct != typ || vmid > 0 && int(vmid) != g.vmid || !st.content[typ] {
			continue
		}
		if s.volumeAccess(a, id, g.vmid, typ, "") != nil {
			continue
		}
		size := s.guestDiskSize(g)
		used := size
		if g.typ == "lxc" {
			used = archive.RootfsSize(s.GuestRootfs(g.vmid), nil)
		}
		out = append(out, map[string]any{"volid": fmt.Sprintf("%s:vm-%d-disk-0", id, g.vmid), "content": typ, "format": "raw",
			"size": size, "used": used, "vmid": g.vmid, "ctime": time.Now().Add(-24 * time.Hour).Unix()})
	}
	return out
}

func (s *Sim) volumeFromRequest(rq *request) (*volume, error) {
	st, err := s.storageFor(rq.vars["storage"], rq.vars["node"])
	if err != nil {
		return nil, err
	}
	return s.parseVolume(st, rq.vars["node"], rq.p.str("volume"))
}

func (s *Sim) hContentGet(rq *request) (any, error) {
	v, err := s.volumeFromRequest(rq)
	if err != nil {
		return nil, err
	}
	if err := s.volumeAccess(rq.auth, v.st.cfg.ID, v.owner, v.vtype, v.volid); err != nil {
		return nil, err
	}
	if v.vtype != "backup" {
		fi, err := os.Stat(v.path)
		if err != nil || v.path == "" {
			return nil, err500("volume_size_info on '%s' failed - no format", v.volid)
		}
		size := fi.Size()
		if fi.IsDir() {
			size = 8 << 30
		}
		return map[string]any{"path": v.path, "size": size, "used": size, "format": v.format}, nil
	}
	b, ok := s.backupInfo(v)
	if !ok {
		if v.pbs {
			return nil, err500("volume_size_info on '%s' failed - proxmox-backup-client failed: Error: unable to find snapshot 'ct/%d/%s'", v.volid, v.owner, v.pbsTime.UTC().Format("2006-01-02T15:04:05Z"))
		}
		return nil, err500("volume_size_info on '%s' failed - no format", v.volid)
	}
	if v.pbs {
		typ := "ct"
		if v.subtype == "qemu" {
			typ = "vm"
		}
		return map[string]any{
			"path": fmt.Sprintf("pbs://%s@%s:%s/%s/%d/%s", v.st.cfg.Username, v.st.cfg.Server, v.st.cfg.Datastore, typ, v.owner, v.pbsTime.UTC().Format("2006-01-02T15:04:05Z")),
			"size": b.size, "used": b.size, "format": v.format, "notes": b.notes, "protected": b.protected,
		}, nil
	}
	return map[string]any{"path": v.path, "size": b.size, "used": b.size, "format": "raw", "notes": b.notes, "protected": b2i(b.protected)}, nil
}

// maxProtected is the per-guest protected backup limit for the caller.
func (s *Sim) maxProtected(a *authInfo, st *storage) int {
	if st.cfg.MaxProtectedBackups != 0 {
		return st.cfg.MaxProtectedBackups
	}
	if s.can(a, "/storage/"+st.cfg.ID, "Datastore.Allocate") {
		return -1
	}
	return 5
}

// countProtected counts the guest's protected backups of the same guest
// type (update_volume_attribute compares the subtype).
func (s *Sim) countProtected(st *storage, n string, vmid int, subtype string) int {
	c := 0
	for _, b := range s.listBackups(st, n) {
		if b.owner == vmid && b.protected && (subtype == "" || b.subtype == subtype) {
			c++
		}
	}
	return c
}

func (s *Sim) setProtected(v *volume, on bool) error {
	p := filepath.Join(v.path, "protected")
	if !v.pbs {
		_, p, _ = dirBackupSidecars(v.path)
	}
	if on {
		return os.WriteFile(p, nil, 0o644)
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

func (s *Sim) setNotes(v *volume, notes string) error {
	p := filepath.Join(v.path, "notes")
	if !v.pbs {
		p, _, _ = dirBackupSidecars(v.path)
	}
	if notes == "" {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	return os.WriteFile(p, []byte(notes), 0o644)
}

func (s *Sim) hContentPut(rq *request) (any, error) {
	v, err := s.volumeFromRequest(rq)
	if err != nil {
		return nil, err
	}
	if err := s.volumeAccess(rq.auth, v.st.cfg.ID, v.owner, v.vtype, v.volid); err != nil {
		return nil, err
	}
	// A dir storage writes the sidecar files without looking for the
	// archive (DirPlugin's notes and protection files), so a PUT on a
	// deleted dir backup succeeds; PBS asks the server, which fails.
	b, ok := s.backupInfo(v)
	if rq.p.has("notes") {
		if v.vtype != "backup" {
			return nil, err500("only backups can have notes")
		}
		if v.pbs && !ok {
			return nil, err500("proxmox-backup-client failed: Error: unable to find snapshot '%s'", strings.TrimPrefix(v.volname, "backup/"))
		}
		if err := s.setNotes(v, rq.p.str("notes")); err != nil {
			return nil, err500("%s", err)
		}
	}
	if rq.p.has("protected") {
		if v.vtype != "backup" {
			return nil, err500("only backups support attribute 'protected'")
		}
		on := rq.p.boolv("protected", false)
		alreadyProtected := ok && b.protected
		if on && !alreadyProtected && v.owner > 0 {
			limit := s.maxProtected(rq.auth, v.st)
			if limit >= 0 && s.countProtected(v.st, rq.vars["node"], v.owner, v.subtype) >= limit {
				return nil, err500("The number of protected backups per guest is limited to %d on storage '%s'", limit, v.st.cfg.ID)
			}
		}
		if v.pbs && !ok {
			return nil, err500("proxmox-backup-client failed: Error: unable to find snapshot '%s'", strings.TrimPrefix(v.volname, "backup/"))
		}
		if err := s.setProtected(v, on); err != nil {
			return nil, err500("%s", err)
		}
	}
	return nil, nil
}

func (s *Sim) hContentDelete(rq *request) (any, error) {
	v, err := s.volumeFromRequest(rq)
	if err != nil {
		return nil, err
	}
	id := v.st.cfg.ID
	if v.vtype == "backup" && v.owner > 0 {
		if err := s.checkAll(rq.auth, "/storage/"+id, "Datastore.AllocateSpace"); err != nil {
			return nil, err
		}
		if err := s.checkAll(rq.auth, fmt.Sprintf("/vms/%d", v.owner), "VM.Backup"); err != nil {
			return nil, err
		}
	} else if err := s.checkAll(rq.auth, "/storage/"+id, "Datastore.Allocate"); err != nil {
		return nil, err
	}
	taskID := id
	if v.owner > 0 {
		taskID = fmt.Sprintf("%d@%s", v.owner, id)
	}
	t := s.newTask(rq.vars["node"], "imgdel", taskID, rq.auth.authid)
	s.runTask(t, func(t *task) error {
		if err := t.sleep(20 * time.Millisecond); err != nil {
			return err
		}
		if msg, ok := s.takeTaskFault("imgdel", v.owner); ok {
			return fmt.Errorf("%s", msg)
		}
		if v.vtype != "backup" {
			return fmt.Errorf("pvesim: only backup volumes can be deleted")
		}
		b, ok := s.backupInfo(v)
		if v.pbs {
			if !ok {
				return fmt.Errorf("proxmox-backup-client failed: Error: unable to find snapshot '%s'", strings.TrimPrefix(v.volname, "backup/"))
			}
			if b.protected {
				return fmt.Errorf("proxmox-backup-client failed: Error: cannot remove protected snapshot")
			}
			if err := os.RemoveAll(v.path); err != nil {
				return err
			}
			t.log("Removed volume '%s'", v.volid)
			return nil
		}
		if ok && b.protected {
			return fmt.Errorf("cannot remove protected volume '%s' on '%s'", v.volname, id)
		}
		if !ok {
			t.log("disk image '%s' does not exist", v.path)
		} else if err := os.Remove(v.path); err != nil {
			return err
		}
		np, _, lp := dirBackupSidecars(v.path)
		_ = os.Remove(np)
		_ = os.Remove(lp)
		t.log("Removed volume '%s'", v.volid)
		return nil
	})
	if delay := rq.p.intv("delay", 0); delay > 0 {
		select {
		case <-t.doneCh:
			_, _, exit, _ := t.snapshot()
			if exit == "OK" || strings.HasPrefix(exit, "WARNINGS") {
				return nil, nil
			}
			return nil, err500("%s", exit)
		case <-time.After(time.Duration(delay) * time.Second):
		}
	}
	return t.upid, nil
}
