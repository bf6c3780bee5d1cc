package pvesim

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Pruning as PVE's storage layer does it (REFERENCE.md 10.1–10.3): the
// dry run and the prune share one list, each backup marked keep, remove,
// protected or renamed.

var (
	// reArchiveType is archive_info's first test: a vzdump archive of a known guest type.
	reArchiveType = regexp.MustCompile(`^vzdump-(lxc|openvz|qemu)-.+\.(tgz|(?:tar|vma)(?:\.(?:gz|lzo|zst|bz2))?)$`)
	// reListedVMID is how the listing finds a vmid in any backup file name.
	reListedVMID = regexp.MustCompile(`-([1-9][0-9]{2,8})-[^/]+$`)
)

// pruneEntry is one line of the prune list.
type pruneEntry struct {
	volid string
	ctime int64
	typ   string // lxc | qemu | openvz | unknown
	vmid  int    // 0: none found in the name
	mark  string
	path  string // archive file or PBS snapshot directory
	pbs   bool
}

func (e *pruneEntry) wire() map[string]any {
	m := map[string]any{"volid": e.volid, "ctime": e.ctime, "type": e.typ, "mark": e.mark}
	if e.vmid > 0 {
		m["vmid"] = e.vmid
	}
	return m
}

// pruneSchema: prune-backups is optional for both methods (the standard option is).
func pruneSchema() schema {
	return schema{"prune-backups": pdS(), "type": pdE("qemu", "lxc"), "vmid": pdVMID(false)}
}

// pruneRequest resolves storage, retention and filters shared by both methods.
func (s *Sim) pruneRequest(rq *request) (*storage, *retention, int, string, error) {
	n := rq.vars["node"]
	s.mu.Lock()
	st := s.storages[rq.vars["storage"]]
	s.mu.Unlock()
	if st == nil {
		return nil, nil, 0, "", err500("storage '%s' does not exist", rq.vars["storage"])
	}
	var keep *retention
	if rq.p.has("prune-backups") {
		r, err := parseRetention(rq.p.str("prune-backups"))
		if err != nil {
			return nil, nil, 0, "", paramErr1("prune-backups", err.Error())
		}
		keep = r
	}
	if !st.content["backup"] {
		return nil, nil, 0, "", err500("storage '%s' does not support backups", st.cfg.ID)
	}
	if keep == nil {
		if st.cfg.PruneBackups == "" {
			return nil, nil, 0, "", err500("no prune-backups options configured for storage '%s'", st.cfg.ID)
		}
		r, err := parseRetention(st.cfg.PruneBackups)
		if err != nil {
			return nil, nil, 0, "", err500("%s", err)
		}
		keep = r
	}
	if st.cfg.Disabled {
		return nil, nil, 0, "", err500("storage '%s' is disabled", st.cfg.ID)
	}
	if !st.onNode(n) {
		return nil, nil, 0, "", err500("storage '%s' is not available on node '%s'", st.cfg.ID, n)
	}
	return st, keep, int(rq.p.intv("vmid", 0)), rq.p.str("type"), nil
}

// hPruneDryRun is GET /nodes/{node}/storage/{storage}/prunebackups.
func (s *Sim) hPruneDryRun(rq *request) (any, error) {
	if err := s.checkAny(rq.auth, "/storage/"+rq.vars["storage"], "Datastore.Audit", "Datastore.AllocateSpace"); err != nil {
		return nil, err
	}
	st, keep, vmid, typ, err := s.pruneRequest(rq)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, e := range s.pruneList(st, rq.vars["node"], keep, vmid, typ) {
		out = append(out, e.wire())
	}
	return out, nil
}

