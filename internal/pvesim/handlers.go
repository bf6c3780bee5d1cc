package pvesim

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim/internal/archive"
)

func registerRoutes(add func(method, tmpl string, sc schema, h handlerFunc) *route) {
	// h binds a method expression such as (*Sim).hVersion to the request's simulator.
	h := func(f func(*Sim, *request) (any, error)) handlerFunc {
		return func(rq *request) (any, error) { return f(rq.s, rq) }
	}
	add("GET", "/version", nil, h((*Sim).hVersion))
	add("POST", "/access/ticket", schema{
		"username": pdS().required(), "password": pdS().required(), "realm": pdS(), "otp": pdS(),
		"path": pdS(), "privs": pdS(), "tfa-challenge": pdS(), "new-format": pdB(),
	}, h((*Sim).hTicketPost))
	add("GET", "/access/ticket", nil, func(*request) (any, error) { return nil, nil })
	add("GET", "/access/permissions", schema{"userid": pdS(), "path": pdS()}, h((*Sim).hPermissions))
	add("GET", "/cluster/resources", schema{"type": pdE("vm", "storage", "node", "sdn")}, h((*Sim).hClusterResources))
	add("GET", "/cluster/status", nil, h((*Sim).hClusterStatus))
	add("GET", "/cluster/nextid", schema{"vmid": pdVMID(false)}, h((*Sim).hNextID))
	add("GET", "/nodes", nil, h((*Sim).hNodes))
	add("GET", "/nodes/{node}/status", nil, h((*Sim).hNodeStatus)).perm = permAll("/nodes/{node}", "Sys.Audit")
	add("GET", "/nodes/{node}/version", nil, h((*Sim).hVersion))
	add("GET", "/nodes/{node}/storage", schema{"content": pdS(), "enabled": pdB(), "storage": pdStorage(), "target": pdS(), "format": pdB()}, h((*Sim).hStorageIndex))
	add("GET", "/nodes/{node}/storage/{storage}/status", nil, h((*Sim).hStorageStatus)).perm = permAny("/storage/{storage}", "Datastore.Audit", "Datastore.AllocateSpace")
	add("GET", "/nodes/{node}/storage/{storage}/content", schema{"content": pdE(contentEnum...), "vmid": pdVMID(false)}, h((*Sim).hContentList)).perm = permAny("/storage/{storage}", "Datastore.Audit", "Datastore.AllocateSpace")
	add("GET", "/nodes/{node}/storage/{storage}/content/{volume}", nil, h((*Sim).hContentGet))
	add("PUT", "/nodes/{node}/storage/{storage}/content/{volume}", schema{"notes": pdS(), "protected": pdB()}, h((*Sim).hContentPut))
	add("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}", schema{"delay": pdI(1, 30)}, h((*Sim).hContentDelete))
	add("POST", "/nodes/{node}/vzdump", vzdumpSchema(), h((*Sim).hVzdump))
	add("GET", "/nodes/{node}/vzdump/extractconfig", schema{"volume": pdS().required()}, h((*Sim).hExtractConfig))
	add("GET", "/nodes/{node}/vzdump/defaults", schema{"storage": pdStorage()}, h((*Sim).hVzdumpDefaults))
	add("GET", "/nodes/{node}/tasks", schema{"start": pdUint(), "limit": pdUint(), "userfilter": pdS(), "typefilter": pdS(),
		"vmid": pdVMID(false), "errors": pdB(), "source": pdE("archive", "active", "all"), "since": pdUint(), "until": pdUint(), "statusfilter": pdS()}, h((*Sim).hTaskList))
	add("GET", "/nodes/{node}/tasks/{upid}/status", nil, h((*Sim).hTaskStatus))
	add("GET", "/nodes/{node}/tasks/{upid}/log", schema{"start": pdUint(), "limit": pdUint(), "download": pdB()}, h((*Sim).hTaskLog))
	add("GET", "/nodes/{node}/tasks/{upid}", nil, func(rq *request) (any, error) {
		// upid_index is a plain directory index: it looks at nothing
		return []map[string]string{{"name": "log"}, {"name": "status"}}, nil
	})
	add("DELETE", "/nodes/{node}/tasks/{upid}", nil, h((*Sim).hTaskStop))
	for _, typ := range []string{"lxc", "qemu"} {
		add("GET", "/nodes/{node}/"+typ, schema{"full": pdB()}, func(rq *request) (any, error) { return rq.s.hGuestList(rq, typ) })
		add("GET", "/nodes/{node}/"+typ+"/{vmid}", nil, func(rq *request) (any, error) {
			if _, err := rq.s.guestFor(rq, typ); err != nil {
				return nil, err
			}
			return []map[string]string{{"subdir": "config"}, {"subdir": "status"}}, nil
		})
		add("GET", "/nodes/{node}/"+typ+"/{vmid}/status", nil, func(rq *request) (any, error) {
			if _, err := rq.s.guestFor(rq, typ); err != nil {
				return nil, err
			}
			return []map[string]string{{"subdir": "current"}, {"subdir": "start"}, {"subdir": "stop"}, {"subdir": "shutdown"}}, nil
		})
		add("GET", "/nodes/{node}/"+typ+"/{vmid}/status/current", nil, func(rq *request) (any, error) { return rq.s.hGuestCurrent(rq, typ) }).perm = permAll("/vms/{vmid}", "VM.Audit")
		add("GET", "/nodes/{node}/"+typ+"/{vmid}/config", schema{"current": pdB(), "snapshot": pdS()}, func(rq *request) (any, error) { return rq.s.hGuestConfig(rq, typ) }).perm = permAll("/vms/{vmid}", "VM.Audit")
		add("DELETE", "/nodes/{node}/"+typ+"/{vmid}", guestDeleteSchema(typ),
			func(rq *request) (any, error) { return rq.s.hGuestDelete(rq, typ) }).perm = permAll("/vms/{vmid}", "VM.Allocate")
		for _, action := range []string{"start", "stop", "shutdown", "suspend", "resume", "reboot"} {
			sc := schema{"skiplock": pdB(), "timeout": pdUint(), "forceStop": pdB(), "overrule-shutdown": pdB(), "debug": pdB(), "keepActive": pdB(), "machine": pdS(), "migratedfrom": pdS(), "todisk": pdB()}
			add("POST", "/nodes/{node}/"+typ+"/{vmid}/status/"+action, sc, func(rq *request) (any, error) { return rq.s.hGuestPower(rq, typ, action) }).perm = permAll("/vms/{vmid}", "VM.PowerMgmt")
		}
	}
	add("POST", "/nodes/{node}/lxc", lxcCreateSchema(), h((*Sim).hLXCCreate))
	add("POST", "/nodes/{node}/qemu", qemuCreateSchema(), h((*Sim).hQemuCreate))
	registerJobRoutes(add)
	add("GET", "/nodes/{node}/storage/{storage}/prunebackups", pruneSchema(), h((*Sim).hPruneDryRun))
	add("DELETE", "/nodes/{node}/storage/{storage}/prunebackups", pruneSchema(), h((*Sim).hPruneDelete))
}

