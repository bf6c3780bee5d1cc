package pvesim

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Config is the simulated cluster inventory. Every field is JSON-taggable so a
// whole cluster can be described in a file (see LoadConfig).
type Config struct {
	// ClusterName is the corosync cluster name ({{cluster}} in notes
	// templates). Empty means a standalone node ("standalone node").
	ClusterName string `json:"cluster_name"`
	// Timezone is the IANA name of the nodes' local time zone, used for
	// dir archive names and their ctime. Empty means the process' local zone.
	Timezone string `json:"timezone,omitempty"`
	// Version is reported by GET /version (default 9.2.11 / release 9.2).
	Version string `json:"version,omitempty"`
	// TicketLifetimeSeconds is the validity of a login ticket (default 7200).
	TicketLifetimeSeconds int `json:"ticket_lifetime_seconds,omitempty"`
	// AuthFailureDelayMS delays 401 answers of the auth layer like PVE does
	// (3000 ms on a real node). Default 0: no delay.
	AuthFailureDelayMS int `json:"auth_failure_delay_ms,omitempty"`

	Nodes    []NodeConfig    `json:"nodes"`
	Storages []StorageConfig `json:"storages"`
	Guests   []GuestConfig   `json:"guests"`
	Users    []UserConfig    `json:"users"`
}

// NodeConfig is one cluster node.
type NodeConfig struct {
	Name    string `json:"name"`
	Offline bool   `json:"offline,omitempty"`
	// MaxCPU and MaxMem describe the node's hardware (defaults 8 / 32 GiB).
	MaxCPU int   `json:"maxcpu,omitempty"`
	MaxMem int64 `json:"maxmem,omitempty"`
}

// StorageConfig is one storage definition (storage.cfg entry).
type StorageConfig struct {
	ID string `json:"id"`
	// Type is "dir" (also used for nfs/cifs-like shared storages) or "pbs".
	Type string `json:"type"`
	// Content lists the content types, e.g. ["backup","iso","vztmpl"].
	Content []string `json:"content"`
	Shared  bool     `json:"shared,omitempty"`
	// Nodes restricts the storage to these nodes (empty: all nodes).
	Nodes    []string `json:"nodes,omitempty"`
	Disabled bool     `json:"disabled,omitempty"`
	// Path is the storage directory. Relative paths are relative to the data
	// dir. For a non-shared storage the node name is appended. Default:
	// "storage/<id>" (shared) or "nodes/<node>/storage/<id>" (per node).
	Path string `json:"path,omitempty"`
	// Capacity is the simulated total size in bytes (default 1 TiB).
	Capacity int64 `json:"capacity,omitempty"`
	// MaxProtectedBackups is max-protected-backups (0: PVE default, -1 unlimited).
	MaxProtectedBackups int `json:"max_protected_backups,omitempty"`
	// PruneBackups is the storage's prune-backups option, e.g. "keep-last=3".
	PruneBackups string `json:"prune_backups,omitempty"`
	// Server / Datastore / Username describe a PBS storage.
	Server    string `json:"server,omitempty"`
	Datastore string `json:"datastore,omitempty"`
	Username  string `json:"username,omitempty"`
}

// GuestConfig is one LXC container or QEMU VM.
type GuestConfig struct {
	VMID int    `json:"vmid"`
	Type string `json:"type"` // "lxc" or "qemu"
	Node string `json:"node"`
	Name string `json:"name"`
	// Status is "running" or "stopped" (default).
	Status string `json:"status,omitempty"`
	Lock   string `json:"lock,omitempty"`
	Tags   string `json:"tags,omitempty"`
	// Protection sets `protection: 1` in the guest config.
	Protection bool `json:"protection,omitempty"`
	// Storage holds the guest's disk (default "local-lvm").
	Storage string `json:"storage,omitempty"`
	// Files are created in the LXC rootfs on first start (path → content),
	// only when the rootfs directory does not exist yet.
	Files map[string]string `json:"files,omitempty"`
	// DiskSize is the size in bytes of a QEMU guest's disk file, created with
	// deterministic content on first start (default 8 KiB).
	DiskSize int64 `json:"disk_size,omitempty"`
	// Config holds extra guest config keys (memory, cores, net0, ...).
	Config map[string]string `json:"config,omitempty"`
}

