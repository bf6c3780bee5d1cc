package pve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

// flexBool decodes PVE booleans: 1/0, true/false, "1"/"0", "true"/"false".
type flexBool bool

func (b *flexBool) UnmarshalJSON(raw []byte) error {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	switch strings.ToLower(s) {
	case "", "null", "0", "false", "no", "off":
		*b = false
	default:
		*b = true
	}
	return nil
}

// contentItem is one entry of GET /nodes/{n}/storage/{s}/content.
type contentItem struct {
	VolID        string                 `json:"volid"`
	Content      string                 `json:"content"`
	Format       string                 `json:"format"`
	Subtype      string                 `json:"subtype"`
	VMID         proxmox.StringOrInt    `json:"vmid"`
	Size         proxmox.StringOrUint64 `json:"size"`
	CTime        proxmox.StringOrUint64 `json:"ctime"`
	Notes        string                 `json:"notes"`
	Protected    flexBool               `json:"protected"`
	Verification *struct {
		State string `json:"state"`
	} `json:"verification"`
	Encrypted json.RawMessage `json:"encrypted"`
}

func (it contentItem) backup(node, storage string) Backup {
	b := Backup{
		VolID:     it.VolID,
		Node:      node,
		Storage:   storage,
		VMID:      int(it.VMID),
		Format:    it.Format,
		Size:      int64(it.Size),
		CreatedAt: time.Unix(int64(it.CTime), 0),
		Notes:     FirstLine(it.Notes),
		Protected: bool(it.Protected),
		GuestType: it.Subtype,
	}
	if st, vn, err := ParseVolID(it.VolID); err == nil {
		b.Storage = st
		b.Filename = strings.TrimPrefix(vn, "backup/")
	}
	if bn, err := ParseBackupVolID(it.VolID); err == nil {
		if b.GuestType != GuestTypeLXC && b.GuestType != GuestTypeQEMU {
			b.GuestType = bn.GuestType
		}
		if b.VMID == 0 {
			b.VMID = bn.VMID
		}
		if b.Format == "" {
			b.Format = bn.Format
		}
		if it.CTime == 0 {
			b.CreatedAt = bn.CreatedAt
		}
	}
	if b.GuestType == "openvz" {
		b.GuestType = GuestTypeLXC
	}
	if it.Verification != nil {
		b.Verification = it.Verification.State
	}
	switch e := strings.Trim(strings.TrimSpace(string(it.Encrypted)), `"`); e {
	case "", "null", "0", "false":
	default:
		b.Encrypted = true
	}
	return b
}