// permAll and permAny are declarative checks on a path template whose
// {vars} are filled from the URI as given (before the schema checks them).
func permAll(tmpl string, privs ...string) func(*request) error {
	return func(rq *request) error { return rq.s.checkAll(rq.auth, fillPath(tmpl, rq.vars), privs...) }
}

func permAny(tmpl string, privs ...string) func(*request) error {
	return func(rq *request) error { return rq.s.checkAny(rq.auth, fillPath(tmpl, rq.vars), privs...) }
}

func fillPath(tmpl string, vars map[string]string) string {
	for k, v := range vars {
		tmpl = strings.ReplaceAll(tmpl, "{"+k+"}", v)
	}
	return tmpl
}

func (s *Sim) version() string {
	if s.cfg.Version != "" {
		return s.cfg.Version
	}
	return "9.2.11"
}

func (s *Sim) hVersion(rq *request) (any, error) {
	v := s.version()
	parts := strings.Split(v, ".")
	rel := v
	if len(parts) >= 2 {
		rel = parts[0] + "." + parts[1]
	}
	return map[string]any{"version": v, "release": rel, "repoid": "5a5fd2e1"}, nil
}

func (s *Sim) hNextID(rq *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rq.p.has("vmid") {
		id := int(rq.p.intv("vmid", 0))
		if s.guests[id] != nil {
			return nil, paramErr1("vmid", fmt.Sprintf("VM %d already exists", id))
		}
		return strconv.Itoa(id), nil
	}
	for id := 100; ; id++ {
		if s.guests[id] == nil {
			return strconv.Itoa(id), nil
		}
	}
}