// UserConfig is a PVE user with its ACL and API tokens.
type UserConfig struct {
	ID       string        `json:"id"` // user@realm
	Password string        `json:"password,omitempty"`
	ACL      []ACLEntry    `json:"acl,omitempty"`
	Tokens   []TokenConfig `json:"tokens,omitempty"`
}

// TokenConfig is an API token of a user.
type TokenConfig struct {
	ID string `json:"id"` // the part after '!'
	// Secret is the token secret; empty means a random UUID generated on
	// first start and persisted in DataDir/secrets.json.
	Secret string `json:"secret,omitempty"`
	// Privsep: when true the token has only its own ACL (intersected with
	// the user's); when false it has the user's privileges.
	Privsep bool       `json:"privsep,omitempty"`
	ACL     []ACLEntry `json:"acl,omitempty"`
}

// ACLEntry grants privileges on a path ("/", "/vms/100", "/storage/local",
// "/nodes/pve1"). Roles are expanded (Administrator, PVEAuditor,
// PVEDatastoreUser, PVEDatastoreAdmin, PVEVMAdmin, PVEVMUser, NoAccess).
type ACLEntry struct {
	Path  string   `json:"path"`
	Roles []string `json:"roles,omitempty"`
	Privs []string `json:"privs,omitempty"`
	// NoPropagate limits the entry to exactly Path.
	NoPropagate bool `json:"no_propagate,omitempty"`
}

// DefaultConfig returns the default two-node inventory.
func DefaultConfig() *Config {
	return &Config{
		ClusterName: "pvesim",
		Nodes:       []NodeConfig{{Name: "pve1"}, {Name: "pve2"}},
		Storages: []StorageConfig{
			{ID: "local", Type: "dir", Content: []string{"backup", "iso", "vztmpl"}},
			{ID: "local-lvm", Type: "dir", Content: []string{"rootdir", "images"}},
			{ID: "nas", Type: "dir", Content: []string{"backup"}, Shared: true},
			{ID: "pbs", Type: "pbs", Content: []string{"backup"}, Shared: true, Server: "pbs.example.com", Datastore: "store1", Username: "backup@pbs"},
		},
		Guests: []GuestConfig{
			{VMID: 100, Type: "lxc", Node: "pve1", Name: "web", Status: "running", Files: map[string]string{
				"etc/hostname":        "web\n",
				"etc/os-release":      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
				"var/www/index.html":  "<html><body><h1>hello from web</h1></body></html>\n",
				"var/lib/app/version": "1.0.0\n",
			}},
			{VMID: 101, Type: "lxc", Node: "pve2", Name: "db", Status: "stopped", Files: map[string]string{
				"etc/hostname":          "db\n",
				"var/lib/db/data.sql":   "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n",
				"etc/db/db.conf":        "listen = 0.0.0.0\n",
				"var/lib/db/schema.ver": "7\n",
			}},
			{VMID: 200, Type: "qemu", Node: "pve1", Name: "vm", Status: "stopped", DiskSize: 16 * 1024},
		},
		Users: []UserConfig{
			{ID: "root@pam", Password: "pvesim", ACL: []ACLEntry{{Path: "/", Roles: []string{"Administrator"}}},
				Tokens: []TokenConfig{{ID: "terraform"}}},
			{ID: "auditor@pve", Password: "auditor", ACL: []ACLEntry{{Path: "/", Privs: []string{"Datastore.Audit", "VM.Audit"}}},
				Tokens: []TokenConfig{{ID: "ro"}}},
		},
	}
}

