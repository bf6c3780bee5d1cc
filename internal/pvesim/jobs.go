package pvesim

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Backup jobs: /cluster/backup (jobs.cfg), the coverage endpoints and the
// scheduler that runs due jobs as vzdump tasks (pvescheduler). The
// scheduler reads a simulated clock that tests can move (AdvanceClock,
// SetClock) or bypass (RunJobNow); see REFERENCE.md section 9.

type jobsState struct {
	mu     sync.Mutex
	jobs   map[string]*backupJob
	order  []string
	offset time.Duration      // simulated clock = host clock + offset
	pools  map[string][]int   // resource pools (members), for pool-selected jobs
	runs   map[string]*jobRun // "<job>/<node>" → that node's job state file
	minute time.Time          // last scheduler minute handled
}

type backupJob struct {
	id          string
	opts        map[string]string // every stored option except exclude-path, as PVE prints it
	excludePath []string
}

// jobRun is one node's /var/lib/pve-manager/jobs/vzdump-<id>.json.
type jobRun struct {
	state   string // created | starting | started | stopped
	created time.Time
	updated time.Time // set when schedule/enabled change
	started time.Time // simulated time the last run started (the UPID's start time in PVE)
	upid    string
	task    *task
	msg     string
}

func (js *jobsState) init() {
	if js.jobs == nil {
		js.jobs = map[string]*backupJob{}
		js.pools = map[string][]int{}
		js.runs = map[string]*jobRun{}
	}
}

// Now is the simulator's clock, which drives the job scheduler and next-run.
func (s *Sim) Now() time.Time {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	return time.Now().Add(s.jobs.offset)
}

// AdvanceClock moves the simulated clock forward by d and runs the
// scheduler once at the new time. It returns the UPIDs of the vzdump tasks
// it started.
func (s *Sim) AdvanceClock(d time.Duration) []string {
	s.jobs.mu.Lock()
	s.jobs.offset += d
	s.jobs.mu.Unlock()
	return s.schedulerTick()
}

// SetClock sets the simulated clock to t (it keeps running from there) and
// runs the scheduler once.
func (s *Sim) SetClock(t time.Time) []string {
	s.jobs.mu.Lock()
	s.jobs.offset = time.Until(t)
	s.jobs.minute = time.Time{} // a clock set back still gets its next pass
	s.jobs.mu.Unlock()
	return s.schedulerTick()
}

// SetPool defines a resource pool and its guest members (pools exist only
// for backup-job selection; the rest of pvesim has none).
func (s *Sim) SetPool(pool string, vmids ...int) {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	s.jobs.init()
	s.jobs.pools[pool] = append([]int(nil), vmids...)
}

// RunJobNow runs a backup job on every node it applies to, now and
// regardless of its schedule and enabled flag, like the GUI's "Run now"
// would, but through the scheduler's job state (so the run counts as the
// job's last run). It returns the UPIDs of the started tasks.
func (s *Sim) RunJobNow(id string) ([]string, error) {
	s.jobs.mu.Lock()
	s.jobs.init()
	j := s.jobs.jobs[id]
	s.jobs.mu.Unlock()
	if j == nil {
		return nil, fmt.Errorf("no such job %q", id)
	}
	var upids []string
	for _, n := range s.onlineNodeNames() {
		if nn := j.opts["node"]; nn != "" && nn != n {
			continue
		}
		if upid := s.startJobRun(id, n, s.Now()); upid != "" {
			upids = append(upids, upid)
		}
	}
	return upids, nil
}

func (s *Sim) onlineNodeNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, n := range s.nodeOrder {
		if !s.nodes[n].offline {
			out = append(out, n)
		}
	}
	return out
}

// --- scheduler ---------------------------------------------------------------

func (s *Sim) startScheduler() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-tk.C:
				s.schedulerTick()
			}
		}
	}()
}

// schedulerTick is one pvescheduler pass: PVE runs run_jobs once at the start
// of every minute, so a pass happens only when the simulated clock has
// entered a new minute.
func (s *Sim) schedulerTick() []string {
	now := s.Now()
	s.jobs.mu.Lock()
	s.jobs.init()
	minute := now.Truncate(time.Minute)
	if !minute.After(s.jobs.minute) {
		s.jobs.mu.Unlock()
		return nil
	}
	s.jobs.minute = minute
	ids := append([]string(nil), s.jobs.order...)
	s.jobs.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil
	}
	sort.Strings(ids) // run_jobs: sort keys
	var upids []string
	for _, id := range ids {
		for _, n := range s.onlineNodeNames() {
			if upid, ok := s.dueJobRun(id, n, now); ok && upid != "" {
				upids = append(upids, upid)
			}
		}
	}
	return upids
}

