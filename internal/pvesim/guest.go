package pvesim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

type guest struct {
	vmid    int
	typ     string // lxc | qemu
	node    string
	status  string // running | stopped | paused
	started time.Time
	conf    *guestConf
}

func (g *guest) kind() string { // "CT" or "VM" as in PVE messages
	if g.typ == "lxc" {
		return "CT"
	}
	return "VM"
}

func (g *guest) name() string {
	if g.typ == "lxc" {
		if h := g.conf.get("hostname"); h != "" {
			return h
		}
		return fmt.Sprintf("CT%d", g.vmid)
	}
	if n := g.conf.get("name"); n != "" {
		return n
	}
	return fmt.Sprintf("VM %d", g.vmid)
}

func (g *guest) lock() string { return g.conf.get("lock") }

func (g *guest) setLock(l string) {
	if l == "" {
		g.conf.del("lock")
	} else {
		g.conf.set("lock", l)
	}
}

func (g *guest) protected() bool { return g.conf.get("protection") == "1" }

// guestConf is a PVE guest config: description comment lines plus keys.
type guestConf struct {
	desc []string
	kv   map[string]string
}

func newConf() *guestConf { return &guestConf{kv: map[string]string{}} }

func (c *guestConf) get(k string) string { return c.kv[k] }
func (c *guestConf) set(k, v string)     { c.kv[k] = v }
func (c *guestConf) del(k string)        { delete(c.kv, k) } //nolint:unparam // generic accessor, like get and set

func (c *guestConf) clone() *guestConf {
	n := newConf()
	n.desc = append([]string(nil), c.desc...)
	for k, v := range c.kv {
		n.kv[k] = v
	}
	return n
}

// render writes the config the way PVE writes it: description as '#'
// lines first, then "key: value" lines sorted by key (lock first).
func (c *guestConf) render() string {
	var b strings.Builder
	for _, d := range c.desc {
		b.WriteString("#" + d + "\n")
	}
	keys := make([]string, 0, len(c.kv))
	for k := range c.kv {
		if k != "lock" && k != "description" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if l, ok := c.kv["lock"]; ok {
		b.WriteString("lock: " + l + "\n")
	}
	for _, k := range keys {
		b.WriteString(k + ": " + c.kv[k] + "\n")
	}
	return b.String()
}

// parseConf reads a config text; [snapshot] and [pending] sections are dropped.
func parseConf(text string) *guestConf {
	c := newConf()
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "[") {
			break
		}
		if strings.HasPrefix(line, "#") {
			c.desc = append(c.desc, line[1:])
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			continue
		}
		c.kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return c
}

// description joins the '#' lines (as PVE's API returns `description`).
func (c *guestConf) description() string {
	if len(c.desc) == 0 {
		return ""
	}
	return strings.Join(c.desc, "\n") + "\n"
}

func (c *guestConf) setDescription(d string) {
	c.desc = nil
	d = strings.TrimRight(d, "\n")
	if d == "" {
		return
	}
	c.desc = strings.Split(d, "\n")
}

func macFor(vmid, n int) string {
	b := deterministicBytes(vmid*31+n, 3)
	return fmt.Sprintf("BC:24:11:%02X:%02X:%02X", b[0], b[1], b[2])
}

func defaultGuestConf(gc GuestConfig, stor string) *guestConf {
	c := newConf()
	if gc.Type == "lxc" {
		c.set("arch", "amd64")
		c.set("cores", "1")
		c.set("memory", "512")
		c.set("swap", "512")
		c.set("ostype", "debian")
		c.set("unprivileged", "1")
		c.set("net0", fmt.Sprintf("name=eth0,bridge=vmbr0,hwaddr=%s,ip=dhcp,type=veth", macFor(gc.VMID, 0)))
		c.set("rootfs", fmt.Sprintf("%s:vm-%d-disk-0,size=8G", stor, gc.VMID))
		if gc.Name != "" {
			c.set("hostname", gc.Name)
		}
	} else {
		size := gc.DiskSize
		if size <= 0 {
			size = 8 * 1024
		}
		c.set("boot", "order=scsi0;net0")
		c.set("cores", "1")
		c.set("memory", "2048")
		c.set("ostype", "l26")
		c.set("scsihw", "virtio-scsi-single")
		c.set("net0", fmt.Sprintf("virtio=%s,bridge=vmbr0", macFor(gc.VMID, 0)))
		c.set("scsi0", fmt.Sprintf("%s:vm-%d-disk-0,iothread=1,size=%dK", stor, gc.VMID, (size+1023)/1024))
		c.set("smbios1", "uuid="+uuidFor(gc.VMID))
		c.set("vmgenid", uuidFor(gc.VMID+7))
		if gc.Name != "" {
			c.set("name", gc.Name)
		}
	}
	if gc.Tags != "" {
		c.set("tags", gc.Tags)
	}
	if gc.Protection {
		c.set("protection", "1")
	}
	if gc.Lock != "" {
		c.set("lock", gc.Lock)
	}
	for k, v := range gc.Config {
		if k == "description" {
			c.setDescription(v)
			continue
		}
		c.set(k, v)
	}
	return c
}

func uuidFor(seed int) string {
	b := deterministicBytes(seed, 16)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
