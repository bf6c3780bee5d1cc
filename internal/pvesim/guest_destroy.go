package pvesim

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// guestDeleteSchema: containers take force and purge (no skiplock); VMs take
// skiplock and purge (no force). Both take destroy-unreferenced-disks.
func guestDeleteSchema(typ string) schema {
	sc := schema{"purge": pdB(), "destroy-unreferenced-disks": pdB()}
	if typ == "lxc" {
		sc["force"] = pdB()
	} else {
		sc["skiplock"] = pdB()
	}
	return sc
}

// hGuestDelete is DELETE /nodes/{node}/{lxc|qemu}/{vmid}
// (REFERENCE.md 10.5): early checks answer at once, the rest is a
// vzdestroy / qmdestroy worker that removes the disks and then the config.
// VM.Allocate on /vms/{vmid} is the route's permission, checked first.
func (s *Sim) hGuestDelete(rq *request, typ string) (any, error) {
	skiplock := rq.p.boolv("skiplock", false)
	if skiplock && rq.auth.authid != "root@pam" {
		return nil, paramErr1("skiplock", "Only root may use this option.")
	}
	g, err := s.guestFor(rq, typ)
	if err != nil {
		return nil, err
	}
	force, purge := rq.p.boolv("force", false), rq.p.boolv("purge", false)
	early := func() error {
		s.mu.Lock()
		running, prot, lock, gone := g.status != "stopped", g.protected(), g.lock(), s.guests[g.vmid] != g
		s.mu.Unlock()
		if gone {
			return fmt.Errorf("Configuration file '%s' does not exist", s.confPath(g, g.node)) //nolint:staticcheck // PVE's exact message
		}
		if prot {
			return fmt.Errorf("can't remove %s %d - protection mode enabled", g.kind(), g.vmid)
		}
		if typ == "lxc" {
			if lock != "" {
				return fmt.Errorf("CT is locked (%s)", lock)
			}
			if running && !force {
				return fmt.Errorf("unable to destroy CT %d - container is running", g.vmid)
			}
		} else if running {
			return fmt.Errorf("VM %d is running - destroy failed", g.vmid)
		}
		return nil
	}
	if err := early(); err != nil {
		return nil, err500("%s", err)
	}
	ttype := "vzdestroy"
	if typ == "qemu" {
		ttype = "qmdestroy"
	}
	t := s.newTask(rq.vars["node"], ttype, strconv.Itoa(g.vmid), rq.auth.authid)
	s.runTask(t, func(t *task) error {
		if err := early(); err != nil { // again, under the config lock
			return err
		}
		s.mu.Lock()
		running, lock := g.status != "stopped", g.lock()
		s.mu.Unlock()
		if typ == "qemu" && lock != "" && !skiplock && lock != "suspended" {
			return fmt.Errorf("VM is locked (%s)", lock)
		}
		if running { // only a container with force gets here
			t.warn("forced to stop CT %d before destroying!", g.vmid)
			s.mu.Lock()
			g.status = "stopped"
			s.mu.Unlock()
		}
		if msg, ok := s.takeTaskFault(ttype, g.vmid); ok {
			return fmt.Errorf("%s", msg)
		}
		if err := t.sleep(20 * time.Millisecond); err != nil {
			return err
		}
		s.mu.Lock()
		g.setLock("destroyed") // the replacement config while the volumes go
		s.mu.Unlock()
		if typ == "lxc" {
			_ = os.RemoveAll(s.GuestRootfs(g.vmid))
		} else {
			_ = os.Remove(s.GuestDisk(g.vmid))
		}
		t.log("  Logical volume \"vm-%d-disk-0\" successfully removed.", g.vmid)
		if purge {
			t.log("purging %s %d from related configurations..", g.kind(), g.vmid)
		}
		s.dropGuest(g)
		return nil
	})
	return t.upid, nil
}