// hPruneDelete is DELETE /nodes/{node}/storage/{storage}/prunebackups: a
// "prunebackups" worker that removes what the same list marks remove.
func (s *Sim) hPruneDelete(rq *request) (any, error) {
	id := rq.vars["storage"]
	if rq.p.has("vmid") {
		if err := s.checkAll(rq.auth, "/storage/"+id, "Datastore.AllocateSpace"); err != nil {
			return nil, err
		}
		if err := s.checkAll(rq.auth, "/vms/"+rq.p.str("vmid"), "VM.Backup"); err != nil {
			return nil, err
		}
	} else if err := s.checkAll(rq.auth, "/storage/"+id, "Datastore.Allocate"); err != nil {
		return nil, err
	}
	st, keep, vmid, typ, err := s.pruneRequest(rq)
	if err != nil {
		return nil, err
	}
	taskID := id
	if vmid > 0 {
		taskID = fmt.Sprintf("%d@%s", vmid, id)
	}
	n := rq.vars["node"]
	t := s.newTask(n, "prunebackups", taskID, rq.auth.authid)
	s.runTask(t, func(t *task) error {
		if err := t.sleep(20 * time.Millisecond); err != nil {
			return err
		}
		failed := false
		for _, e := range s.pruneList(st, n, keep, vmid, typ) {
			if e.mark != "remove" {
				continue
			}
			if e.pbs {
				continue // handled per group below
			}
			t.log("removing backup '%s'", e.volid)
			if msg, ok := s.takeTaskFault("prunebackups", e.vmid); ok {
				t.log("error when removing backup '%s' - %s", e.volid, msg)
				failed = true
				continue
			}
			if err := removeArchive(e.path); err != nil {
				t.log("error when removing backup '%s' - %s", e.volid, err)
				failed = true
			}
		}
		if st.cfg.Type == "pbs" {
			failed = s.prunePBS(t, st, n, keep, vmid, typ) || failed
		}
		if failed {
			return fmt.Errorf("error pruning backups - check log")
		}
		return nil
	})
	return t.upid, nil
}

// prunePBS removes a PBS storage's snapshots marked remove, one backup group at a time.
func (s *Sim) prunePBS(t *task, st *storage, n string, keep *retention, vmid int, typ string) bool {
	groups := map[string][]*pruneEntry{}
	var names []string
	for _, e := range s.pruneList(st, n, keep, vmid, typ) {
		g := map[string]string{"lxc": "ct", "qemu": "vm"}[e.typ] + "/" + strconv.Itoa(e.vmid)
		if _, ok := groups[g]; !ok {
			names = append(names, g)
		}
		groups[g] = append(groups[g], e)
	}
	sort.Strings(names)
	failed := false
	for _, g := range names {
		t.log("running 'proxmox-backup-client prune' for '%s'", g)
		for _, e := range groups[g] {
			if e.mark == "remove" {
				if err := os.RemoveAll(e.path); err != nil {
					t.log("prune '%s': %s", g, err)
					failed = true
				}
			}
		}
	}
	return failed
}

// removeArchive is archive_remove: refuse a protected archive, remove it, then its log and notes.
func removeArchive(path string) error {
	np, pp, lp := dirBackupSidecars(path)
	if _, err := os.Stat(pp); err == nil {
		return fmt.Errorf("cannot remove protected archive '%s'", path)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing archive %s failed: %v", path, err)
	}
	if reStdBackup.MatchString(filepath.Base(path)) {
		_ = os.Remove(lp)
	}
	_ = os.Remove(np)
	return nil
}

// pruneList lists the storage's backups with their marks (the storage
// plugin's prune_backups with dryrun set).
func (s *Sim) pruneList(st *storage, n string, keep *retention, vmid int, typ string) []*pruneEntry {
	var list []*pruneEntry
	groups := map[string][]*pruneEntry{}
	for _, b := range s.listBackups(st, n) {
		file := filepath.Base(b.path)
		e := &pruneEntry{volid: b.volid, ctime: b.ctime, path: b.path, pbs: b.pbs, typ: "unknown"}
		if b.pbs {
			e.typ, e.vmid = b.subtype, b.owner
		} else {
			listed := reListedVMID.FindStringSubmatch(file)
			if vmid > 0 && !strings.Contains(file, fmt.Sprintf("-%d-", vmid)) {
				continue // the listing's vmid filter matches the name only
			}
			if m := reArchiveType.FindStringSubmatch(file); m != nil {
				e.typ = m[1]
			}
			if vmid > 0 {
				e.vmid = vmid
			} else if listed != nil {
				e.vmid, _ = strconv.Atoi(listed[1])
			}
		}
		if b.pbs && vmid > 0 && e.vmid != vmid {
			continue
		}
		if typ != "" && typ != e.typ {
			continue
		}
		std := b.pbs
		if !b.pbs {
			if m := reStdBackup.FindStringSubmatch(file); m != nil && m[2] == e.typ {
				std = true
				e.vmid, _ = strconv.Atoi(m[3])
			}
		}
		if std {
			g := e.typ + "/" + strconv.Itoa(e.vmid)
			groups[g] = append(groups[g], e)
		} else {
			e.mark = "renamed" // not the standard naming scheme: never pruned
		}
		if b.protected {
			e.mark = "protected"
		}
		list = append(list, e)
	}
	for _, g := range groups {
		pruneMarkGroup(g, keep, s.loc)
	}
	// The listing is a sorted glob of the dump directory.
	sort.SliceStable(list, func(i, j int) bool { return list[i].volid < list[j].volid })
	return list
}