// LoadConfig reads a JSON config file. Missing sections are filled from
// DefaultConfig (a file with only "guests" keeps the default nodes etc.).
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("pvesim: config %s: %w", path, err)
	}
	def := DefaultConfig()
	if c.Nodes == nil {
		c.Nodes = def.Nodes
	}
	if c.Storages == nil {
		c.Storages = def.Storages
	}
	if c.Guests == nil {
		c.Guests = def.Guests
	}
	if c.Users == nil {
		c.Users = def.Users
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("pvesim: config %s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) validate() error {
	if len(c.Nodes) == 0 {
		return fmt.Errorf("no nodes")
	}
	nodes := map[string]bool{}
	for _, n := range c.Nodes {
		if !reNodeName.MatchString(n.Name) {
			return fmt.Errorf("invalid node name %q", n.Name)
		}
		nodes[n.Name] = true
	}
	st := map[string]bool{}
	for _, s := range c.Storages {
		if !reStorageID.MatchString(s.ID) {
			return fmt.Errorf("invalid storage id %q", s.ID)
		}
		if s.Type != "dir" && s.Type != "pbs" {
			return fmt.Errorf("storage %s: unsupported type %q (dir or pbs)", s.ID, s.Type)
		}
		st[s.ID] = true
	}
	ids := map[int]bool{}
	for _, g := range c.Guests {
		if g.VMID < 100 || g.VMID > 999999999 {
			return fmt.Errorf("invalid vmid %d", g.VMID)
		}
		if ids[g.VMID] {
			return fmt.Errorf("duplicate vmid %d", g.VMID)
		}
		ids[g.VMID] = true
		if g.Type != "lxc" && g.Type != "qemu" {
			return fmt.Errorf("guest %d: type must be lxc or qemu", g.VMID)
		}
		if !nodes[g.Node] {
			return fmt.Errorf("guest %d: unknown node %q", g.VMID, g.Node)
		}
		if g.Storage != "" && !st[g.Storage] {
			return fmt.Errorf("guest %d: unknown storage %q", g.VMID, g.Storage)
		}
	}
	for _, u := range c.Users {
		if !strings.Contains(u.ID, "@") {
			return fmt.Errorf("user id %q must be user@realm", u.ID)
		}
	}
	return nil
}

// roles maps PVE built-in role names to privileges (subset relevant here).
var roles = map[string][]string{
	"Administrator":     allPrivs,
	"PVEAuditor":        {"Datastore.Audit", "Mapping.Audit", "Pool.Audit", "SDN.Audit", "Sys.Audit", "VM.Audit"},
	"PVEDatastoreUser":  {"Datastore.AllocateSpace", "Datastore.Audit"},
	"PVEDatastoreAdmin": {"Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit"},
	"PVEVMAdmin": {"VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Cloudinit",
		"VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options", "VM.Console",
		"VM.Migrate", "VM.PowerMgmt", "VM.Snapshot", "VM.Snapshot.Rollback"},
	"PVEVMUser": {"VM.Audit", "VM.Backup", "VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Console", "VM.PowerMgmt"},
	"NoAccess":  {},
}

var allPrivs = []string{
	"Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit",
	"Group.Allocate", "Mapping.Audit", "Mapping.Modify", "Mapping.Use", "Permissions.Modify",
	"Pool.Allocate", "Pool.Audit", "Realm.Allocate", "Realm.AllocateUser",
	"SDN.Allocate", "SDN.Audit", "SDN.Use", "Sys.Audit", "Sys.Console", "Sys.Incoming", "Sys.Modify",
	"Sys.PowerMgmt", "Sys.Syslog", "User.Modify", "VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone",
	"VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Cloudinit", "VM.Config.Disk", "VM.Config.HWType",
	"VM.Config.Memory", "VM.Config.Network", "VM.Config.Options", "VM.Console", "VM.GuestAgent.Audit",
	"VM.Migrate", "VM.PowerMgmt", "VM.Replicate", "VM.Snapshot", "VM.Snapshot.Rollback",
}

func expandACL(e ACLEntry) map[string]bool {
	m := map[string]bool{}
	for _, r := range e.Roles {
		for _, p := range roles[r] {
			m[p] = true
		}
	}
	for _, p := range e.Privs {
		m[p] = true
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
