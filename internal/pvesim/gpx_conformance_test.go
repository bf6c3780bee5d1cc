package pvesim

import (
	"context"
	"fmt"
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

// go-proxmox's view of a failed QEMU restore: the POST succeeds, the task
// fails with PVE's unprefixed error, and the VM is still there afterwards
// with the temporary config and no disk.
func TestGoProxmoxFailedQemuRestore(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	ctx := context.Background()
	c := gpxClient(t, s, s.APIToken())
	node := (&proxmox.Node{}).New(c, "pve1")
	bt, err := node.Vzdump(ctx, &proxmox.VirtualMachineBackupOptions{VMID: 200, Storage: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if err := bt.Wait(ctx, 20*time.Millisecond, 20*time.Second); err != nil || !bt.IsSuccessful {
		t.Fatalf("backup: %+v %v", bt, err)
	}
	st, err := node.Storage(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	content, err := st.GetContent(ctx)
	if err != nil || len(content) != 1 {
		t.Fatalf("content: %v %v", content, err)
	}
	volid := content[0].Volid
	// a missing archive is an HTTP error, and no VM appears
	_, err = node.NewVirtualMachine(ctx, 250, proxmox.VirtualMachineOption{Name: "archive", Value: "local:backup/vzdump-qemu-200-2020_01_01-00_00_00.vma"})
	if err == nil || err.Error() != "500 can't find file 'local:backup/vzdump-qemu-200-2020_01_01-00_00_00.vma'" {
		t.Fatalf("missing archive: %v", err)
	}
	if _, err := node.VirtualMachine(ctx, 250); err == nil {
		t.Fatal("VM 250 exists")
	}
	s.FailTask("qmrestore", 200, "vma_queue_write: write error - No space left on device")
	task, err := node.NewVirtualMachine(ctx, 200, proxmox.VirtualMachineOption{Name: "archive", Value: volid}, proxmox.VirtualMachineOption{Name: "force", Value: 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = task.Wait(ctx, 20*time.Millisecond, 20*time.Second)
	if !task.IsFailed || task.ExitStatus != "vma_queue_write: write error - No space left on device" {
		t.Fatalf("restore task: %+v", task)
	}
	lg, err := task.Log(ctx, 0, 0)
	if err != nil || len(lg) < 3 || lg[len(lg)-2] != "error before or during data restore, some or all disks were not completely restored. VM 200 state is NOT cleaned up." {
		t.Fatalf("log: %v %v", lg, err)
	}
	vm, err := node.VirtualMachine(ctx, 200)
	if err != nil {
		t.Fatalf("VM 200 after the failed restore: %v", err)
	}
	if vm.Status != "stopped" || len(vm.VirtualMachineConfig.MergeDisks()) != 0 || fmt.Sprint(vm.VirtualMachineConfig.Memory) != "128" || vm.Lock != "" {
		t.Fatalf("VM 200: status %s disks %v memory %v lock %q", vm.Status, vm.VirtualMachineConfig.MergeDisks(), vm.VirtualMachineConfig.Memory, vm.Lock)
	}
	// a restore into a new vmid that fails before the data leaves an empty VM
	task, err = node.NewVirtualMachine(ctx, 300, proxmox.VirtualMachineOption{Name: "archive", Value: volid}, proxmox.VirtualMachineOption{Name: "storage", Value: "local"})
	if err != nil {
		t.Fatal(err)
	}
	_ = task.Wait(ctx, 20*time.Millisecond, 20*time.Second)
	if !task.IsFailed || task.ExitStatus != "Content type 'images' is not available on storage 'local'" {
		t.Fatalf("new vmid: %+v", task)
	}
	if vm, err := node.VirtualMachine(ctx, 300); err != nil || len(vm.VirtualMachineConfig.MergeDisks()) != 0 || vm.Name != "VM 300" {
		t.Fatalf("VM 300: %+v %v", vm, err)
	}
}

// go-proxmox's view of a failed LXC force restore: the container is gone.
func TestGoProxmoxFailedLXCRestore(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	ctx := context.Background()
	c := gpxClient(t, s, s.APIToken())
	node := (&proxmox.Node{}).New(c, "pve2")
	bt, err := node.Vzdump(ctx, &proxmox.VirtualMachineBackupOptions{VMID: 101, Storage: "nas"})
	if err != nil {
		t.Fatal(err)
	}
	if err := bt.Wait(ctx, 20*time.Millisecond, 20*time.Second); err != nil || !bt.IsSuccessful {
		t.Fatalf("backup: %+v %v", bt, err)
	}
	st, _ := node.Storage(ctx, "nas")
	content, err := st.GetContent(ctx)
	if err != nil || len(content) != 1 {
		t.Fatalf("content: %v %v", content, err)
	}
	s.FailTask("vzrestore", 101, "tar: Unexpected EOF in archive")
	task, err := node.NewContainer(ctx, 101, proxmox.ContainerOption{Name: "ostemplate", Value: content[0].Volid}, proxmox.ContainerOption{Name: "restore", Value: 1},
		proxmox.ContainerOption{Name: "force", Value: 1}, proxmox.ContainerOption{Name: "storage", Value: "local-lvm"})
	if err != nil {
		t.Fatal(err)
	}
	_ = task.Wait(ctx, 20*time.Millisecond, 20*time.Second)
	if !task.IsFailed || task.ExitStatus != "unable to restore CT 101 - tar: Unexpected EOF in archive" {
		t.Fatalf("restore task: %+v", task)
	}
	_, err = node.Container(ctx, 101)
	if err == nil || err.Error() != "500 Configuration file 'nodes/pve2/lxc/101.conf' does not exist" {
		t.Fatalf("CT 101 after the failed restore: %v", err)
	}
	cl, err := c.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := cl.Resources(ctx, "vm")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.VMID == 101 {
			t.Fatalf("CT 101 still listed: %+v", r)
		}
	}
}

// go-proxmox's view of power calls that PVE refuses before forking, and of
// a task that fails after it.
func TestGoProxmoxPowerRefusals(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	ctx := context.Background()
	c := gpxClient(t, s, s.APIToken())
	ct, err := (&proxmox.Node{}).New(c, "pve2").Container(ctx, 101)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ct.Stop(ctx); err == nil || err.Error() != "500 CT 101 not running" {
		t.Fatalf("stop stopped CT: %v", err)
	}
	if _, err := ct.Reboot(ctx); err == nil || err.Error() != "500 VM 101 not running" {
		t.Fatalf("reboot stopped CT: %v", err)
	}
	vm, err := (&proxmox.Node{}).New(c, "pve1").VirtualMachine(ctx, 200)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Reboot(ctx); err == nil || err.Error() != "500 VM 200 not running" {
		t.Fatalf("reboot stopped VM: %v", err)
	}
	s.SetGuestLock(200, "backup")
	task, err := vm.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = task.Wait(ctx, 20*time.Millisecond, 10*time.Second)
	if !task.IsFailed || task.ExitStatus != "VM is locked (backup)" {
		t.Fatalf("start locked VM: %+v", task)
	}
	task, err = vm.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx, 20*time.Millisecond, 10*time.Second); err != nil || !task.IsSuccessful {
		t.Fatalf("stop stopped, locked VM: %+v %v", task, err)
	}
}
