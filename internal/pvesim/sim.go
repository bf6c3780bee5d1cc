// Package pvesim is a Proxmox VE API simulator for the calls the proxmoxapp
// provider uses (backup, restore, storage content, tasks, guest power). It
// speaks PVE's wire format (HTTPS, /api2/json, reason phrases, token and
// ticket auth) and does real work on disk: vzdump writes archives of the
// guests' files and restores extract them again.
package pvesim

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim/internal/certs"
)

// Options configure Start.
type Options struct {
	DataDir      string        // required; created if missing; CA/cert reused if present
	Listen       string        // default "127.0.0.1:0"
	Config       *Config       // nil → DefaultConfig()
	Throughput   int64         // simulated bytes/second for archive/restore work; 0 → 64 MiB/s
	TaskOverhead time.Duration // fixed extra time per vzdump/restore task; 0 → none
	Logf         func(format string, args ...any)
}

// GuestInfo is a snapshot of a guest's state.
type GuestInfo struct {
	VMID   int
	Node   string
	Type   string // lxc | qemu
	Name   string
	Status string // running | stopped | paused
	Lock   string
}

// Sim is a running simulator.
type Sim struct {
	opts     Options
	cfg      *Config
	loc      *time.Location
	dataDir  string
	srv      *http.Server
	ln       net.Listener
	endpoint string
	caPEM    []byte

	throughput atomic.Int64
	crashed    atomic.Bool // Crash: running tasks end without a TASK line
	overhead   time.Duration
	ticketLife atomic.Int64 // nanoseconds

	mu           sync.Mutex
	nodes        map[string]*node
	nodeOrder    []string
	storages     map[string]*storage
	storageOrder []string
	guests       map[int]*guest
	users        map[string]*user
	tokens       map[string]*token
	ticketKey    []byte
	tasks        map[string]*task
	taskList     []*task
	nextPID      uint32
	faults       faultState
	counters     map[string]int
	obs          observer // benchmarks: requests and task-end notices

	routesOnce sync.Once
	routeTable []*route

	jobs jobsState // backup jobs, pools and the scheduler's clock (jobs.go)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type node struct {
	name    string
	offline bool
	maxcpu  int
	maxmem  int64
	boot    time.Time
	pstart  uint32
	vzdump  chan struct{} // node-global vzdump lock (capacity 1)
}

type storage struct {
	cfg     StorageConfig
	content map[string]bool
	full    bool
}

type user struct {
	id       string
	password string
	acl      []ACLEntry
}

type token struct {
	full    string // user@realm!id
	user    string
	secret  string
	privsep bool
	acl     []ACLEntry
}

const defaultThroughput = 64 << 20

// Start starts a simulator. It listens immediately; the returned Sim is ready.
func Start(opts Options) (*Sim, error) {
	if opts.DataDir == "" {
		return nil, errors.New("pvesim: Options.DataDir is required")
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	cfg := opts.Config
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("pvesim: %w", err)
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s, err := newSim(opts, cfg, dir)
	if err != nil {
		return nil, err
	}
	if err := s.loadSecrets(); err != nil {
		return nil, err
	}
	if err := s.initInventory(); err != nil {
		return nil, err
	}
	s.loadTaskLogs()
	tlsCfg, caPEM, err := certs.Ensure(dir)
	if err != nil {
		return nil, err
	}
	s.caPEM = caPEM
	tl, err := s.listen(tlsCfg)
	if err != nil {
		return nil, err
	}
	s.startScheduler()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(tl)
	}()
	s.logf("pvesim: listening on %s (data dir %s)", s.endpoint, dir)
	return s, nil
}

// newSim builds the empty simulator: settings from opts and cfg (ticket
// lifetime, node time zone), no inventory yet.
func newSim(opts Options, cfg *Config, dir string) (*Sim, error) {
	s := &Sim{
		opts:     opts,
		cfg:      cfg,
		dataDir:  dir,
		overhead: opts.TaskOverhead,
		nodes:    map[string]*node{},
		storages: map[string]*storage{},
		guests:   map[int]*guest{},
		users:    map[string]*user{},
		tokens:   map[string]*token{},
		tasks:    map[string]*task{},
		counters: map[string]int{},
		nextPID:  0x1000 + uint32(time.Now().UnixNano()%0x8000),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.SetThroughput(opts.Throughput)
	life := time.Duration(cfg.TicketLifetimeSeconds) * time.Second
	if life <= 0 {
		life = 2 * time.Hour
	}
	s.ticketLife.Store(int64(life))
	s.loc = time.Local
	if cfg.Timezone != "" {
		loc, err := time.LoadLocation(cfg.Timezone)
		if err != nil {
			return nil, fmt.Errorf("pvesim: timezone: %w", err)
		}
		s.loc = loc
	}
	return s, nil
}

// listen opens the TCP listener, sets the endpoint and the HTTP/1.1-only
// server, and returns the TLS listener to serve.
func (s *Sim) listen(tlsCfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return nil, err
	}
	s.ln = ln
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		_ = ln.Close()
		return nil, fmt.Errorf("pvesim: listener address %v is not TCP", ln.Addr())
	}
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	s.endpoint = "https://" + net.JoinHostPort(host, fmt.Sprint(addr.Port)) + "/"
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveTop),
		TLSConfig:         tlsCfg,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          nil,
	}
	return tls.NewListener(ln, tlsCfg), nil
}