// listContent lists the backups on one storage as seen from node (vmid 0 = all).
func (c *Client) listContent(ctx context.Context, node, storage string, vmid int) ([]Backup, error) {
	q := url.Values{"content": {"backup"}}
	if vmid > 0 {
		q.Set("vmid", strconv.Itoa(vmid))
	}
	var items []contentItem
	if err := c.get(ctx, segPath("nodes", node, "storage", storage, "content"), q, &items); err != nil {
		return nil, fmt.Errorf("listing the backups on storage %s (node %s): %w", storage, node, err)
	}
	out := make([]Backup, 0, len(items))
	for _, it := range items {
		if it.Content != "" && it.Content != "backup" {
			continue
		}
		b := it.backup(node, storage)
		// PVE's dir vmid filter is a substring match: keep exact owners only
		if vmid > 0 && b.VMID != vmid {
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

func sortBackups(bs []Backup) {
	sort.SliceStable(bs, func(i, j int) bool {
		if !bs[i].CreatedAt.Equal(bs[j].CreatedAt) {
			return bs[i].CreatedAt.After(bs[j].CreatedAt)
		}
		return bs[i].VolID < bs[j].VolID
	})
}

// defaultBackupStorage reads the storage vzdump uses when none is given.
func (c *Client) defaultBackupStorage(ctx context.Context, node string) (string, error) {
	var d struct {
		Storage string `json:"storage"`
	}
	if err := c.get(ctx, segPath("nodes", node, "vzdump", "defaults"), nil, &d); err != nil {
		return "", fmt.Errorf("reading the vzdump defaults of node %s: %w", node, err)
	}
	if d.Storage == "" {
		return "local", nil
	}
	return d.Storage, nil
}

// resolveBackupNode picks the node to reach a backup's storage from when the
// caller gave none: the owner guest's node, else the first online node.
func (c *Client) resolveBackupNode(ctx context.Context, bn BackupName) (string, error) {
	if bn.VMID > 0 {
		if g, err := c.FindGuest(ctx, bn.VMID); err == nil {
			return g.Node, nil
		} else if !IsNotFound(err) {
			return "", err
		}
	}
	nodes, err := c.onlineNodes(ctx)
	if err != nil {
		return "", err
	}
	if len(nodes) == 0 {
		return "", newKindError(ErrOffline, nil, "no cluster node is online")
	}
	return nodes[0], nil
}

// GetBackup reads one backup from its storage's content listing. node ""
// means the owner guest's node, or the first online node.
//
// PVE leaves out of the listing, without an error, the backups the caller
// may not access. So a backup the listing does not show is asked for by
// name: an error for which IsNotFound is true comes only when PVE says it
// does not exist, and a backup the caller cannot see is an error for which
// IsForbidden is true, naming the privileges it needs.
func (c *Client) GetBackup(ctx context.Context, node, volid string) (*Backup, error) {
	storage, _, err := ParseVolID(volid)
	if err != nil {
		return nil, err
	}
	bn, perr := ParseBackupVolID(volid)
	if node == "" {
		if node, err = c.resolveBackupNode(ctx, bn); err != nil {
			return nil, fmt.Errorf("reading backup %s: %w", volid, err)
		}
	}
	vmid := 0
	if perr == nil {
		vmid = bn.VMID
	}
	list, err := c.listContent(ctx, node, storage, vmid)
	if err != nil {
		return nil, fmt.Errorf("reading backup %s: %w", volid, err)
	}
	for i := range list {
		if list[i].VolID == volid {
			return &list[i], nil
		}
	}
	return c.getUnlistedBackup(ctx, node, storage, volid, vmid)
}

// reVolumeMissingMsg: how PVE's volume lookups say a backup file or PBS
// snapshot is not there.
var reVolumeMissingMsg = regexp.MustCompile(`(?i)failed - no format|unable to find snapshot|does not exist|no such file`)

// volumeInfo is GET /nodes/{node}/storage/{storage}/content/{volume}.
type volumeInfo struct {
	Size      uint64   `json:"size"`
	Format    string   `json:"format"`
	Notes     string   `json:"notes"`
	Protected flexBool `json:"protected"`
}

// getUnlistedBackup asks for a backup the listing did not show: PVE checks
// the caller's access to the volume before it looks for it, so a 403 means
// hidden, and any other answer says whether it exists.
func (c *Client) getUnlistedBackup(ctx context.Context, node, storage, volid string, vmid int) (*Backup, error) {
	var info volumeInfo
	err := c.get(ctx, segPath("nodes", node, "storage", storage, "content", volid), nil, &info)
	var ae *APIError
	switch {
	case err == nil:
		// listed by name but not in the listing: report it as it is
		b, ok := backupFromVolID(volid, node)
		if !ok {
			b = Backup{VolID: volid, Node: node, Storage: storage, VMID: vmid}
		}
		b.Size, b.Notes, b.Protected = int64(info.Size), FirstLine(info.Notes), bool(info.Protected)
		return &b, nil
	case errors.As(err, &ae) && ae.StatusCode == 403:
		return nil, newKindError(ErrForbidden, err, "backup %s is not visible to this user or token, so whether it still exists is unknown "+
			"(PVE lists a backup only with Datastore.Allocate on /storage/%s, or Datastore.AllocateSpace on /storage/%s "+
			"and VM.Backup on /vms/%d)", volid, storage, storage, vmid)
	case IsNotFound(err) || (errors.As(err, &ae) && matchAny(reVolumeMissingMsg, []string{ae.Status, ae.Message})):
		return nil, newKindError(ErrNotFound, err, "backup %s does not exist on storage %s (node %s)", volid, storage, node)
	default:
		return nil, fmt.Errorf("reading backup %s: %w", volid, err)
	}
}

// ListBackups lists a guest's backups, newest first (by creation time, ties by
// volid). See ListOptions for which nodes and storages are read. A storage
// that cannot be read is an error naming it.
func (c *Client) ListBackups(ctx context.Context, opts ListOptions) ([]Backup, error) {
	var nodes []string
	switch {
	case opts.Node != "":
		nodes = []string{opts.Node}
	case opts.VMID > 0:
		g, err := c.FindGuest(ctx, opts.VMID)
		switch {
		case err == nil:
			nodes = []string{g.Node}
		case IsNotFound(err):
			// the guest is gone: look everywhere (disaster recovery)
			if nodes, err = c.onlineNodes(ctx); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
	default:
		var err error
		if nodes, err = c.onlineNodes(ctx); err != nil {
			return nil, err
		}
	}

	seenShared := map[string]bool{}
	matchedAny := false
	var out []Backup
	for _, node := range nodes {
		var storages []string
		sts, err := c.nodeStorages(ctx, node, "backup")
		if err != nil {
			return nil, err
		}
		matched := false
		for _, s := range sts {
			if opts.Storage != "" && s.Storage != opts.Storage {
				continue
			}
			matched = true
			if !s.has("backup") {
				if opts.Storage != "" {
					return nil, fmt.Errorf("storage %s on node %s does not hold backups (content: %s)", s.Storage, node, s.Content)
				}
				continue
			}
			if int(s.Enabled) == 0 {
				if opts.Storage != "" {
					return nil, fmt.Errorf("storage %s is disabled on node %s", s.Storage, node)
				}
				continue
			}
			if int(s.Active) == 0 {
				return nil, newKindError(ErrOffline, nil, "storage %s on node %s is not active (offline or unreachable); its backups cannot be listed", s.Storage, node)
			}
			if int(s.Shared) != 0 {
				if seenShared[s.Storage] {
					continue
				}
				seenShared[s.Storage] = true
			}
			storages = append(storages, s.Storage)
		}
		matchedAny = matchedAny || matched
		for _, st := range storages {
			bs, err := c.listContent(ctx, node, st, opts.VMID)
			if err != nil {
				return nil, err
			}
			out = append(out, bs...)
		}
	}
	if opts.Storage != "" && !matchedAny {
		return nil, newKindError(ErrNotFound, nil, "storage %s is not available on node(s) %s (or holds no backups)", opts.Storage, strings.Join(nodes, ", "))
	}
	sortBackups(out)
	return out, nil
}

// UpdateBackup sets the notes and/or protection of a backup (PUT on the
// volume). nil leaves a value alone; notes "" clears them.
func (c *Client) UpdateBackup(ctx context.Context, node, volid string, notes *string, protected *bool) error {
	storage, _, err := ParseVolID(volid)
	if err != nil {
		return err
	}
	if notes == nil && protected == nil {
		return nil
	}
	if node == "" {
		bn, _ := ParseBackupVolID(volid)
		if node, err = c.resolveBackupNode(ctx, bn); err != nil {
			return fmt.Errorf("updating backup %s: %w", volid, err)
		}
	}
	body := map[string]any{}
	if notes != nil {
		body["notes"] = *notes
	}
	if protected != nil {
		body["protected"] = *protected
	}
	if err := c.put(ctx, segPath("nodes", node, "storage", storage, "content", volid), body, nil); err != nil {
		return fmt.Errorf("updating backup %s: %w", volid, err)
	}
	return nil
}

// DeleteBackup removes a backup and waits for PVE's imgdel task. A backup that
// is already gone is success. A protected backup is refused with an error for
// which IsProtected is true.
func (c *Client) DeleteBackup(ctx context.Context, node, volid string, progress ProgressFunc) error {
	storage, volname, err := ParseVolID(volid)
	if err != nil {
		return err
	}
	cur, err := c.GetBackup(ctx, node, volid)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting backup %s: %w", volid, err)
	}
	node = cur.Node
	if cur.Protected {
		return protectedError(volid, nil)
	}
	var upid string
	if err := c.del(ctx, segPath("nodes", node, "storage", storage, "content", volid), nil, &upid); err != nil {
		if IsNotFound(err) {
			return nil
		}
		if IsProtected(err) {
			return protectedError(volid, err)
		}
		return fmt.Errorf("deleting backup %s: %w", volid, err)
	}
	if upid == "" {
		return nil // finished synchronously
	}
	if _, err := c.waitTask(ctx, upid, progress); err != nil {
		if IsProtected(err) {
			return protectedError(volid, err)
		}
		var te *TaskError
		if errors.As(err, &te) && strings.Contains(te.ExitStatus, "does not exist") && strings.Contains(te.ExitStatus, volname) {
			return nil
		}
		return fmt.Errorf("deleting backup %s: %w", volid, err)
	}
	return nil
}

func protectedError(volid string, cause error) error {
	return newKindError(ErrProtected, cause, "backup %s is protected, so PVE refuses to delete it: set protected = false and apply first, then delete it", volid)
}
