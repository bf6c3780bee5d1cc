package pvesim

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

var reUPIDTest = regexp.MustCompile(`^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$`)

func gpxClient(t *testing.T, s *Sim, token string) *proxmox.Client {
	t.Helper()
	id, secret, _ := strings.Cut(token, "=")
	return proxmox.NewClient(s.Endpoint()+"api2/json", proxmox.WithAPIToken(id, secret), proxmox.WithHTTPClient(httpClient(t, s)))
}

func TestGoProxmoxBasics(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	ctx := context.Background()
	c := gpxClient(t, s, s.APIToken())
	v, err := c.Version(ctx)
	if err != nil || v.Release != "9.2" || v.Version != "9.2.11" {
		t.Fatalf("version: %+v %v", v, err)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[0].Node != "pve1" || nodes[0].Status != "online" {
		t.Fatalf("nodes: %+v %v", nodes, err)
	}
	cl, err := c.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := cl.Resources(ctx, "vm")
	if err != nil {
		t.Fatal(err)
	}
	found := map[uint64]string{}
	for _, r := range rs {
		found[r.VMID] = r.Node + "/" + r.Type + "/" + r.Status
	}
	if found[100] != "pve1/lxc/running" || found[101] != "pve2/lxc/stopped" || found[200] != "pve1/qemu/stopped" {
		t.Fatalf("resources: %v", found)
	}
	node := (&proxmox.Node{}).New(c, "pve1")
	sts, err := node.Storages(ctx)
	if err != nil || len(sts) != 4 {
		t.Fatalf("storages: %v %v", sts, err)
	}
	ct, err := node.Container(ctx, 100)
	if err != nil || ct.Status != "running" || ct.Name != "web" {
		t.Fatalf("container: %+v %v", ct, err)
	}
	vm, err := node.VirtualMachine(ctx, 200)
	if err != nil || vm.Status != "stopped" {
		t.Fatalf("vm: %+v %v", vm, err)
	}
	// wrong node: PVE's "Configuration file ... does not exist", visible in the status line
	_, err = (&proxmox.Node{}).New(c, "pve2").Container(ctx, 100)
	if err == nil || err.Error() != "500 Configuration file 'nodes/pve2/lxc/100.conf' does not exist" {
		t.Fatalf("wrong node: %v", err)
	}
}

func TestGoProxmoxBackupRestore(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	ctx := context.Background()
	c := gpxClient(t, s, s.APIToken())
	node := (&proxmox.Node{}).New(c, "pve1")
	task, err := node.Vzdump(ctx, &proxmox.VirtualMachineBackupOptions{VMID: 100, Storage: "local", Compress: "gzip", Mode: "snapshot", NotesTemplate: "{{guestname}}", Protected: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if !reUPIDTest.MatchString(string(task.UPID)) || task.User != "root@pam!terraform" {
		t.Fatalf("upid %q", task.UPID)
	}
	if err := task.Wait(ctx, 20*time.Millisecond, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if !task.IsSuccessful || task.ExitStatus != "OK" {
		t.Fatalf("task: %+v", task)
	}
	lg, err := task.Log(ctx, 0, 0)
	if err != nil || len(lg) < 10 || lg[len(lg)-1] != "TASK OK" {
		t.Fatalf("log: %v %v", lg, err)
	}
	st, err := node.Storage(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	content, err := st.GetContent(ctx)
	if err != nil || len(content) != 1 {
		t.Fatalf("content: %v %v", content, err)
	}
	bk := content[0]
	if !strings.HasPrefix(bk.Volid, "local:backup/vzdump-lxc-100-") || bk.Format != "tar.gz" || bk.VMID != 100 || bk.Notes != "web" || bk.Size == 0 {
		t.Fatalf("backup entry: %+v", bk)
	}
	// single volume info
	b, err := st.Backup(ctx, strings.TrimPrefix(bk.Volid, "local:backup/"))
	if err != nil || b.Format != "raw" || b.Notes != "web" || uint64(b.Size) != bk.Size {
		t.Fatalf("backup info: %+v %v", b, err)
	}
	// extractconfig
	cfg, err := node.VzdumpExtractConfig(ctx, bk.Volid)
	if err != nil || cfg == nil {
		t.Fatalf("extractconfig: %v", err)
	}
	// restore needs a stopped CT: go-proxmox surfaces PVE's reason phrase
	_, err = node.NewContainer(ctx, 100, proxmox.ContainerOption{Name: "ostemplate", Value: bk.Volid}, proxmox.ContainerOption{Name: "restore", Value: 1},
		proxmox.ContainerOption{Name: "force", Value: 1}, proxmox.ContainerOption{Name: "storage", Value: "local-lvm"})
	if err == nil || err.Error() != "500 can't overwrite running container" {
		t.Fatalf("restore running: %v", err)
	}
	ct, err := node.Container(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := ct.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop.Wait(ctx, 20*time.Millisecond, 10*time.Second); err != nil || !stop.IsSuccessful {
		t.Fatalf("stop: %+v %v", stop, err)
	}
	rt, err := node.NewContainer(ctx, 100, proxmox.ContainerOption{Name: "ostemplate", Value: bk.Volid}, proxmox.ContainerOption{Name: "restore", Value: 1},
		proxmox.ContainerOption{Name: "force", Value: 1}, proxmox.ContainerOption{Name: "storage", Value: "local-lvm"}, proxmox.ContainerOption{Name: "start", Value: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rt.Type != "vzrestore" || rt.ID != "100" {
		t.Fatalf("restore task %+v", rt)
	}
	if err := rt.Wait(ctx, 20*time.Millisecond, 20*time.Second); err != nil || !rt.IsSuccessful {
		t.Fatalf("restore: %+v %v", rt, err)
	}
	if g, _ := s.GuestState(100); g.Status != "running" || g.Lock != "" {
		t.Fatalf("after restore: %+v", g)
	}
	// delete: protected → task fails; unprotect → ok
	dt, err := st.DeleteContent(ctx, bk.Volid)
	if err != nil {
		t.Fatal(err)
	}
	_ = dt.Wait(ctx, 20*time.Millisecond, 10*time.Second)
	if !dt.IsFailed || !strings.HasPrefix(dt.ExitStatus, "cannot remove protected volume 'backup/vzdump-lxc-100-") {
		t.Fatalf("delete protected: %+v", dt)
	}
	f := false
	if err := st.UpdateContent(ctx, bk.Volid, &proxmox.StorageContentUpdateOptions{Protected: &f}); err != nil {
		t.Fatal(err)
	}
	dt, err = st.DeleteContent(ctx, bk.Volid)
	if err != nil {
		t.Fatal(err)
	}
	if err := dt.Wait(ctx, 20*time.Millisecond, 10*time.Second); err != nil || !dt.IsSuccessful {
		t.Fatalf("delete: %+v %v", dt, err)
	}
	if content, _ := st.GetContent(ctx); len(content) != 0 {
		t.Fatalf("still listed: %v", content)
	}
}

func TestGoProxmoxWrongNodeOK(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	c := gpxClient(t, s, s.APIToken())
	task, err := (&proxmox.Node{}).New(c, "pve2").Vzdump(context.Background(), &proxmox.VirtualMachineBackupOptions{VMID: 100, Storage: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if task.UPID != "OK" {
		t.Fatalf("want OK reply, got %q", task.UPID)
	}
	// read-only token: 403 is ErrNotAuthorized in go-proxmox
	ro := gpxClient(t, s, s.ReadOnlyToken())
	_, err = (&proxmox.Node{}).New(ro, "pve1").Vzdump(context.Background(), &proxmox.VirtualMachineBackupOptions{VMID: 100, Storage: "local"})
	if !proxmox.IsNotAuthorized(err) {
		t.Fatalf("ro vzdump: %v", err)
	}
}
