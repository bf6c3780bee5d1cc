// Package pve is the Proxmox VE domain used by the provider: finding a guest's
// node, running vzdump and waiting for its task, listing, updating and deleting
// backups, and restoring guests. Every request goes through Client.do (its own
// HTTP client: PVE's status lines, tickets and task logs need more than
// go-proxmox offers); go-proxmox supplies a few JSON types. PVE's behaviour it
// relies on is described, with sources, in internal/pvesim/REFERENCE.md. It
// never imports terraform-plugin-framework types.
package pve

import "time"

// Config says how to reach and authenticate against a PVE cluster.
type Config struct {
	// Endpoint is the base URL, e.g. "https://pve.example.com:8006/". A
	// trailing "/api2/json" is accepted and not duplicated.
	Endpoint string
	// APIToken is "USER@REALM!TOKENID=SECRET". Exclusive with Username/Password.
	APIToken string
	Username string
	Password string
	OTP      string
	// Insecure skips TLS verification. CACertPEM pins a CA instead.
	Insecure  bool
	CACertPEM []byte
	// UserAgent is sent on every request.
	UserAgent string
}

// Guest is one PVE guest ("app") as the cluster reports it.
type Guest struct {
	VMID   int
	Node   string
	Type   string // GuestTypeLXC or GuestTypeQEMU
	Name   string
	Status string // running, stopped, unknown
	Lock   string // "" when not locked
}

const (
	GuestTypeLXC  = "lxc"
	GuestTypeQEMU = "qemu"
)

// BackupOptions are the inputs of one vzdump run for one guest. Zero values are
// never sent: an empty string or nil pointer leaves PVE's default in force.
type BackupOptions struct {
	VMID    int
	Node    string // "" = the guest's node from /cluster/resources
	Storage string // "" = PVE's default storage
	Mode    string // snapshot | suspend | stop
	// Compress is one of zstd, gzip, lzo, none. "" means none (the API default).
	Compress string
	// NotesTemplate is sent as notes-template (requires Storage on PVE's side).
	NotesTemplate string
	Protected     bool
	// BandwidthLimitKiB is bwlimit in KiB/s; 0 = unlimited (not sent).
	BandwidthLimitKiB int64
	ExcludePaths      []string
	ZstdThreads       *int64
	// Fleecing storage for VMs ("" = off).
	FleecingStorage        string
	PBSChangeDetectionMode string
}

// Backup is one backup archive on a storage.
type Backup struct {
	VolID        string // "local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst"
	Node         string
	Storage      string
	VMID         int
	GuestType    string // lxc | qemu
	Filename     string // the part after "backup/"
	Format       string // tar.zst, vma.zst, pbs-ct, ...
	Size         int64
	CreatedAt    time.Time
	Notes        string // first line, as the listing shows it
	Protected    bool
	Verification string // PBS verification state, "" when none
	Encrypted    bool
}

// BackupResult is what CreateBackup returns.
type BackupResult struct {
	Backup   Backup
	UPID     string
	Warnings []string // WARN: lines of the task log (task ended WARNINGS: N)
	// Unconfirmed is set when the task succeeded but its storage could not
	// be listed: Backup then holds only what the logged volid says.
	Unconfirmed error
}

// ListOptions filter ListBackups.
type ListOptions struct {
	VMID    int
	Node    string // "" = the guest's node; if the guest no longer exists, every online node
	Storage string // "" = every enabled, active storage with backup content (shared ones once)
}

// RestoreOptions are the inputs of one restore.
type RestoreOptions struct {
	VMID    int
	Node    string // "" = the guest's node, or the backup storage's node for a new guest
	Backup  string // volid
	Storage string // target storage for rootfs / disks
	// Start: nil = the power state the guest had before; otherwise as given.
	Start             *bool
	Unique            bool
	BandwidthLimitKiB int64
	SafetyBackup      bool
	// SafetyBackupStorage "" = the storage of Backup.
	SafetyBackupStorage string
	ShutdownTimeout     time.Duration // graceful shutdown before a hard stop
	LockWaitTimeout     time.Duration // how long to wait for someone else's lock to go
}

// RestoreResult is what Restore returns.
type RestoreResult struct {
	UPID              string
	Node              string
	GuestType         string
	PreviousStatus    string // running, stopped, or "absent" for a new guest
	SafetyBackupVolID string
	RestoredAt        time.Time
	FinalStatus       string

	resumedFrom string // the safety backup of an earlier attempt, "" when none
}

// ProgressFunc receives what an operation reports as it goes: its steps and
// the log lines of the tasks it waits for, as they are read. The client has
// already logged each of them once (INFO, with the task's upid, node, type
// and vmid), so a ProgressFunc only passes them on, e.g. to action progress.
type ProgressFunc func(line string)
