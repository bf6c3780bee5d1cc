package pve

import (
	"context"
	"fmt"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

// Prune marks, as PVE's dry run reports them.
const (
	MarkKeep      = "keep"
	MarkRemove    = "remove"
	MarkProtected = "protected"
	MarkRenamed   = "renamed" // not the standard vzdump name: PVE never prunes it
)

// RetentionKeys are PVE's keep-* options in the order PVE applies them.
var RetentionKeys = []string{"keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly"}

// Retention is a prune-backups policy. Nil Keep and KeepAll false mean "the
// storage's own prune-backups".
type Retention struct {
	KeepAll bool
	Keep    map[string]int // RetentionKeys -> N
}

// String is the property string PVE takes ("" = the storage's own).
func (r Retention) String() string {
	if r.KeepAll {
		return "keep-all=1"
	}
	var parts []string
	for _, k := range RetentionKeys {
		if n, ok := r.Keep[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		}
	}
	return strings.Join(parts, ",")
}

// PruneOptions select the backups and the policy of a dry run or a prune.
type PruneOptions struct {
	Node      string
	Storage   string
	VMID      int    // 0 = every guest's backups
	GuestType string // "" = both
	Policy    Retention
}

// PruneEntry is one backup with its mark.
type PruneEntry struct {
	VolID     string
	CreatedAt time.Time
	GuestType string // lxc, qemu, openvz or unknown
	VMID      int    // 0 when the name has none
	Mark      string
}

type pruneWire struct {
	VolID string              `json:"volid"`
	CTime proxmox.StringOrInt `json:"ctime"`
	Type  string              `json:"type"`
	VMID  proxmox.StringOrInt `json:"vmid"`
	Mark  string              `json:"mark"`
}

func (o PruneOptions) query() url.Values {
	q := url.Values{}
	if p := o.Policy.String(); p != "" {
		q.Set("prune-backups", p)
	}
	if o.VMID > 0 {
		q.Set("vmid", strconv.Itoa(o.VMID))
	}
	if o.GuestType != "" {
		q.Set("type", o.GuestType)
	}
	return q
}

// PruneDryRun asks PVE which backups a prune would keep and remove (GET
// .../prunebackups). The list is sorted by volid.
func (c *Client) PruneDryRun(ctx context.Context, o PruneOptions) ([]PruneEntry, error) {
	var raw []pruneWire
	if err := c.get(ctx, segPath("nodes", o.Node, "storage", o.Storage, "prunebackups"), o.query(), &raw); err != nil {
		return nil, fmt.Errorf("prune dry run on storage %s (node %s): %w", o.Storage, o.Node, err)
	}
	out := make([]PruneEntry, 0, len(raw))
	for _, r := range raw {
		out = append(out, PruneEntry{VolID: r.VolID, CreatedAt: time.Unix(int64(r.CTime), 0).UTC(), GuestType: r.Type, VMID: int(r.VMID), Mark: r.Mark})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VolID < out[j].VolID })
	return out, nil
}

// Prune runs PVE's prune (DELETE .../prunebackups) and returns the volids its
// task log says it removed, sorted.
func (c *Client) Prune(ctx context.Context, o PruneOptions, progress ProgressFunc) ([]string, error) {
	var upid string
	if err := c.del(ctx, segPath("nodes", o.Node, "storage", o.Storage, "prunebackups"), o.query(), &upid); err != nil {
		return nil, fmt.Errorf("pruning storage %s (node %s): %w", o.Storage, o.Node, err)
	}
	task, err := c.waitTask(ctx, upid, progress)
	if err != nil {
		return nil, fmt.Errorf("pruning storage %s (node %s): %w", o.Storage, o.Node, err)
	}
	return removedVolIDs(task.Lines), nil
}

func removedVolIDs(lines []string) []string {
	var out []string
	for _, l := range lines {
		l = strings.TrimPrefix(strings.TrimSpace(l), "INFO: ")
		if v, ok := strings.CutPrefix(l, "removing backup '"); ok {
			out = append(out, strings.TrimSuffix(v, "'"))
		}
	}
	sort.Strings(out)
	return out
}