// dueJobRun is run_jobs for one job on one node.
func (s *Sim) dueJobRun(id, n string, now time.Time) (string, bool) {
	s.jobs.mu.Lock()
	j := s.jobs.jobs[id]
	if j == nil {
		s.jobs.mu.Unlock()
		return "", false
	}
	if nn := j.opts["node"]; nn != "" && nn != n {
		s.jobs.mu.Unlock()
		return "", false
	}
	r := s.jobs.runLocked(id, n, now)
	// update_job_stopped
	if r.state == "started" && r.task != nil {
		if _, done, exit, _ := r.task.snapshot(); done {
			r.state, r.msg = "stopped", exit
		}
	}
	if j.opts["enabled"] == "0" {
		s.jobs.mu.Unlock()
		return "", false
	}
	ev, err := parseCalendarEvent(j.opts["schedule"])
	last := r.lastRuntime()
	s.jobs.mu.Unlock()
	if err != nil {
		return "", false
	}
	next, ok := ev.next(last, s.loc)
	if !ok || now.Before(next) {
		return "", false
	}
	return s.startJobRun(id, n, now), true
}

func (js *jobsState) runLocked(id, n string, now time.Time) *jobRun {
	k := id + "/" + n
	r := js.runs[k]
	if r == nil {
		r = &jobRun{state: "created", created: now}
		js.runs[k] = r
	}
	return r
}

// lastRuntime is get_last_runtime: "updated", else the last run's start,
// else the time the state was created.
func (r *jobRun) lastRuntime() time.Time {
	if !r.updated.IsZero() {
		return r.updated
	}
	if r.upid != "" {
		return r.started
	}
	return r.created
}

// startJobRun is starting_job + the plugin's run + started_job. It returns
// the task's UPID, or "" when no task was started (a job already running on
// this node, no local guests, or an error before the task).
func (s *Sim) startJobRun(id, n string, now time.Time) string {
	s.jobs.mu.Lock()
	j := s.jobs.jobs[id]
	if j == nil {
		s.jobs.mu.Unlock()
		return ""
	}
	r := s.jobs.runLocked(id, n, now)
	if r.state == "started" && r.task != nil {
		if _, done, exit, _ := r.task.snapshot(); !done {
			s.jobs.mu.Unlock()
			return ""
		} else {
			r.state, r.msg = "stopped", exit
		}
	}
	r.state = "starting"
	opts := make(map[string]string, len(j.opts))
	for k, v := range j.opts {
		opts[k] = v
	}
	excl := append([]string(nil), j.excludePath...)
	s.jobs.mu.Unlock()

	t := s.runJobVzdump(id, n, opts, excl)

	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	r.updated = time.Time{}
	if t == nil { // started_job with "OK": no task, the run counts from now
		r.state, r.msg, r.upid, r.task, r.started = "stopped", "OK", "", nil, time.Time{}
		r.created = now
		return ""
	}
	r.state, r.upid, r.task, r.started, r.msg = "started", t.upid, t, now, ""
	return t.upid
}

// vzdumpOnlyKeys: the job options that are not vzdump parameters
// (PVE::Jobs::VZDump::run drops them).
var jobOnlyKeys = map[string]bool{"schedule": true, "enabled": true, "comment": true, "repeat-missed": true}

// runJobVzdump is PVE::Jobs::VZDump::run → PVE::API2::VZDump::vzdump on node
// n as root@pam with job-id and quiet=1. A nil task is "OK" (nothing to do
// on this node); failures before the guests (storage, lock) end the task.
func (s *Sim) runJobVzdump(id, n string, opts map[string]string, excludePath []string) *task {
	p := &params{m: map[string]string{}, arr: map[string][]string{}}
	for k, v := range opts {
		if !jobOnlyKeys[k] {
			p.m[k] = v
		}
	}
	if len(excludePath) > 0 {
		p.arr["exclude-path"] = excludePath
	}
	p.m["job-id"] = id
	p.m["quiet"] = "1"
	if nn := p.m["node"]; nn != "" && nn != n {
		return nil // "silent exit if we run on wrong node"
	}
	local, all := s.jobLocalGuests(opts, n)
	if len(local) == 0 && !all {
		return nil // "silent exit if specified VMs run on other nodes"
	}
	storageID := p.m["storage"]
	if storageID == "" && p.m["dumpdir"] == "" {
		storageID = "local"
	}
	root := &authInfo{authid: "root@pam", user: "root@pam"}
	job := &vzdumpJob{node: n, vmids: local, p: p, auth: root, storageID: storageID, dumpdir: p.m["dumpdir"],
		compress: p.m["compress"], mode: p.m["mode"], all: all, cmdline: jobCommandLine(p)}
	if job.mode == "" {
		job.mode = "snapshot"
	}
	tid := ""
	if len(local) == 1 {
		tid = strconv.Itoa(local[0])
	}
	t := s.newTask(n, "vzdump", tid, "root@pam")
	s.runTask(t, func(t *task) error { return s.runVzdump(t, job) })
	return t
}

