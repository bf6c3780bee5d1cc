package pve

import "context"

// standaloneClusterName is what vzdump's {{cluster}} becomes on a node that
// is in no cluster.
const standaloneClusterName = "standalone node"

// ClusterName is the corosync cluster name as vzdump's notes template shows
// it ({{cluster}}), from GET /cluster/status (needs Sys.Audit on /).
func (c *Client) ClusterName(ctx context.Context) (string, error) {
	var items []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := c.get(ctx, "/cluster/status", nil, &items); err != nil {
		return "", err
	}
	for _, it := range items {
		if it.Type == "cluster" && it.Name != "" {
			return it.Name, nil
		}
	}
	return standaloneClusterName, nil
}