func (s *Sim) hClusterStatus(rq *request) (any, error) {
	if err := s.checkAll(rq.auth, "/", "Sys.Audit"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	if s.cfg.ClusterName != "" { // a standalone node has no cluster entry
		out = append(out, map[string]any{"type": "cluster", "id": "cluster", "name": s.cfg.ClusterName, "nodes": len(s.nodeOrder), "quorate": 1, "version": 3})
	}
	for i, n := range s.nodeOrder {
		nd := s.nodes[n]
		out = append(out, map[string]any{"type": "node", "id": "node/" + n, "name": n, "nodeid": i + 1, "online": b2i(!nd.offline),
			"ip": fmt.Sprintf("127.0.0.%d", i+1), "local": b2i(i == 0), "level": ""})
	}
	return out, nil
}

func (s *Sim) nodeEntry(nd *node) map[string]any {
	e := map[string]any{"node": nd.name, "id": "node/" + nd.name, "type": "node", "level": "", "ssl_fingerprint": "",
		"maxcpu": nd.maxcpu, "maxmem": nd.maxmem, "maxdisk": int64(100 << 30)}
	if nd.offline {
		e["status"] = "offline"
	} else {
		e["status"] = "online"
		e["cpu"] = 0.02
		e["mem"] = nd.maxmem / 8
		e["disk"] = int64(12 << 30)
		e["uptime"] = int64(time.Since(nd.boot).Seconds())
	}
	return e
}

func (s *Sim) hNodes(rq *request) (any, error) {
	s.mu.Lock()
	var nodes []*node
	for _, n := range s.nodeOrder {
		nodes = append(nodes, s.nodes[n])
	}
	s.mu.Unlock()
	out := []map[string]any{}
	for _, nd := range nodes {
		e := s.nodeEntry(nd)
		if !s.can(rq.auth, "/nodes/"+nd.name, "Sys.Audit") {
			for _, k := range []string{"cpu", "maxcpu", "mem", "maxmem", "disk", "maxdisk", "uptime"} {
				delete(e, k)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func (s *Sim) hNodeStatus(rq *request) (any, error) {
	n := rq.vars["node"]
	if err := s.checkAll(rq.auth, "/nodes/"+n, "Sys.Audit"); err != nil {
		return nil, err
	}
	nd := s.nodeByName(n)
	return map[string]any{
		"uptime": int64(time.Since(nd.boot).Seconds()), "cpu": 0.02, "wait": 0, "loadavg": []string{"0.10", "0.12", "0.09"},
		"kversion":   "Linux 6.14.11-4-pve #1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4",
		"pveversion": "pve-manager/" + s.version() + "/5a5fd2e1df7a10b4",
		"cpuinfo":    map[string]any{"cpus": nd.maxcpu, "cores": nd.maxcpu, "sockets": 1, "model": "pvesim virtual CPU", "mhz": "2400.000"},
		"memory":     map[string]any{"total": nd.maxmem, "used": nd.maxmem / 8, "free": nd.maxmem - nd.maxmem/8},
		"swap":       map[string]any{"total": 0, "used": 0, "free": 0},
		"rootfs":     map[string]any{"total": int64(100 << 30), "used": int64(12 << 30), "avail": int64(88 << 30), "free": int64(88 << 30)},
		"boot-info":  map[string]any{"mode": "efi", "secureboot": 0},
		"current-kernel": map[string]any{"sysname": "Linux", "release": "6.14.11-4-pve", "machine": "x86_64",
			"version": "#1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4"},
	}, nil
}

// hVzdumpDefaults is vzdump's "defaults" method without an /etc/vzdump.conf:
// the schema defaults, the storage (default 'local') checked with
// storage_info (so a storage without backup content is an error here), its
// prune-backups and, for callers with Sys.Audit on the node, its dump dir.
func (s *Sim) hVzdumpDefaults(rq *request) (any, error) {
	id := rq.p.str("storage")
	if id == "" {
		id = "local"
	}
	if err := s.checkAny(rq.auth, "/storage/"+id, "Datastore.Audit", "Datastore.AllocateSpace"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	st := s.storages[id]
	s.mu.Unlock()
	if st == nil {
		return nil, err500("storage '%s' does not exist", id)
	}
	if !st.content["backup"] {
		return nil, err500("can't use storage '%s' for backups - wrong content type", id)
	}
	res := map[string]any{"storage": id, "mode": "snapshot", "compress": "0", "ionice": 7, "lockwait": 180, "stopwait": 10,
		"stdexcludes": 1, "prune-backups": "keep-all=1", "remove": 1, "zstd": 1, "pigz": 0, "notification-mode": "auto",
		"mailnotification": "always", "all": 0, "quiet": 0, "stop": 0, "bwlimit": 0}
	if st.cfg.PruneBackups != "" {
		res["prune-backups"] = st.cfg.PruneBackups
	}
	if s.can(rq.auth, "/nodes/"+rq.vars["node"], "Sys.Audit") {
		if st.cfg.Type != "pbs" {
			res["dumpdir"] = filepath.Join(s.storagePath(st, rq.vars["node"]), "dump")
		}
	} else {
		delete(res, "ionice")
	}
	return res, nil
}

// guestEntry builds the status fields shared by lists and cluster resources (lock held).
func (s *Sim) guestEntry(g *guest) map[string]any {
	maxmem, _ := strconv.ParseInt(g.conf.get("memory"), 10, 64)
	if maxmem == 0 {
		maxmem = 512
	}
	maxmem <<= 20
	cpus, _ := strconv.Atoi(g.conf.get("cores"))
	if cpus == 0 {
		cpus = 1
	}
	e := map[string]any{"vmid": g.vmid, "name": g.name(), "status": g.status, "maxmem": maxmem, "maxdisk": s.guestDiskSize(g),
		"cpu": 0, "mem": 0, "disk": 0, "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0, "uptime": 0, "type": g.typ}
	if g.typ == "lxc" {
		e["cpus"] = cpus
		swap, _ := strconv.ParseInt(g.conf.get("swap"), 10, 64)
		e["maxswap"] = swap << 20
		e["swap"] = 0
	} else {
		e["cpus"] = cpus
	}
	if g.status == "running" || g.status == "paused" {
		e["uptime"] = int64(time.Since(g.started).Seconds())
		e["cpu"] = 0.01
		e["mem"] = maxmem / 4
		e["pid"] = 10000 + g.vmid
		e["netin"], e["netout"] = 123456, 65432
		if g.typ == "lxc" {
			e["disk"] = archive.RootfsSize(s.GuestRootfs(g.vmid), nil)
		}
	}
	if l := g.lock(); l != "" {
		e["lock"] = l
	}
	if t := g.conf.get("tags"); t != "" {
		e["tags"] = t
	}
	if g.conf.get("template") == "1" {
		e["template"] = 1
	}
	return e
}

// hClusterResources is GET /cluster/resources: guests, nodes and storages
// the caller may audit.
func (s *Sim) hClusterResources(rq *request) (any, error) {
	typ := rq.p.str("type")
	out := []map[string]any{}
	s.mu.Lock()
	var gs []*guest
	for _, g := range s.guests {
		gs = append(gs, g)
	}
	nodes := []*node{}
	for _, n := range s.nodeOrder {
		nodes = append(nodes, s.nodes[n])
	}
	s.mu.Unlock()
	sort.Slice(gs, func(i, j int) bool { return gs[i].vmid < gs[j].vmid })
	if typ == "" || typ == "vm" {
		for _, g := range gs {
			if s.can(rq.auth, fmt.Sprintf("/vms/%d", g.vmid), "VM.Audit") {
				out = append(out, s.clusterGuestEntry(g))
			}
		}
	}
	if typ == "" || typ == "node" {
		for _, nd := range nodes {
			if s.can(rq.auth, "/nodes/"+nd.name, "Sys.Audit") {
				out = append(out, s.nodeEntry(nd))
			}
		}
	}
	if typ == "" || typ == "storage" {
		out = append(out, s.clusterStorageEntries(rq.auth, nodes)...)
	}
	return out, nil
}

// clusterGuestEntry is a guest's row of /cluster/resources: a paused guest
// reads running, and a guest on an offline node unknown.
func (s *Sim) clusterGuestEntry(g *guest) map[string]any {
	s.mu.Lock()
	e := s.guestEntry(g)
	nd := s.nodes[g.node]
	s.mu.Unlock()
	delete(e, "pid")
	delete(e, "cpus")
	delete(e, "maxswap")
	delete(e, "swap")
	e["id"] = fmt.Sprintf("%s/%d", g.typ, g.vmid)
	e["node"] = g.node
	e["maxcpu"] = 1
	if c, err := strconv.Atoi(g.conf.get("cores")); err == nil {
		e["maxcpu"] = c
	}
	if _, ok := e["template"]; !ok {
		e["template"] = 0
	}
	if g.status == "paused" {
		e["status"] = "running"
	}
	if nd.offline {
		e["status"] = "unknown"
	}
	if g.typ == "qemu" {
		e["memhost"] = e["mem"]
	}
	return e
}

// clusterStorageEntries lists each storage once per node it is on, for
// callers with Datastore.Audit or Datastore.AllocateSpace on it.
func (s *Sim) clusterStorageEntries(a *authInfo, nodes []*node) []map[string]any {
	s.mu.Lock()
	ids := append([]string(nil), s.storageOrder...)
	s.mu.Unlock()
	var out []map[string]any
	// PVE walks the storages the caller may audit (Datastore.Audit only, not
	// AllocateSpace as the node's storage index accepts) and, for each, the
	// nodes it is enabled on: a disabled storage is not listed.
	for _, id := range ids {
		s.mu.Lock()
		st := s.storages[id]
		s.mu.Unlock()
		if st.cfg.Disabled || !s.can(a, "/storage/"+id, "Datastore.Audit") {
			continue
		}
		for _, nd := range nodes {
			if !st.onNode(nd.name) {
				continue
			}
			e := map[string]any{"id": "storage/" + nd.name + "/" + id, "type": "storage", "storage": id, "node": nd.name,
				"plugintype": st.cfg.Type, "content": strings.Join(st.cfg.Content, ","), "shared": b2i(st.cfg.Shared), "status": "available"}
			if nd.offline {
				e["status"] = "unknown"
			} else {
				total, used, _ := s.storageUsage(st, nd.name)
				e["maxdisk"], e["disk"] = total, used
			}
			out = append(out, e)
		}
	}
	return out
}

func (s *Sim) confPath(g *guest, n string) string {
	if g.typ == "lxc" {
		return fmt.Sprintf("nodes/%s/lxc/%d.conf", n, g.vmid)
	}
	return fmt.Sprintf("nodes/%s/qemu-server/%d.conf", n, g.vmid)
}

// guestFor finds a guest of typ on the request's node or returns PVE's error.
func (s *Sim) guestFor(rq *request, typ string) (*guest, error) {
	vmid := int(rq.p.intv("vmid", 0))
	n := rq.vars["node"]
	s.mu.Lock()
	g := s.guests[vmid]
	s.mu.Unlock()
	if g == nil || g.node != n || g.typ != typ {
		if typ == "lxc" {
			return nil, err500("Configuration file 'nodes/%s/lxc/%d.conf' does not exist", n, vmid)
		}
		return nil, err500("Configuration file 'nodes/%s/qemu-server/%d.conf' does not exist", n, vmid)
	}
	return g, nil
}

func (s *Sim) hGuestList(rq *request, typ string) (any, error) {
	n := rq.vars["node"]
	s.mu.Lock()
	var gs []*guest
	for _, g := range s.guests {
		if g.node == n && g.typ == typ {
			gs = append(gs, g)
		}
	}
	s.mu.Unlock()
	sort.Slice(gs, func(i, j int) bool { return gs[i].vmid < gs[j].vmid })
	out := []map[string]any{}
	for _, g := range gs {
		if !s.can(rq.auth, fmt.Sprintf("/vms/%d", g.vmid), "VM.Audit") {
			continue
		}
		out = append(out, s.guestView(g))
	}
	return out, nil
}

// guestView is a guest as the per-node guest endpoints show it: QEMU
// entries carry no "type", and a paused VM counts as running (its
// "qmpstatus" tells paused apart).
func (s *Sim) guestView(g *guest) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.guestEntry(g)
	if g.typ == "qemu" {
		delete(e, "type")
		if g.status == "paused" {
			e["status"] = "running"
		}
	}
	return e
}

func (s *Sim) hGuestCurrent(rq *request, typ string) (any, error) {
	if err := s.checkAll(rq.auth, "/vms/"+rq.vars["vmid"], "VM.Audit"); err != nil {
		return nil, err
	}
	g, err := s.guestFor(rq, typ)
	if err != nil {
		return nil, err
	}
	e := s.guestView(g)
	e["ha"] = map[string]any{"managed": 0}
	if typ == "qemu" {
		e["qmpstatus"] = g.status
		if g.status != "stopped" {
			e["running-machine"] = "pc-i440fx-9.2+pve1"
			e["running-qemu"] = "9.2.0"
		}
		e["agent"] = 0
	}
	return e, nil
}

func (s *Sim) hGuestConfig(rq *request, typ string) (any, error) {
	if err := s.checkAll(rq.auth, "/vms/"+rq.vars["vmid"], "VM.Audit"); err != nil {
		return nil, err
	}
	g, err := s.guestFor(rq, typ)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{"digest": fmt.Sprintf("%x", deterministicBytes(len(g.conf.render())+g.vmid, 20))}
	for k, v := range g.conf.kv {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && !strings.HasPrefix(v, "0") || v == "0" {
			out[k] = n
		} else {
			out[k] = v
		}
	}
	if d := g.conf.description(); d != "" {
		out["description"] = d
	}
	return out, nil
}

// hGuestPower is POST …/{lxc|qemu}/{vmid}/status/{action}: the synchronous
// "running" checks, then a power task (a failing one for an absent guest).
func (s *Sim) hGuestPower(rq *request, typ, action string) (any, error) {
	if err := s.checkAll(rq.auth, "/vms/"+rq.vars["vmid"], "VM.PowerMgmt"); err != nil {
		return nil, err
	}
	if rq.p.has("skiplock") && rq.auth.authid != "root@pam" {
		return nil, paramErr1("skiplock", "Only root may use this option.")
	}
	// The power endpoints do not load the config before forking: only the
	// "running" checks below are synchronous, so a guest that is not on this
	// node mostly shows up as a failed task (see REFERENCE.md section 5).
	vmid := int(rq.p.intv("vmid", 0))
	n := rq.vars["node"]
	s.mu.Lock()
	g := s.guests[vmid]
	if g != nil && (g.node != n || g.typ != typ) {
		g = nil
	}
	status := "stopped"
	if g != nil {
		status = g.status
	}
	s.mu.Unlock()
	if err := checkPowerPrecondition(typ, action, vmid, n, g != nil, status, rq.p.boolv("forceStop", false)); err != nil {
		return nil, err
	}
	ttype := map[string]string{"lxc": "vz", "qemu": "qm"}[typ] + action
	t := s.newTask(n, ttype, strconv.Itoa(vmid), rq.auth.authid)
	if g == nil {
		s.runTask(t, func(t *task) error { return absentGuestPowerTask(t, typ, action, vmid, n) })
		return t.upid, nil
	}
	skip := rq.p.boolv("skiplock", false)
	s.runTask(t, func(t *task) error { return s.guestPowerTask(t, g, action, skip) })
	return t.upid, nil
}

// checkPowerPrecondition is the check_running test each power endpoint
// makes before it forks.
func checkPowerPrecondition(typ, action string, vmid int, n string, exists bool, status string, forceStop bool) error {
	running := status != "stopped"
	if typ == "lxc" {
		switch action {
		case "start", "resume":
			if running {
				return err500("CT %d already running", vmid)
			}
		case "stop", "shutdown", "suspend":
			if !running {
				return err500("CT %d not running", vmid)
			}
		case "reboot":
			if !running {
				return err500("VM %d not running", vmid) // sic: pve-container's vm_reboot says "VM"
			}
		}
		return nil
	}
	switch action {
	case "reboot", "suspend", "resume":
		// check_running asserts the config exists on this node first
		if !exists {
			return err500("unable to find configuration file for VM %d on node '%s'", vmid, n)
		}
		if !running {
			return err500("VM %d not running", vmid)
		}
	case "shutdown":
		if status == "paused" && !forceStop {
			return err500("VM is paused - cannot shutdown")
		}
	}
	return nil
}

// absentGuestPowerTask is the power task of a guest that is not on this
// node: it fails where the worker first loads the config.
func absentGuestPowerTask(t *task, typ, action string, vmid int, n string) error {
	if err := t.sleep(20 * time.Millisecond); err != nil {
		return err
	}
	switch {
	case typ == "lxc" && action == "resume":
		return fmt.Errorf("command 'lxc-checkpoint -n %d -r --foreground -D /var/lib/vz/dump' failed: exit code 1", vmid)
	case typ == "lxc":
		return fmt.Errorf("Configuration file 'nodes/%s/lxc/%d.conf' does not exist", n, vmid) //nolint:staticcheck // PVE's exact message
	case action == "start":
		return fmt.Errorf("Configuration file 'nodes/%s/qemu-server/%d.conf' does not exist", n, vmid) //nolint:staticcheck // PVE's exact message
	default:
		return fmt.Errorf("unable to find configuration file for VM %d on node '%s'", vmid, n)
	}
}

// guestPowerTask is the power worker: after the task's delay it checks the
// config lock and changes the guest's status.
func (s *Sim) guestPowerTask(t *task, g *guest, action string, skipLock bool) error {
	d := 50 * time.Millisecond
	if action == "shutdown" {
		d = 150 * time.Millisecond
	}
	if err := t.sleep(d); err != nil {
		return err
	}
	// A FailTask fault on a power task ("vzshutdown", ...) leaves the
	// guest as it was, like a guest that ignores the shutdown request.
	if msg, ok := s.takeTaskFault(t.typ, g.vmid); ok {
		return errors.New(msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.guests[g.vmid] != g {
		return fmt.Errorf("Configuration file '%s' does not exist", s.confPath(g, g.node)) //nolint:staticcheck // PVE's exact message
	}
	done, err := checkPowerLock(g, action, skipLock)
	if done || err != nil {
		return err
	}
	return applyPowerAction(t, g, action)
}

// checkPowerLock applies the config lock to a power action (called with
// s.mu held). done means the action has nothing (more) to do.
func checkPowerLock(g *guest, action string, skipLock bool) (done bool, err error) {
	l := g.lock()
	if g.typ == "qemu" {
		switch {
		case (action == "stop" || action == "shutdown") && g.status == "stopped":
			return true, nil // _do_vm_stop: nothing to do, checked before the lock
		case action == "resume" && g.status == "running":
			return true, nil // vm_resume: "job done", checked before the lock
		case action == "resume" && l == "backup":
			l = ""
		}
	}
	if l == "" || skipLock || l == "mounted" && g.typ == "lxc" {
		return false, nil
	}
	// vm_start: a running VM with a backup lock is resumed in the
	// existing QEMU instance (vm_resume; a no-op when not paused)
	if g.typ == "qemu" && action == "start" && l == "backup" && (g.status == "paused" || g.status == "running") {
		g.status = "running"
		return true, nil
	}
	return false, fmt.Errorf("%s is locked (%s)", g.kind(), l)
}

// applyPowerAction changes the guest's status (called with s.mu held).
func applyPowerAction(t *task, g *guest, action string) error {
	switch action {
	case "start":
		if g.status == "running" {
			return fmt.Errorf("%s %d already running", g.kind(), g.vmid)
		}
		g.status, g.started = "running", time.Now()
		if g.typ == "qemu" {
			t.log("generating cloud-init ISO")
		}
	case "stop", "shutdown":
		if g.status == "stopped" && g.typ == "lxc" {
			return fmt.Errorf("CT %d not running", g.vmid)
		}
		g.status = "stopped"
	case "reboot":
		g.started = time.Now()
	case "suspend":
		if g.status == "running" {
			g.status = "paused"
		}
	case "resume":
		if g.status == "paused" {
			g.status = "running"
		}
	}
	return nil
}
