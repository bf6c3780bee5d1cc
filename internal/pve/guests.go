package pve

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

type clusterResource struct {
	ID      string              `json:"id"`
	Type    string              `json:"type"`
	VMID    proxmox.StringOrInt `json:"vmid"`
	Node    string              `json:"node"`
	Name    string              `json:"name"`
	Status  string              `json:"status"`
	Lock    string              `json:"lock"`
	Storage string              `json:"storage"`
	Content string              `json:"content"`
}

// clusterLayout is GET /cluster/resources (every type) from the answer shared
// for a few seconds: where guests are and which storages each node has
// enabled, for plan checks and the backups that follow them; never a guest's
// status or lock.
func (c *Client) clusterLayout(ctx context.Context) (clusterResources, error) {
	var res clusterResources
	if err := c.getShared(ctx, "/cluster/resources", url.Values{}, &res); err != nil {
		return nil, err
	}
	return res, nil
}

type clusterResources []clusterResource

// storageHolds reports whether the layout shows storage enabled on node with
// content among its content types.
func (rs clusterResources) storageHolds(node, storage, content string) bool {
	for _, r := range rs {
		if r.Type == "storage" && r.Node == node && r.Storage == storage {
			return storageEntry{Content: r.Content}.has(content)
		}
	}
	return false
}

// FindGuest looks the vmid up in GET /cluster/resources?type=vm. A vmid that
// does not exist gives an error for which IsNotFound is true.
func (c *Client) FindGuest(ctx context.Context, vmid int) (*Guest, error) {
	return findGuest(vmid, func() (clusterResources, error) {
		var res clusterResources
		err := c.get(ctx, "/cluster/resources", url.Values{"type": {"vm"}}, &res)
		return res, err
	})
}

// locateGuest is FindGuest from the shared layout (clusterLayout): for the
// node and type of a guest about to be backed up (plan checks, vzdump), not
// for its status or whether a vmid is free.
func (c *Client) locateGuest(ctx context.Context, vmid int) (*Guest, error) {
	return findGuest(vmid, func() (clusterResources, error) { return c.clusterLayout(ctx) })
}

func findGuest(vmid int, list func() (clusterResources, error)) (*Guest, error) {
	if vmid <= 0 {
		return nil, fmt.Errorf("invalid vmid %d", vmid)
	}
	res, err := list()
	if err != nil {
		return nil, fmt.Errorf("looking up guest %d in the cluster: %w", vmid, err)
	}
	for _, r := range res {
		if int(r.VMID) != vmid || (r.Type != GuestTypeLXC && r.Type != GuestTypeQEMU) {
			continue
		}
		return &Guest{VMID: vmid, Node: r.Node, Type: r.Type, Name: r.Name, Status: r.Status, Lock: r.Lock}, nil
	}
	return nil, newKindError(ErrNotFound, nil, "guest %d does not exist in the cluster (or the credentials lack VM.Audit on /vms/%d)", vmid, vmid)
}

type guestStatusAnswer struct {
	VMID   proxmox.StringOrInt `json:"vmid"`
	Name   string              `json:"name"`
	Status string              `json:"status"`
	Lock   string              `json:"lock"`
}

// GuestStatus reads GET /nodes/{node}/{lxc|qemu}/{vmid}/status/current.
// guestType "" looks the type (and node, when "") up in the cluster first.
func (c *Client) GuestStatus(ctx context.Context, node string, vmid int, guestType string) (*Guest, error) {
	if guestType == "" || node == "" {
		g, err := c.FindGuest(ctx, vmid)
		if err != nil {
			return nil, err
		}
		if guestType == "" {
			guestType = g.Type
		}
		if node == "" {
			node = g.Node
		}
	}
	if guestType != GuestTypeLXC && guestType != GuestTypeQEMU {
		return nil, fmt.Errorf("invalid guest type %q (expected lxc or qemu)", guestType)
	}
	var st guestStatusAnswer
	if err := c.get(ctx, segPath("nodes", node, guestType, strconv.Itoa(vmid), "status", "current"), nil, &st); err != nil {
		if IsNotFound(err) {
			return nil, newKindError(ErrNotFound, err, "guest %d (%s) does not exist on node %s", vmid, guestType, node)
		}
		return nil, fmt.Errorf("reading the status of guest %d on node %s: %w", vmid, node, err)
	}
	return &Guest{VMID: vmid, Node: node, Type: guestType, Name: st.Name, Status: st.Status, Lock: st.Lock}, nil
}