// Close stops the server and all running tasks.
func (s *Sim) Close() error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	s.wg.Wait()
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return err
}

func (s *Sim) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// Endpoint is "https://127.0.0.1:PORT/" (clients append api2/json).
func (s *Sim) Endpoint() string { return s.endpoint }

// APIToken is the full-privilege token "root@pam!terraform=<secret>".
func (s *Sim) APIToken() string { return s.tokenString("root@pam!terraform") }

// ReadOnlyToken is "auditor@pve!ro=<secret>" (Datastore.Audit + VM.Audit).
func (s *Sim) ReadOnlyToken() string { return s.tokenString("auditor@pve!ro") }

// Token returns "<tokenid>=<secret>" for any configured token, or "".
func (s *Sim) Token(fullID string) string { return s.tokenString(fullID) }

func (s *Sim) tokenString(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	if !ok {
		return ""
	}
	return t.full + "=" + t.secret
}

// CAPath is DIR/ca.pem.
func (s *Sim) CAPath() string { return filepath.Join(s.dataDir, "ca.pem") }

// CAPEM is the CA certificate in PEM form.
func (s *Sim) CAPEM() []byte { return append([]byte(nil), s.caPEM...) }

// DataDir is the absolute data directory.
func (s *Sim) DataDir() string { return s.dataDir }

// GuestRootfs is DIR/guests/<vmid>/rootfs (LXC).
func (s *Sim) GuestRootfs(vmid int) string {
	return filepath.Join(s.dataDir, "guests", fmt.Sprint(vmid), "rootfs")
}

// GuestDisk is DIR/guests/<vmid>/disk-0.raw (QEMU).
func (s *Sim) GuestDisk(vmid int) string {
	return filepath.Join(s.dataDir, "guests", fmt.Sprint(vmid), "disk-0.raw")
}

// StorageDumpDir is "<storage path>/dump" of a dir-type storage on node
// (for PBS storages, the directory holding the snapshots).
func (s *Sim) StorageDumpDir(nodeName, storageID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.storages[storageID]
	if st == nil {
		return ""
	}
	if st.cfg.Type == "pbs" {
		return s.pbsDir(st)
	}
	return filepath.Join(s.storagePath(st, nodeName), "dump")
}

// GuestState returns the current state of a guest.
func (s *Sim) GuestState(vmid int) (GuestInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.guests[vmid]
	if g == nil {
		return GuestInfo{}, false
	}
	return GuestInfo{VMID: vmid, Node: g.node, Type: g.typ, Name: g.name(), Status: g.status, Lock: g.conf.get("lock")}, true
}

// GuestConfigText returns the guest's config file text as PVE would show it.
func (s *Sim) GuestConfigText(vmid int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.guests[vmid]
	if g == nil {
		return "", false
	}
	return g.conf.render(), true
}

// AddGuest adds a guest at run time (files/disk created like at start).
func (s *Sim) AddGuest(gc GuestConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gc.VMID < 100 || gc.VMID > 999999999 {
		return fmt.Errorf("invalid vmid %d", gc.VMID)
	}
	if s.guests[gc.VMID] != nil {
		return fmt.Errorf("vmid %d already exists", gc.VMID)
	}
	if s.nodes[gc.Node] == nil {
		return fmt.Errorf("unknown node %q", gc.Node)
	}
	if gc.Type != "lxc" && gc.Type != "qemu" {
		return fmt.Errorf("type must be lxc or qemu")
	}
	return s.addGuestLocked(gc)
}

// SetThroughput sets the simulated bytes/second (0 → 64 MiB/s).
func (s *Sim) SetThroughput(bytesPerSecond int64) {
	if bytesPerSecond <= 0 {
		bytesPerSecond = defaultThroughput
	}
	s.throughput.Store(bytesPerSecond)
}

// SetTicketLifetime changes the validity of login tickets (existing tickets
// are judged by the new lifetime), so tests can expire a ticket.
func (s *Sim) SetTicketLifetime(d time.Duration) { s.ticketLife.Store(int64(d)) }

// --- secrets ---------------------------------------------------------------

type secretsFile struct {
	TicketKey string            `json:"ticket_key"`
	Tokens    map[string]string `json:"tokens"`
}