// jobLocalGuests is get_included_guests for one node: the guests of node n
// (plus guests that no longer exist, which then fail visibly), sorted.
func (s *Sim) jobLocalGuests(opts map[string]string, n string) ([]int, bool) {
	per, all := s.includedGuests(opts)
	local := append(per[n], per[""]...)
	sort.Ints(local)
	return local, all
}

// includedGuests is PVE::VZDump::get_included_guests: vmids per node ("" for
// guests that do not exist), honouring the job's node restriction.
func (s *Sim) includedGuests(opts map[string]string) (map[string][]int, bool) {
	var ids []int
	all := opts["all"] == "1" || opts["exclude"] != "" && opts["pool"] == ""
	switch {
	case opts["pool"] != "":
		s.jobs.mu.Lock()
		ids = append(ids, s.jobs.pools[opts["pool"]]...)
		s.jobs.mu.Unlock()
		all = false
	case opts["vmid"] != "":
		ids = parseVMIDList(opts["vmid"])
		all = false
	case all:
		excl := map[int]bool{}
		for _, x := range parseVMIDList(opts["exclude"]) {
			excl[x] = true
		}
		s.mu.Lock()
		for id := range s.guests {
			if !excl[id] {
				ids = append(ids, id)
			}
		}
		s.mu.Unlock()
	default:
		return map[string][]int{}, false
	}
	per := map[string][]int{}
	seen := map[int]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		g := s.guests[id]
		if g == nil {
			per[""] = append(per[""], id)
			continue
		}
		if nn := opts["node"]; nn != "" && nn != g.node {
			continue
		}
		per[g.node] = append(per[g.node], id)
	}
	for k := range per {
		sort.Ints(per[k])
	}
	return per, all
}

// jobCommandLine is PVE::VZDump::Common::command_line: the guests, then
// every option but id, vmid, starttime, dow, stdout, enabled and job-id
// (PVE prints them in hash order; pvesim sorts them).
func jobCommandLine(p *params) string {
	parts := []string{"vzdump"}
	if v := p.m["vmid"]; v != "" {
		parts = append(parts, strings.Join(splitList(v), " "))
	}
	skip := map[string]bool{"id": true, "vmid": true, "starttime": true, "dow": true, "stdout": true, "enabled": true, "job-id": true}
	for _, k := range sortedKeys(p.m) {
		if skip[k] || p.m[k] == "" {
			continue
		}
		parts = append(parts, "--"+k, shellQuote(p.m[k]))
	}
	for _, v := range p.arr["exclude-path"] {
		parts = append(parts, "--exclude-path", shellQuote(v))
	}
	return strings.Join(parts, " ")
}

var reListSep = regexp.MustCompile(`[,;\s\x00]+`)