// guestConfig reads GET /nodes/{node}/{type}/{vmid}/config as raw strings.
func (c *Client) guestConfig(ctx context.Context, node string, vmid int, guestType string) (map[string]string, error) {
	var raw map[string]any
	if err := c.get(ctx, segPath("nodes", node, guestType, strconv.Itoa(vmid), "config"), nil, &raw); err != nil {
		return nil, fmt.Errorf("reading the configuration of guest %d on node %s: %w", vmid, node, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch x := v.(type) {
		case string:
			out[k] = x
		case float64:
			out[k] = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			if x {
				out[k] = "1"
			} else {
				out[k] = "0"
			}
		case nil:
		default:
			out[k] = fmt.Sprint(x)
		}
	}
	return out, nil
}

// powerAction posts status/{start,stop,shutdown} and waits for the task.
func (c *Client) powerAction(ctx context.Context, node string, vmid int, guestType, action string, body map[string]any, progress ProgressFunc) error {
	var upid string
	if err := c.post(ctx, segPath("nodes", node, guestType, strconv.Itoa(vmid), "status", action), body, &upid); err != nil {
		return fmt.Errorf("%s of guest %d on node %s: %w", action, vmid, node, err)
	}
	_, err := c.waitTask(ctx, upid, progress)
	var we *WaitError
	if errors.As(err, &we) {
		// A power task takes seconds: let it end, so that whoever acts next
		// sees the guest settled rather than changing under it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cleanupTimeout)
		_, _ = c.waitTask(cctx, upid, progress)
		cancel()
	}
	if err != nil {
		return fmt.Errorf("%s of guest %d on node %s: %w", action, vmid, node, err)
	}
	return nil
}

// waitStatus polls status/current until the guest reaches want or the timeout ends.
func (c *Client) waitStatus(ctx context.Context, node string, vmid int, guestType, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	poll := c.newPoller()
	last := ""
	for {
		g, err := c.GuestStatus(ctx, node, vmid, guestType)
		if err == nil {
			last = g.Status
			if g.Status == want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("guest %d on node %s is %s, not %s, after %s", vmid, node, last, want, timeout)
		}
		if err := poll.wait(ctx); err != nil {
			return err
		}
	}
}

type nodeEntry struct {
	Node   string `json:"node"`
	Status string `json:"status"`
}

// onlineNodes lists the nodes whose status is online, sorted by name.
func (c *Client) onlineNodes(ctx context.Context) ([]string, error) {
	var nodes []nodeEntry
	if err := c.get(ctx, "/nodes", nil, &nodes); err != nil {
		return nil, fmt.Errorf("listing the cluster nodes: %w", err)
	}
	var out []string
	for _, n := range nodes {
		if n.Status == "online" {
			out = append(out, n.Node)
		}
	}
	sort.Strings(out)
	return out, nil
}

type storageEntry struct {
	Storage string              `json:"storage"`
	Type    string              `json:"type"`
	Content string              `json:"content"`
	Shared  proxmox.StringOrInt `json:"shared"`
	Enabled proxmox.StringOrInt `json:"enabled"`
	Active  proxmox.StringOrInt `json:"active"`
}

func (s storageEntry) has(content string) bool {
	for _, c := range strings.Split(s.Content, ",") {
		if strings.TrimSpace(c) == content {
			return true
		}
	}
	return false
}

// storageConfigOf lists a node's storages (GET /nodes/{node}/storage) from
// an answer shared for a few seconds: which storages exist, their content
// types and whether they are enabled, not whether they are active now.
func (c *Client) storageConfigOf(ctx context.Context, node string) ([]storageEntry, error) {
	var st []storageEntry
	if err := c.getShared(ctx, segPath("nodes", node, "storage"), url.Values{}, &st); err != nil {
		return nil, fmt.Errorf("listing the storages of node %s: %w", node, err)
	}
	sort.Slice(st, func(i, j int) bool { return st[i].Storage < st[j].Storage })
	return st, nil
}

// nodeStorages lists GET /nodes/{node}/storage?content=X.
func (c *Client) nodeStorages(ctx context.Context, node, content string) ([]storageEntry, error) {
	q := url.Values{}
	if content != "" {
		q.Set("content", content)
	}
	var st []storageEntry
	if err := c.get(ctx, segPath("nodes", node, "storage"), q, &st); err != nil {
		return nil, fmt.Errorf("listing the storages of node %s: %w", node, err)
	}
	sort.Slice(st, func(i, j int) bool { return st[i].Storage < st[j].Storage })
	return st, nil
}