func (s *Sim) loadSecrets() error {
	path := filepath.Join(s.dataDir, "secrets.json")
	var sf secretsFile
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &sf); err != nil {
			return fmt.Errorf("pvesim: %s: %w", path, err)
		}
	}
	if sf.Tokens == nil {
		sf.Tokens = map[string]string{}
	}
	changed := false
	if sf.TicketKey == "" {
		sf.TicketKey = randHex(32)
		changed = true
	}
	s.ticketKey = []byte(sf.TicketKey)
	for _, u := range s.cfg.Users {
		s.users[u.ID] = &user{id: u.ID, password: u.Password, acl: u.ACL}
		for _, t := range u.Tokens {
			full := u.ID + "!" + t.ID
			sec := t.Secret
			if sec == "" {
				sec = sf.Tokens[full]
				if sec == "" {
					sec = newUUID()
					sf.Tokens[full] = sec
					changed = true
				}
			}
			s.tokens[full] = &token{full: full, user: u.ID, secret: sec, privsep: t.Privsep, acl: t.ACL}
		}
	}
	if s.users["root@pam"] == nil {
		s.users["root@pam"] = &user{id: "root@pam", password: "pvesim"}
	}
	if changed {
		b, _ := json.MarshalIndent(sf, "", "  ")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// --- inventory -------------------------------------------------------------

func (s *Sim) initInventory() error {
	now := time.Now()
	for i, nc := range s.cfg.Nodes {
		n := &node{name: nc.Name, offline: nc.Offline, maxcpu: nc.MaxCPU, maxmem: nc.MaxMem,
			boot: now.Add(-time.Duration(3+i) * 24 * time.Hour), vzdump: make(chan struct{}, 1)}
		if n.maxcpu == 0 {
			n.maxcpu = 8
		}
		if n.maxmem == 0 {
			n.maxmem = 32 << 30
		}
		n.pstart = uint32(0x01000000 + i*0x10000)
		s.nodes[n.name] = n
		s.nodeOrder = append(s.nodeOrder, n.name)
	}
	for _, sc := range s.cfg.Storages {
		st := &storage{cfg: sc, content: map[string]bool{}}
		for _, c := range sc.Content {
			st.content[c] = true
		}
		if st.cfg.Capacity == 0 {
			st.cfg.Capacity = 1 << 40
		}
		s.storages[sc.ID] = st
		s.storageOrder = append(s.storageOrder, sc.ID)
		if sc.Type == "pbs" {
			if err := os.MkdirAll(s.pbsDir(st), 0o755); err != nil {
				return err
			}
			continue
		}
		for _, nn := range s.nodeOrder {
			if !st.onNode(nn) {
				continue
			}
			if err := os.MkdirAll(filepath.Join(s.storagePath(st, nn), "dump"), 0o755); err != nil {
				return err
			}
		}
	}
	for _, gc := range s.cfg.Guests {
		if err := s.addGuestLocked(gc); err != nil {
			return err
		}
	}
	return nil
}

func (st *storage) onNode(n string) bool {
	if len(st.cfg.Nodes) == 0 {
		return true
	}
	for _, x := range st.cfg.Nodes {
		if x == n {
			return true
		}
	}
	return false
}

// storagePath is the directory of a dir storage as seen from node n.
func (s *Sim) storagePath(st *storage, n string) string {
	p := st.cfg.Path
	if p == "" {
		if st.cfg.Shared {
			return filepath.Join(s.dataDir, "storage", st.cfg.ID)
		}
		return filepath.Join(s.dataDir, "nodes", n, "storage", st.cfg.ID)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.dataDir, p)
	}
	if !st.cfg.Shared {
		p = filepath.Join(p, n)
	}
	return p
}

func (s *Sim) pbsDir(st *storage) string {
	p := st.cfg.Path
	if p == "" {
		return filepath.Join(s.dataDir, "pbs", st.cfg.ID)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.dataDir, p)
	}
	return p
}

func (s *Sim) addGuestLocked(gc GuestConfig) error {
	g := &guest{vmid: gc.VMID, typ: gc.Type, node: gc.Node, status: "stopped"}
	if gc.Status == "running" {
		g.status = "running"
		g.started = time.Now().Add(-time.Hour)
	}
	stor := gc.Storage
	if stor == "" {
		stor = "local-lvm"
	}
	g.conf = defaultGuestConf(gc, stor)
	if err := os.MkdirAll(filepath.Join(s.dataDir, "guests", fmt.Sprint(gc.VMID)), 0o755); err != nil {
		return err
	}
	if gc.Type == "lxc" {
		root := s.GuestRootfs(gc.VMID)
		if _, err := os.Stat(root); os.IsNotExist(err) {
			if err := os.MkdirAll(root, 0o755); err != nil {
				return err
			}
			for _, p := range sortedKeys(gc.Files) {
				fp := filepath.Join(root, filepath.FromSlash(p))
				if !strings.HasPrefix(fp, root+string(filepath.Separator)) {
					return fmt.Errorf("guest %d: bad file path %q", gc.VMID, p)
				}
				if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(fp, []byte(gc.Files[p]), 0o644); err != nil {
					return err
				}
			}
		}
	} else {
		disk := s.GuestDisk(gc.VMID)
		if _, err := os.Stat(disk); os.IsNotExist(err) {
			size := gc.DiskSize
			if size <= 0 {
				size = 8 * 1024
			}
			if err := os.WriteFile(disk, deterministicBytes(gc.VMID, size), 0o644); err != nil {
				return err
			}
		}
	}
	s.guests[gc.VMID] = g
	return nil
}

func deterministicBytes(seed int, n int64) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