func splitList(s string) []string {
	var out []string
	for _, f := range reListSep.Split(strings.TrimSpace(s), -1) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// --- API -----------------------------------------------------------------------

// jobConfigSchema: PVE::VZDump::Common::json_config_properties plus what
// PVE::API2::Backup adds (schedule, starttime, dow, enabled, repeat-missed,
// comment). vzdump's own extras (job-id, stdout) are not job options.
func jobConfigSchema() schema {
	sc := vzdumpSchema()
	for _, k := range []string{"job-id", "stdout", "maxfiles", "size"} {
		delete(sc, k)
	}
	sc["node"] = pd{t: "string", format: "pve-node"}
	sc["schedule"] = pd{t: "string", maxLen: 128}
	sc["starttime"] = pdS()
	sc["dow"] = pd{t: "string"}.needs("starttime")
	sc["enabled"] = pdB()
	sc["repeat-missed"] = pdB()
	sc["comment"] = pd{t: "string", maxLen: 512}
	return sc
}

func registerJobRoutes(add func(method, tmpl string, sc schema, h handlerFunc) *route) {
	h := func(f func(*Sim, *request) (any, error)) handlerFunc {
		return func(rq *request) (any, error) { return f(rq.s, rq) }
	}
	idParam := pd{t: "string", req: true, maxLen: 50}
	create := jobConfigSchema()
	create["id"] = pdS()
	update := jobConfigSchema()
	update["id"] = idParam
	update["delete"] = pdS()
	add("GET", "/cluster/backup", nil, h((*Sim).hJobList))
	add("POST", "/cluster/backup", create, h((*Sim).hJobCreate))
	add("GET", "/cluster/backup/{id}", schema{"id": idParam}, h((*Sim).hJobRead))
	add("PUT", "/cluster/backup/{id}", update, h((*Sim).hJobUpdate))
	add("DELETE", "/cluster/backup/{id}", schema{"id": idParam}, h((*Sim).hJobDelete))
	add("GET", "/cluster/backup/{id}/included_volumes", schema{"id": idParam}, h((*Sim).hJobIncludedVolumes))
	add("GET", "/cluster/backup-info", nil, func(*request) (any, error) {
		return []map[string]string{{"subdir": "not-backed-up"}}, nil
	})
	add("GET", "/cluster/backup-info/not-backed-up", nil, h((*Sim).hNotBackedUp))
}

var (
	reConfigID  = regexp.MustCompile(`(?i)^[a-z][a-z0-9_-]+$`)
	reStarttime = regexp.MustCompile(`^\d{1,2}:\d{1,2}$`)
	reDayOfWeek = regexp.MustCompile(`^(mon|tue|wed|thu|fri|sat|sun)$`)
)

// propertyString parses fleecing and performance (PVE's backup-fleecing and
// backup-performance formats); it returns the normalised string.
func propertyString(key, v string) (map[string]string, error) {
	out := map[string]string{}
	known := map[string]map[string]string{
		"fleecing":    {"enabled": "boolean", "storage": "pve-storage-id"},
		"performance": {"max-workers": "1-256", "pbs-entries-max": "1-"},
	}[key]
	for _, kv := range strings.Split(v, ",") {
		if kv == "" {
			continue
		}
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			if key != "fleecing" { // only fleecing has a default key (enabled)
				return nil, fmt.Errorf("value without key, but schema does not define a default key")
			}
			k, val = "enabled", kv
		}
		typ, ok := known[k]
		if !ok {
			return nil, fmt.Errorf("invalid format - unknown property '%s'", k) //nolint:staticcheck // PVE's text
		}
		switch typ {
		case "boolean":
			switch strings.ToLower(val) {
			case "1", "on", "yes", "true":
				val = "1"
			case "0", "off", "no", "false":
				val = "0"
			default:
				return nil, fmt.Errorf("invalid format - %s: type check ('boolean') failed - got '%s'", k, val)
			}
		case "pve-storage-id":
			if !reStorageID.MatchString(val) {
				return nil, fmt.Errorf("invalid format - %s: invalid format - storage ID '%s' contains illegal characters", k, val)
			}
		default:
			n, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("invalid format - %s: type check ('integer') failed - got '%s'", k, val)
			}
			lo, hi, _ := strings.Cut(typ, "-")
			if l, _ := strconv.Atoi(lo); n < l {
				return nil, fmt.Errorf("invalid format - %s: value must have a minimum value of %d", k, l)
			}
			if h, err := strconv.Atoi(hi); err == nil && n > h {
				return nil, fmt.Errorf("invalid format - %s: value must have a maximum value of %d", k, h)
			}
		}
		out[k] = val
	}
	if key == "fleecing" && out["enabled"] == "1" && out["storage"] == "" {
		return nil, errors.New("'storage' parameter is required when 'enabled' is set")
	}
	return out, nil
}