// PruneNode picks the node for a prune: the given one, else the guest's
// node when a vmid is given and the guest exists, else the first online
// node that has the storage.
func (c *Client) PruneNode(ctx context.Context, node, storage string, vmid int) (string, error) {
	if node != "" {
		return node, nil
	}
	if vmid > 0 {
		if g, err := c.FindGuest(ctx, vmid); err == nil {
			return g.Node, nil
		}
	}
	nodes, err := c.onlineNodes(ctx)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		sts, err := c.nodeStorages(ctx, n, "backup")
		if err != nil {
			continue
		}
		for _, s := range sts {
			if s.Storage == storage {
				return n, nil
			}
		}
	}
	return "", fmt.Errorf("no online node has storage %s with backup content: set node", storage)
}

// PruneChangedError: the dry run at apply time no longer matches the plan.
type PruneChangedError struct {
	Storage  string
	Extra    []string // now marked remove, not in the plan
	NowKept  []string // in the plan, but no longer marked remove
	Removed  []string // what was removed before the difference was found (PVE's prune only)
	Unwanted []string // removed by PVE's prune although not planned
}

func (e *PruneChangedError) Error() string {
	var b strings.Builder
	if len(e.Unwanted) > 0 {
		fmt.Fprintf(&b, "PVE's prune on storage %s removed backups the plan did not list: %s (the backups changed between the check and the prune)",
			e.Storage, strings.Join(e.Unwanted, ", "))
		return b.String()
	}
	fmt.Fprintf(&b, "the backups on storage %s changed since the plan, so nothing was deleted", e.Storage)
	if len(e.Extra) > 0 {
		fmt.Fprintf(&b, "; now also marked remove: %s", strings.Join(e.Extra, ", "))
	}
	if len(e.NowKept) > 0 {
		fmt.Fprintf(&b, "; no longer marked remove: %s", strings.Join(e.NowKept, ", "))
	}
	b.WriteString(". Run terraform plan again to see the new list.")
	return b.String()
}

// PruneDeletions is the deletion list of a dry run: the volids marked
// remove, minus held ones (sorted), and the held ones the policy would have
// removed.
func PruneDeletions(entries []PruneEntry, held map[string]bool) (deletions, heldBack []string) {
	for _, e := range entries {
		if e.Mark != MarkRemove {
			continue
		}
		if held[e.VolID] {
			heldBack = append(heldBack, e.VolID)
		} else {
			deletions = append(deletions, e.VolID)
		}
	}
	sort.Strings(deletions)
	sort.Strings(heldBack)
	return deletions, heldBack
}

// PruneExactly deletes exactly the planned volids. It runs the dry run
// again first and deletes nothing when it would now delete more, or when a
// planned backup is no longer marked remove (a planned backup that is gone
// already counts as deleted). When nothing is held back it lets PVE prune
// (DELETE .../prunebackups); otherwise it deletes the planned backups one by
// one, so held backups survive. It returns the planned list.
func (c *Client) PruneExactly(ctx context.Context, o PruneOptions, planned []string, held map[string]bool, progress ProgressFunc) ([]string, error) {
	entries, err := c.PruneDryRun(ctx, o)
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{}
	for _, e := range entries {
		listed[e.VolID] = true
	}
	now, heldBack := PruneDeletions(entries, held)
	nowSet := map[string]bool{}
	for _, v := range now {
		nowSet[v] = true
	}
	want := map[string]bool{}
	for _, v := range planned {
		want[v] = true
	}
	chg := &PruneChangedError{Storage: o.Storage}
	for _, v := range now {
		if !want[v] {
			chg.Extra = append(chg.Extra, v)
		}
	}
	var todo []string
	for _, v := range planned {
		switch {
		case nowSet[v]:
			todo = append(todo, v)
		case listed[v]:
			chg.NowKept = append(chg.NowKept, v)
		}
	}
	if len(chg.Extra) > 0 || len(chg.NowKept) > 0 {
		return nil, chg
	}
	if len(todo) == 0 {
		return planned, nil
	}
	if len(heldBack) == 0 {
		removed, err := c.Prune(ctx, o, progress)
		if err != nil {
			return nil, err
		}
		for _, v := range removed {
			if !want[v] {
				chg.Unwanted = append(chg.Unwanted, v)
			}
		}
		if len(chg.Unwanted) > 0 {
			chg.Removed = removed
			return nil, chg
		}
		return planned, nil
	}
	for _, v := range todo {
		msg := fmt.Sprintf("removing backup '%s'", v)
		tflog.Info(ctx, msg, map[string]any{"storage": o.Storage, "node": o.Node})
		if progress != nil {
			progress(msg)
		}
		if err := c.DeleteBackup(ctx, o.Node, v, progress); err != nil {
			return nil, err
		}
	}
	return planned, nil
}
