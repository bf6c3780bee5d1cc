package pve

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/hashicorp/terraform-plugin-log/tflog"
)

// privilegeNeed is one privilege check PVE will make: any one of the
// privileges on the path, and what it is for.
type privilegeNeed struct {
	path  string
	anyOf []string
	why   string
}

// checkPrivileges asks PVE for the caller's effective privileges on each
// path (GET /access/permissions) and fails, naming everything that is
// missing, before an operation that PVE would refuse halfway. When PVE does
// not answer that question (an older version, a proxy), the check is left
// to PVE itself.
func (c *Client) checkPrivileges(ctx context.Context, needs []privilegeNeed) error {
	have := map[string]map[string]bool{}
	var missing []string
	for _, n := range needs {
		privs, ok := have[n.path]
		if !ok {
			var err error
			if privs, err = c.privilegesOn(ctx, n.path); err != nil {
				// not fatal: PVE checks again when it acts
				tflog.Debug(ctx, "privileges not checked in advance", map[string]any{"path": n.path, "error": err.Error()})
				return nil //nolint:nilerr // the check is advisory
			}
			have[n.path] = privs
		}
		if !hasAny(privs, n.anyOf) {
			missing = append(missing, fmt.Sprintf("%s on %s (%s)", strings.Join(n.anyOf, " or "), n.path, n.why))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	who := c.tokenID
	if who == "" {
		who = c.username
	}
	return newKindError(ErrForbidden, nil, "%s lacks privileges that this needs, so nothing was changed: %s", who, strings.Join(missing, "; "))
}

func hasAny(privs map[string]bool, anyOf []string) bool {
	for _, p := range anyOf {
		if privs[p] {
			return true
		}
	}
	return false
}

// privilegesOn reads the caller's effective privileges on one ACL path.
func (c *Client) privilegesOn(ctx context.Context, path string) (map[string]bool, error) {
	var out map[string]map[string]any
	if err := c.get(ctx, "/access/permissions", url.Values{"path": {path}}, &out); err != nil {
		return nil, err
	}
	privs := map[string]bool{}
	for p := range out[path] {
		privs[p] = true
	}
	return privs, nil
}

// restorePrivilegeNeeds are the checks PVE makes along a restore: vzdump for
// the safety backup, the power calls, and the restore itself
// (pve-container and qemu-server create_vm: VM.Allocate, or VM.Backup when
// the guest exists, plus Datastore.AllocateSpace on the target storage).
func (r *restoreRun) restorePrivilegeNeeds(plan *restorePlan) []privilegeNeed {
	vm := fmt.Sprintf("/vms/%d", r.opts.VMID)
	var needs []privilegeNeed
	if r.existed {
		needs = append(needs, privilegeNeed{vm, []string{"VM.Allocate", "VM.Backup"}, "to restore over the guest"})
		if plan.safetyStorage != "" {
			needs = append(needs,
				privilegeNeed{vm, []string{"VM.Backup"}, "for the safety backup"},
				privilegeNeed{"/storage/" + plan.safetyStorage, []string{"Datastore.AllocateSpace"}, "for the safety backup"})
		}
		running := plan.current != nil && plan.current.Status != "stopped"
		if running || (r.opts.Start != nil && *r.opts.Start) {
			needs = append(needs, privilegeNeed{vm, []string{"VM.PowerMgmt"}, "to shut the guest down and start it again"})
		}
	} else {
		needs = append(needs, privilegeNeed{vm, []string{"VM.Allocate"}, "to create the guest"})
		if r.opts.Start != nil && *r.opts.Start {
			needs = append(needs, privilegeNeed{vm, []string{"VM.PowerMgmt"}, "to start the guest"})
		}
	}
	if plan.targetStorage != "" {
		needs = append(needs, privilegeNeed{"/storage/" + plan.targetStorage, []string{"Datastore.AllocateSpace"}, "for the restored disks"})
	}
	sort.SliceStable(needs, func(i, j int) bool { return needs[i].path < needs[j].path })
	return needs
}