// pruneMarkGroup is prune_mark_backup_group: newest first, each keep-* option
// in turn keeps the newest backup of each of its next N periods that no
// earlier option has covered; what no option keeps is removed.
func pruneMarkGroup(group []*pruneEntry, keep *retention, loc *time.Location) {
	if keep.keepAll || len(keep.keep) == 0 {
		for _, e := range group {
			if e.mark != "" && e.mark != "remove" {
				continue
			}
			e.mark = "keep"
		}
		return
	}
	list := append([]*pruneEntry(nil), group...)
	sort.SliceStable(list, func(i, j int) bool { return list[i].ctime > list[j].ctime })
	local := func(c int64) time.Time { return time.Unix(c, 0).In(loc) }
	ids := []struct {
		key string
		id  func(int64) string
	}{
		{"keep-last", func(c int64) string { return strconv.FormatInt(c, 10) }},
		{"keep-hourly", func(c int64) string { t := local(c); return t.Format("15/2/1/2006") }},
		{"keep-daily", func(c int64) string { return local(c).Format("2/1/2006") }},
		{"keep-weekly", func(c int64) string { y, w := local(c).ISOWeek(); return fmt.Sprintf("%d/%d", w, y) }},
		{"keep-monthly", func(c int64) string { return local(c).Format("1/2006") }},
		{"keep-yearly", func(c int64) string { return local(c).Format("2006") }},
	}
	for _, k := range ids {
		count := keep.keep[k.key]
		if count == 0 {
			continue
		}
		already := map[string]bool{}
		for _, e := range list {
			if e.mark == "keep" {
				already[k.id(e.ctime)] = true
			}
		}
		newly := map[string]bool{}
		for _, e := range list {
			id := k.id(e.ctime)
			if e.mark != "" || already[id] {
				continue
			}
			if !newly[id] {
				if len(newly) >= count {
					break
				}
				newly[id] = true
				e.mark = "keep"
			} else {
				e.mark = "remove"
			}
		}
	}
	for _, e := range list {
		if e.mark == "" {
			e.mark = "remove"
		}
	}
}

// CopyBackup copies a dir-storage backup to the standard name of another
// time (node-local), with its notes, so tests can build a history spanning
// hours, days, weeks and months from one real archive. It returns the new volid.
func (s *Sim) CopyBackup(nodeName, volid string, at time.Time) (string, error) {
	storeID, volname, ok := strings.Cut(volid, ":")
	if !ok {
		return "", fmt.Errorf("bad volid %q", volid)
	}
	st, err := s.storageFor(storeID, nodeName)
	if err != nil {
		return "", err
	}
	v, err := s.parseVolume(st, nodeName, volname)
	if err != nil || v.pbs || v.vtype != "backup" {
		return "", fmt.Errorf("not a dir-storage backup: %s", volid)
	}
	m := reStdBackup.FindStringSubmatch(filepath.Base(v.path))
	if m == nil {
		return "", fmt.Errorf("not a standard backup name: %s", volid)
	}
	name := fmt.Sprintf("vzdump-%s-%s-%s.%s", m[2], m[3], at.In(s.loc).Format("2006_01_02-15_04_05"), m[10])
	dst := filepath.Join(filepath.Dir(v.path), name)
	if _, err := os.Stat(dst); err == nil {
		return "", fmt.Errorf("%s exists", dst)
	}
	if err := copyFile(v.path, dst); err != nil {
		return "", err
	}
	if np, _, _ := dirBackupSidecars(v.path); fileSize(np) > 0 {
		dnp, _, _ := dirBackupSidecars(dst)
		_ = copyFile(np, dnp)
	}
	_ = os.Chtimes(dst, at, at)
	return storeID + ":backup/" + name, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
