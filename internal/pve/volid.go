package pve

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// BackupName is what a backup volid says about the backup.
type BackupName struct {
	Storage   string
	VMID      int
	GuestType string // GuestTypeLXC or GuestTypeQEMU
	// Format as the content listing reports it: tar.zst, vma, pbs-ct, pbs-vm, ...
	Format string
	// CreatedAt is the time in the name: node-local time for dir storages
	// (interpreted in time.Local), UTC for PBS. Zero for non-standard names.
	CreatedAt time.Time
	Filename  string // the part after "backup/"
	PBS       bool
}

var (
	reVolID = regexp.MustCompile(`(?i)^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$`)
	// dir archives: the standard vzdump name (STO Storage.pm / Plugin.pm).
	reDirBackup = regexp.MustCompile(`^backup/(vzdump-(lxc|openvz|qemu)-([1-9][0-9]{2,8})-(.+?))\.(tgz|(?:tar|vma)(?:\.(?:gz|lzo|zst|bz2))?)$`)
	reDirTime   = regexp.MustCompile(`^(\d{4})_(\d{2})_(\d{2})-(\d{2})_(\d{2})_(\d{2})$`)
	rePBSBackup = regexp.MustCompile(`^backup/(ct|vm)/([1-9][0-9]{2,8})/([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)$`)
)

// ParseVolID splits "storage:volname".
func ParseVolID(volid string) (storage, volname string, err error) {
	m := reVolID.FindStringSubmatch(volid)
	if m == nil {
		return "", "", fmt.Errorf("invalid volume id %q: expected STORAGE:VOLNAME, e.g. local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst", volid)
	}
	return m[1], m[2], nil
}

// ParseBackupVolID parses a backup volid of a dir-like storage
// ("local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst") or of a PBS
// storage ("pbs:backup/ct/100/2025-10-04T12:00:00Z").
func ParseBackupVolID(volid string) (BackupName, error) {
	storage, volname, err := ParseVolID(volid)
	if err != nil {
		return BackupName{}, err
	}
	if m := rePBSBackup.FindStringSubmatch(volname); m != nil {
		vmid, _ := strconv.Atoi(m[2])
		t, err := time.Parse("2006-01-02T15:04:05Z", m[3])
		if err != nil {
			return BackupName{}, fmt.Errorf("invalid backup volume id %q: bad time %q", volid, m[3])
		}
		bn := BackupName{Storage: storage, VMID: vmid, CreatedAt: t.UTC(), Filename: strings.TrimPrefix(volname, "backup/"), PBS: true}
		if m[1] == "ct" {
			bn.GuestType, bn.Format = GuestTypeLXC, "pbs-ct"
		} else {
			bn.GuestType, bn.Format = GuestTypeQEMU, "pbs-vm"
		}
		return bn, nil
	}
	if m := reDirBackup.FindStringSubmatch(volname); m != nil {
		vmid, _ := strconv.Atoi(m[3])
		bn := BackupName{Storage: storage, VMID: vmid, Format: m[5], Filename: strings.TrimPrefix(volname, "backup/")}
		switch {
		case strings.HasPrefix(m[5], "vma"):
			bn.GuestType = GuestTypeQEMU
		default:
			bn.GuestType = GuestTypeLXC
		}
		if (m[2] == "qemu") != (bn.GuestType == GuestTypeQEMU) {
			return BackupName{}, fmt.Errorf("invalid backup volume id %q: a %s backup cannot have the extension .%s", volid, m[2], m[5])
		}
		if t := reDirTime.FindStringSubmatch(m[4]); t != nil {
			ts, err := time.ParseInLocation("2006_01_02-15_04_05", m[4], time.Local)
			if err == nil {
				bn.CreatedAt = ts
			}
		}
		return bn, nil
	}
	return BackupName{}, fmt.Errorf("invalid backup volume id %q: expected STORAGE:backup/vzdump-<lxc|qemu>-<vmid>-<YYYY_MM_DD-HH_MM_SS>.<tar|vma>[.zst|.gz|.lzo] or STORAGE:backup/<ct|vm>/<vmid>/<YYYY-MM-DDTHH:MM:SSZ>", volid)
}

// archiveVolID turns a vzdump log archive line into a volid: an absolute
// path → <storage>:backup/<basename>; a PBS archive name → <storage>:backup/<name>.
func archiveVolID(storage, logLine string) (string, bool) {
	if m := reArchiveDir.FindStringSubmatch(logLine); m != nil {
		p := m[1]
		base := p[strings.LastIndexByte(p, '/')+1:]
		return storage + ":backup/" + base, true
	}
	if m := reArchivePBS.FindStringSubmatch(logLine); m != nil {
		return storage + ":backup/" + strings.TrimPrefix(m[1], "/"), true
	}
	return "", false
}

var (
	reArchiveDir = regexp.MustCompile(`creating vzdump archive '([^']+)'`)
	reArchivePBS = regexp.MustCompile(`creating Proxmox Backup Server archive '([^']+)'`)
	reLogStorage = regexp.MustCompile(`--storage\s+'?([A-Za-z][A-Za-z0-9\-_.]*)'?`)
)