func printPropertyString(m map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// checkJobFormats: the formats the generic schema check does not know
// (pve-configid, pve-calendar-event, the property strings, pve-day-of-week-list, HH:MM).
func checkJobFormats(p *params) *apiError {
	errs := map[string]string{}
	if id, ok := p.m["id"]; ok && !reConfigID.MatchString(id) {
		errs["id"] = fmt.Sprintf("invalid format - invalid configuration ID '%s'", id)
	}
	if v, ok := p.m["schedule"]; ok {
		if _, err := parseCalendarEvent(v); err != nil {
			errs["schedule"] = fmt.Sprintf("invalid format - invalid calendar event '%s' - %s", v, err)
		}
	}
	if v, ok := p.m["starttime"]; ok && !reStarttime.MatchString(v) {
		errs["starttime"] = "value does not match the regex pattern"
	}
	if v, ok := p.m["dow"]; ok {
		for _, d := range splitList(v) {
			if !reDayOfWeek.MatchString(d) {
				errs["dow"] = fmt.Sprintf("invalid format - invalid day '%s'", d)
			}
		}
	}
	for _, k := range []string{"fleecing", "performance"} {
		if v, ok := p.m[k]; ok {
			m, err := propertyString(k, v)
			if err != nil {
				errs[k] = err.Error()
				continue
			}
			p.m[k] = printPropertyString(m)
		}
	}
	if v, ok := p.m["prune-backups"]; ok {
		r, err := parseRetention(v)
		if err != nil {
			errs["prune-backups"] = err.Error()
		} else {
			p.m["prune-backups"] = strings.ReplaceAll(r.text, ", ", ",")
		}
	}
	if len(errs) > 0 {
		return paramErr(errs)
	}
	return nil
}

// convertStarttime is $convert_to_schedule: starttime + dow → schedule.
func convertStarttime(p *params, required bool) *apiError {
	if _, ok := p.m["schedule"]; ok {
		if _, ok := p.m["starttime"]; ok {
			return paramErr1("starttime", "'starttime' and 'schedule' cannot both be set")
		}
	} else if st, ok := p.m["starttime"]; !ok {
		if required {
			return paramErr1("schedule", "neither 'starttime' nor 'schedule' were set")
		}
	} else {
		dow := strings.Join(splitList(p.m["dow"]), ",")
		if dow == "" || dow == "mon,tue,wed,thu,fri,sat,sun" {
			p.m["schedule"] = st
		} else {
			p.m["schedule"] = dow + " " + st
		}
	}
	delete(p.m, "starttime")
	delete(p.m, "dow")
	return nil
}

// verifyJobParams is PVE::VZDump::verify_vzdump_parameters on the options.
func verifyJobParams(opts map[string]string, checkMissing bool) *apiError {
	if opts["vmid"] != "" {
		for _, k := range []string{"all", "exclude", "pool"} {
			if opts[k] != "" && opts[k] != "0" {
				return paramErr1(k, "option conflicts with option 'vmid'")
			}
		}
	}
	if t, ok := opts["notes-template"]; ok && t != "" {
		if err := verifyNotesTemplate(t); err != nil {
			return paramErr1("notes-template", err.Error())
		}
	}
	if opts["exclude"] != "" && opts["pool"] == "" {
		opts["all"] = "1"
	}
	if checkMissing && opts["all"] != "1" && opts["stop"] != "1" && opts["pool"] == "" && opts["vmid"] == "" {
		return paramErr1("vmid", "property is missing")
	}
	return nil
}

// assertJobPermissions: assert_param_permission_common (+ create/update).
func (s *Sim) assertJobPermissions(a *authInfo, p *params, create bool, current map[string]string) error {
	if a.authid == "root@pam" {
		return nil
	}
	for _, k := range []string{"tmpdir", "dumpdir", "script", "job-id"} {
		if p.has(k) {
			return paramErr1(k, "Only root may set this option.")
		}
	}
	for _, k := range []string{"bwlimit", "ionice", "performance"} {
		if p.has(k) {
			if err := s.checkAll(a, "/", "Sys.Modify"); err != nil {
				return err
			}
		}
	}
	if f := p.m["fleecing"]; f != "" {
		if m, _ := propertyString("fleecing", f); m["storage"] != "" {
			if err := s.checkAll(a, "/storage/"+m["storage"], "Datastore.AllocateSpace"); err != nil {
				return err
			}
		}
	}
	st := p.m["storage"]
	if create && st == "" && p.m["dumpdir"] == "" {
		st = "local"
	}
	if st != "" {
		if err := s.checkAll(a, "/storage/"+st, "Datastore.Allocate"); err != nil {
			return err
		}
	}
	if current != nil {
		if current["dumpdir"] != "" {
			return errors.New("only root@pam may edit jobs with a 'dumpdir' option.") //nolint:staticcheck // PVE's text
		}
		cs := current["storage"]
		if cs == "" {
			cs = "local"
		}
		if err := s.checkAll(a, "/storage/"+cs, "Datastore.Allocate"); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sim) checkPool(a *authInfo, pool string) error {
	if pool == "" {
		return nil
	}
	s.jobs.mu.Lock()
	_, ok := s.jobs.pools[pool]
	s.jobs.mu.Unlock()
	if !ok {
		return errf(403, "Permission check failed (pool '%s' does not exist)", pool)
	}
	return s.checkAll(a, "/pool/"+pool, "VM.Backup")
}

func (s *Sim) hJobCreate(rq *request) (any, error) {
	if err := s.checkAll(rq.auth, "/", "Sys.Modify"); err != nil {
		return nil, err
	}
	p := rq.p
	if e := checkJobFormats(p); e != nil {
		return nil, e
	}
	if err := s.assertJobPermissions(rq.auth, p, true, nil); err != nil {
		return nil, err
	}
	if err := s.checkPool(rq.auth, p.m["pool"]); err != nil {
		return nil, err
	}
	if e := convertStarttime(p, true); e != nil {
		return nil, e
	}
	if !p.has("enabled") {
		p.m["enabled"] = "1"
	}
	id := p.m["id"]
	delete(p.m, "id")
	if id == "" {
		id = newUUID() // "autogenerate id for api compatibility" (the GUI sends backup-<hex>)
	}
	s.jobs.mu.Lock()
	s.jobs.init()
	_, exists := s.jobs.jobs[id]
	s.jobs.mu.Unlock()
	if exists {
		return nil, err500("Job '%s' already exists", id)
	}
	opts := map[string]string{}
	for k, v := range p.m {
		opts[k] = v
	}
	if e := verifyJobParams(opts, true); e != nil {
		return nil, e
	}
	now := s.Now()
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	if _, exists := s.jobs.jobs[id]; exists {
		return nil, err500("Job '%s' already exists", id)
	}
	s.jobs.jobs[id] = &backupJob{id: id, opts: opts, excludePath: p.arr["exclude-path"]}
	s.jobs.order = append(s.jobs.order, id)
	for k := range s.jobs.runs {
		if strings.HasPrefix(k, id+"/") {
			delete(s.jobs.runs, k)
		}
	}
	for _, n := range s.nodeOrder {
		s.jobs.runLocked(id, n, now)
	}
	return nil, nil
}

var jobIntKeys = map[string]bool{"all": true, "stdexcludes": true, "pigz": true, "zstd": true, "quiet": true, "stop": true,
	"bwlimit": true, "ionice": true, "lockwait": true, "stopwait": true, "remove": true, "protected": true,
	"enabled": true, "repeat-missed": true}

// jobView is a job as GET returns it: property strings as objects.
func jobView(j *backupJob) map[string]any {
	out := map[string]any{"id": j.id, "type": "vzdump"}
	for k, v := range j.opts {
		switch {
		case jobIntKeys[k]:
			n, _ := strconv.Atoi(v)
			out[k] = n
		case k == "prune-backups":
			obj := map[string]any{}
			for _, kv := range strings.Split(v, ",") {
				if kk, vv, ok := strings.Cut(kv, "="); ok {
					n, _ := strconv.Atoi(vv)
					obj[kk] = n
				}
			}
			out[k] = obj
		case k == "fleecing" || k == "performance":
			m, _ := propertyString(k, v)
			obj := map[string]any{}
			for kk, vv := range m {
				n, err := strconv.Atoi(vv)
				if err == nil && kk != "storage" {
					obj[kk] = n
				} else {
					obj[kk] = vv
				}
			}
			out[k] = obj
		default:
			out[k] = v
		}
	}
	if len(j.excludePath) > 0 {
		out["exclude-path"] = append([]string(nil), j.excludePath...)
	}
	return out
}

func (s *Sim) hJobList(rq *request) (any, error) {
	if err := s.checkAll(rq.auth, "/", "Sys.Audit"); err != nil {
		return nil, err
	}
	now := s.Now()
	s.jobs.mu.Lock()
	s.jobs.init()
	out := []map[string]any{}
	for _, id := range s.jobs.order {
		j := s.jobs.jobs[id]
		v := jobView(j)
		// vzdump jobs are cluster wide: next-run is computed from now
		if ev, err := parseCalendarEvent(j.opts["schedule"]); err == nil {
			if next, ok := ev.next(now, s.loc); ok {
				v["next-run"] = next.Unix()
			}
		}
		out = append(out, v)
	}
	s.jobs.mu.Unlock()
	return out, nil
}

func (s *Sim) jobByID(id string) *backupJob {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	s.jobs.init()
	return s.jobs.jobs[id]
}

func (s *Sim) hJobRead(rq *request) (any, error) {
	if err := s.checkAll(rq.auth, "/", "Sys.Audit"); err != nil {
		return nil, err
	}
	id := rq.vars["id"]
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	s.jobs.init()
	j := s.jobs.jobs[id]
	if j == nil {
		return nil, paramErr1("id", fmt.Sprintf("No such job '%s'", id))
	}
	return jobView(j), nil
}

func (s *Sim) hJobDelete(rq *request) (any, error) {
	if err := s.checkAll(rq.auth, "/", "Sys.Modify"); err != nil {
		return nil, err
	}
	id := rq.vars["id"]
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	s.jobs.init()
	if s.jobs.jobs[id] == nil {
		return nil, paramErr1("id", fmt.Sprintf("No such job '%s'", id))
	}
	delete(s.jobs.jobs, id)
	for i, x := range s.jobs.order {
		if x == id {
			s.jobs.order = append(s.jobs.order[:i], s.jobs.order[i+1:]...)
			break
		}
	}
	for k := range s.jobs.runs { // remove_job: the state files go
		if strings.HasPrefix(k, id+"/") {
			delete(s.jobs.runs, k)
		}
	}
	return nil, nil
}

// hJobUpdate is PUT /cluster/backup/{id} (update_job): the parameter and
// permission checks, the job's current options, the deletions and new
// values applied, verify_vzdump_parameters on the result, then the store.
func (s *Sim) hJobUpdate(rq *request) (any, error) {
	p, id := rq.p, rq.vars["id"]
	del, err := s.checkJobUpdateParams(rq)
	if err != nil {
		return nil, err
	}
	j, current := s.jobSnapshot(id)
	if j == nil {
		return nil, err500("no such vzdump job")
	}
	if rq.auth.authid != "root@pam" {
		if err := s.assertJobPermissions(rq.auth, p, false, current); err != nil {
			return nil, err
		}
	}
	if err := checkJobDeleteKeys(del); err != nil {
		return nil, err
	}
	next, excl := mergeJobUpdate(current, j.excludePath, p, del)
	if e := verifyJobParams(next, true); e != nil {
		return nil, e
	}
	if next["protected"] != "" || next["notes-template"] != "" {
		// the options that require 'storage' keep requiring it in the stored job
		if next["storage"] == "" {
			k := "protected"
			if next["notes-template"] != "" {
				k = "notes-template"
			}
			return nil, paramErr1("storage", fmt.Sprintf("missing property required by '%s'", k))
		}
	}
	if !s.storeJobUpdate(id, j, next, excl) {
		return nil, err500("no such vzdump job")
	}
	return nil, nil
}

// checkJobUpdateParams checks an update's own parameters (formats,
// permissions, pool, starttime) and returns the keys to delete; id and
// delete are taken out of rq.p.
func (s *Sim) checkJobUpdateParams(rq *request) (map[string]bool, error) {
	if err := s.checkAll(rq.auth, "/", "Sys.Modify"); err != nil {
		return nil, err
	}
	p := rq.p
	delete(p.m, "id")
	del := map[string]bool{}
	for _, k := range splitList(p.m["delete"]) {
		del[k] = true
	}
	delete(p.m, "delete")
	if e := checkJobFormats(p); e != nil {
		return nil, e
	}
	if del["storage"] && !p.has("storage") && rq.auth.authid != "root@pam" {
		if err := s.checkAll(rq.auth, "/storage/local", "Datastore.Allocate"); err != nil {
			return nil, err
		}
	}
	if err := s.assertJobPermissions(rq.auth, p, false, nil); err != nil {
		return nil, err
	}
	if err := s.checkPool(rq.auth, p.m["pool"]); err != nil {
		return nil, err
	}
	if e := convertStarttime(p, false); e != nil {
		return nil, e
	}
	if len(p.m) == 0 && len(p.arr) == 0 && len(del) == 0 {
		return nil, err500("no options specified")
	}
	check := map[string]string{}
	for k, v := range p.m {
		check[k] = v
	}
	if e := verifyJobParams(check, false); e != nil {
		return nil, e
	}
	return del, nil
}

// jobSnapshot returns the job and a copy of its options (nil when unknown).
func (s *Sim) jobSnapshot(id string) (*backupJob, map[string]string) {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	s.jobs.init()
	j := s.jobs.jobs[id]
	if j == nil {
		return nil, nil
	}
	current := make(map[string]string, len(j.opts))
	for k, v := range j.opts {
		current[k] = v
	}
	return j, current
}

// checkJobDeleteKeys: only vzdump options, comment and repeat-missed can be
// deleted (so schedule and enabled cannot).
func checkJobDeleteKeys(del map[string]bool) error {
	conf := jobConfigSchema()
	for k := range del {
		if _, ok := conf[k]; (!ok || jobOnlyKeys[k] || k == "starttime" || k == "dow") && k != "comment" && k != "repeat-missed" {
			return paramErr1("delete", fmt.Sprintf("unknown option '%s'", k))
		}
	}
	return nil
}

// mergeJobUpdate applies the deletions, then the new values, to the job's
// options (current is reused), and lets a new guest selection (vmid, all,
// pool) replace the old one.
func mergeJobUpdate(current map[string]string, excludePath []string, p *params, del map[string]bool) (map[string]string, []string) {
	next, excl := current, excludePath
	for k := range del {
		delete(next, k)
		if k == "exclude-path" {
			excl = nil
		}
	}
	for k, v := range p.m {
		next[k] = v
	}
	if a, ok := p.arr["exclude-path"]; ok {
		excl = a
	}
	if next["exclude"] != "" && next["pool"] == "" {
		next["all"] = "1"
	}
	switch {
	case p.m["vmid"] != "":
		delete(next, "all")
		delete(next, "exclude")
		delete(next, "pool")
	case p.m["all"] == "1":
		delete(next, "vmid")
		delete(next, "pool")
	case next["pool"] != "":
		delete(next, "vmid")
		delete(next, "all")
		delete(next, "exclude")
	}
	return next, excl
}

// storeJobUpdate stores the new options unless the job was removed or
// replaced meanwhile. As detect_changed_runtime_props does, a new schedule
// or enabled flag counts as the job's last run time.
func (s *Sim) storeJobUpdate(id string, j *backupJob, next map[string]string, excl []string) bool {
	now := s.Now()
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	if s.jobs.jobs[id] != j {
		return false
	}
	old := j.opts
	j.opts, j.excludePath = next, excl
	if old["schedule"] != next["schedule"] || old["enabled"] != next["enabled"] {
		for k, r := range s.jobs.runs {
			if strings.HasPrefix(k, id+"/") {
				r.updated = now
			}
		}
	}
	return true
}

// --- coverage ----------------------------------------------------------------

func (s *Sim) hJobIncludedVolumes(rq *request) (any, error) {
	if err := s.checkAll(rq.auth, "/", "Sys.Audit"); err != nil {
		return nil, err
	}
	j := s.jobByID(rq.vars["id"])
	if j == nil {
		return nil, paramErr1("id", fmt.Sprintf("No such job '%s'", rq.vars["id"]))
	}
	s.jobs.mu.Lock()
	opts := make(map[string]string, len(j.opts))
	for k, v := range j.opts {
		opts[k] = v
	}
	s.jobs.mu.Unlock()
	per, _ := s.includedGuests(opts)
	var ids []int
	for _, l := range per {
		ids = append(ids, l...)
	}
	sort.Ints(ids)
	children := []map[string]any{}
	for _, id := range ids {
		if !s.can(rq.auth, fmt.Sprintf("/vms/%d", id), "VM.Audit") {
			continue
		}
		s.mu.Lock()
		g := s.guests[id]
		if g == nil {
			s.mu.Unlock()
			children = append(children, map[string]any{"id": id, "type": "unknown", "leaf": 1})
			continue
		}
		vols := backupVolumes(g)
		name := g.conf.get("name")
		if g.typ == "lxc" {
			name = g.conf.get("hostname")
		}
		typ := g.typ
		s.mu.Unlock()
		leaf := 0
		if len(vols) == 0 {
			leaf = 1
		}
		children = append(children, map[string]any{"id": id, "type": typ, "name": name, "children": vols, "leaf": leaf})
	}
	return map[string]any{"children": children}, nil
}

var (
	reQemuDisk = regexp.MustCompile(`^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$`)
	reLXCMount = regexp.MustCompile(`^mp\d+$`)
)

// backupVolumes: LXC get_backup_volumes (rootfs, mount points) and QEMU
// get_backup_volumes (disks; not CD-ROMs) with their included flag and reason.
func backupVolumes(g *guest) []map[string]any {
	out := []map[string]any{}
	keys := sortedKeys(g.conf.kv)
	for _, k := range keys {
		v := g.conf.kv[k]
		vol, rest, _ := strings.Cut(v, ",")
		opt := map[string]string{}
		for _, kv := range strings.Split(rest, ",") {
			if a, b, ok := strings.Cut(kv, "="); ok {
				opt[a] = b
			}
		}
		if strings.HasPrefix(vol, "volume=") || strings.HasPrefix(vol, "file=") {
			_, vol, _ = strings.Cut(vol, "=")
		}
		var included bool
		var reason string
		if g.typ == "lxc" {
			switch {
			case k == "rootfs":
				included, reason = true, "rootfs"
			case reLXCMount.MatchString(k):
				switch {
				case !strings.Contains(vol, ":"):
					included, reason = false, "not a volume"
				case opt["backup"] == "1":
					included, reason = true, "enabled"
				default:
					included, reason = false, "disabled"
				}
			default:
				continue
			}
		} else {
			if !reQemuDisk.MatchString(k) || opt["media"] == "cdrom" {
				continue
			}
			included, reason = opt["backup"] != "0", "backup=yes"
			if _, ok := opt["backup"]; ok {
				reason = "backup=no" // PVE's get_backup_volumes says "no" whenever backup= is set
			}
			if strings.HasPrefix(k, "efidisk") && g.conf.get("bios") != "ovmf" {
				included, reason = false, "efidisk but no OVMF BIOS"
			}
		}
		out = append(out, map[string]any{"id": fmt.Sprintf("%d:%s", g.vmid, k), "name": vol, "included": b2i(included), "reason": reason, "leaf": 1})
	}
	return out
}

func (s *Sim) hNotBackedUp(rq *request) (any, error) {
	if err := s.checkAll(rq.auth, "/", "Sys.Audit"); err != nil {
		return nil, err
	}
	// get_included_vmids: every vzdump job counts, enabled or not
	s.jobs.mu.Lock()
	s.jobs.init()
	var all []map[string]string
	for _, id := range s.jobs.order {
		opts := make(map[string]string)
		for k, v := range s.jobs.jobs[id].opts {
			opts[k] = v
		}
		all = append(all, opts)
	}
	s.jobs.mu.Unlock()
	covered := map[int]bool{}
	for _, opts := range all {
		per, _ := s.includedGuests(opts)
		for _, l := range per {
			for _, id := range l {
				covered[id] = true
			}
		}
	}
	s.mu.Lock()
	ids := s.sortedVMIDs()
	s.mu.Unlock()
	out := []map[string]any{}
	for _, id := range ids {
		if covered[id] || !s.can(rq.auth, fmt.Sprintf("/vms/%d", id), "VM.Audit") {
			continue
		}
		s.mu.Lock()
		g := s.guests[id]
		if g == nil {
			s.mu.Unlock()
			continue
		}
		e := map[string]any{"vmid": id, "type": g.typ}
		name := g.conf.get("name")
		if g.typ == "lxc" {
			name = g.conf.get("hostname")
		}
		if name != "" {
			e["name"] = name
		}
		s.mu.Unlock()
		out = append(out, e)
	}
	return out, nil
}
