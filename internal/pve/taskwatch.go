package pve

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

// defaultTaskPollMax caps the interval between looks at a running task. A
// task's end is noticed on average half an interval after it happens; at
// 0.48 s that is under a quarter second, and since one request reports on
// every task of a node (see nodeWatcher), waiting for many tasks costs no
// more than waiting for one.
const defaultTaskPollMax = 480 * time.Millisecond

// listLookEvery: a task waited on alone is looked at by reading its own log
// (the last line says when it ended, and its progress reaches the logs on
// the way); the task list is asked at least this often all the same, for a
// task whose worker died without writing its end.
const listLookEvery = 2 * time.Second

// A task alone on its node is looked at on a schedule by its age: often
// while it is young (most tasks are short), then every taskPollMax. When the
// guest's last task of the same type says how long this one will likely take
// (taskHistory, read by the first look), the looks thin out before that and
// come quickly around it, which notices the end sooner with fewer requests.
const (
	youngTaskAge       = 1500 * time.Millisecond // looked at more often until this age
	historyMinDuration = 2 * time.Second         // a shorter expectation is not worth a schedule
)

// lookInterval is the time from one look at a task alone on its node to the
// next, at the task's age, given its expected duration (0: unknown) and the
// base interval (taskPollMax).
func lookInterval(age, expected, base time.Duration) time.Duration {
	if expected >= historyMinDuration {
		margin := max(time.Second, expected/10)
		fast := min(max(margin/15, base*5/12), base) // 0.2 s at the default base
		sparse := min(max(expected/5, base), 4*base) // up to 1.92 s
		switch from := expected - margin; {
		case age < from:
			return max(min(sparse, from-age), fast)
		case age < expected+margin:
			return fast
		}
		return base
	}
	if age < youngTaskAge {
		return base * 5 / 8 // 0.3 s at the default base
	}
	return base
}

// nodeWatchers holds one watcher per node.
type nodeWatchers struct {
	mu    sync.Mutex
	nodes map[string]*nodeWatcher
}

func (ws *nodeWatchers) get(c *Client, node string) *nodeWatcher {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.nodes == nil {
		ws.nodes = map[string]*nodeWatcher{}
	}
	w := ws.nodes[node]
	if w == nil {
		w = &nodeWatcher{c: c, node: node, waiters: map[string]*taskWaiter{}, wake: make(chan struct{}, 1)}
		ws.nodes[node] = w
	}
	return w
}

// nodeWatcher polls one node's task list (GET /nodes/{node}/tasks) for every
// task waited on on that node, so that twenty waits on one node cost one
// request per interval instead of twenty. A node whose task list cannot be
// read (an old PVE, a token without access) is left to per-task polls.
type nodeWatcher struct {
	c       *Client
	node    string
	mu      sync.Mutex
	waiters map[string]*taskWaiter
	running bool
	// unusable: the task list answered with a permanent error; every wait
	// polls its own task's status instead.
	unusable bool
	failures int // task-list looks failed in a row
	wake     chan struct{}
}

// maxListFailures: failed task-list looks in a row after which the node's
// waits poll their own tasks for the rest of the run.
const maxListFailures = 3

// taskWaiter is one task's seat at its node's watcher.
type taskWaiter struct {
	upid        UPID
	seated      time.Time     // when the wait began (just after the task started)
	due         time.Time     // when this task wants its next look
	delay       time.Duration // the interval between looks when the node has other tasks
	expected    time.Duration // how long the guest's last such task took; 0: unknown
	historyRead bool          // the first look alone has asked for the guest's last tasks
	lastListed  time.Time     // when the task list last showed it
	noLogTurns  bool          // its log cannot be read: list looks only
	updates     chan taskUpdate
}

// nextLook is when the look at tw made at now is followed by the next one.
func (tw *taskWaiter) nextLook(now time.Time, alone bool) time.Time {
	if !alone {
		return now.Add(tw.delay)
	}
	return now.Add(lookInterval(now.Sub(tw.seated), tw.expected, tw.delay))
}

// taskUpdate is what one look at the node's task list said about a task.
type taskUpdate struct {
	status taskStatus
	// missing: the list did not show the task (too many newer tasks, or the
	// credentials see only their own), or the look failed: the wait asks
	// for its task's status itself.
	missing bool
	// alone: the node's task list cannot be used; the wait polls its task
	// on its own from now on.
	alone bool
	// logTurn: this look is the task's own log, to be read by the wait (the
	// task is the node's only one; see listLookEvery).
	logTurn bool
}

// subscribe seats a task at the watcher, or returns nil when the node's task
// list is unusable.
func (nw *nodeWatcher) subscribe(upid UPID) *taskWaiter {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.unusable {
		return nil
	}
	now := time.Now()
	// a first look soon, for the many tasks that take a moment, then on the
	// schedule of nextLook
	tw := &taskWaiter{upid: upid, seated: now, due: now.Add(nw.c.pollMin), delay: nw.c.taskPollMax(), lastListed: now, updates: make(chan taskUpdate, 1)}
	nw.waiters[upid.Raw] = tw
	if !nw.running {
		nw.running = true
		go nw.run()
	}
	select {
	case nw.wake <- struct{}{}:
	default:
	}
	return tw
}

// stopLogTurns: the task's log cannot be read; look at the task list only.
func (nw *nodeWatcher) stopLogTurns(tw *taskWaiter) {
	nw.mu.Lock()
	tw.noLogTurns = true
	nw.mu.Unlock()
}

func (nw *nodeWatcher) unsubscribe(tw *taskWaiter) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	delete(nw.waiters, tw.upid.Raw)
}

// run looks at the node's tasks whenever the earliest waiter is due, and
// stops when nobody waits.
func (nw *nodeWatcher) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		nw.mu.Lock()
		if len(nw.waiters) == 0 || nw.unusable {
			nw.running = false
			nw.mu.Unlock()
			return
		}
		next := time.Time{}
		for _, tw := range nw.waiters {
			if next.IsZero() || tw.due.Before(next) {
				next = tw.due
			}
		}
		nw.mu.Unlock()
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-nw.wake:
				if !timer.Stop() {
					<-timer.C
				}
				continue
			}
		}
		nw.look()
	}
}

// look reads the node's task list once and tells every waiter what it says.
func (nw *nodeWatcher) look() {
	now := time.Now() // the next looks are timed from this one's start
	nw.mu.Lock()
	alone := len(nw.waiters) == 1
	if alone {
		for _, tw := range nw.waiters {
			if !tw.historyRead && tw.upid.ID != "" {
				tw.historyRead = true
				nw.mu.Unlock()
				nw.lookWithHistory(tw, now)
				return
			}
			if !tw.noLogTurns && now.Sub(tw.lastListed) < listLookEvery {
				// alone on the node: its own log is as cheap a look, and
				// carries its progress
				tw.due = tw.nextLook(now, true)
				nw.mu.Unlock()
				deliver(tw, taskUpdate{logTurn: true})
				return
			}
		}
	}
	since := time.Time{}
	waiters := make([]*taskWaiter, 0, len(nw.waiters))
	for _, tw := range nw.waiters {
		waiters = append(waiters, tw)
		if since.IsZero() || tw.upid.StartTime.Before(since) {
			since = tw.upid.StartTime
		}
	}
	nw.mu.Unlock()
	if len(waiters) == 0 {
		return
	}
	// a context of its own: the look serves every waiter, and each waiter
	// stops listening on its own context
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := nw.c.taskList(ctx, nw.node, since)
	// A failing look is never the last word on a task: each wait asks its
	// own task's status instead (and rides out failures there, within the
	// transient grace). A task list that fails for good (4xx, or three
	// looks in a row) is given up for the rest of the run.
	giveUp := false
	nw.mu.Lock()
	if err != nil {
		nw.failures++
		var ae *APIError
		if nw.failures >= maxListFailures || (errors.As(err, &ae) && ae.StatusCode < 500) {
			nw.unusable = true
			giveUp = true
		}
	} else {
		nw.failures = 0
	}
	nw.mu.Unlock()
	for _, tw := range waiters {
		var u taskUpdate
		switch st, ok := list[tw.upid.Raw]; {
		case giveUp:
			u.alone = true
		case err == nil && ok:
			u.status = st
		default:
			u.missing = true
		}
		nw.mu.Lock()
		tw.due = tw.nextLook(now, alone)
		if err == nil {
			tw.lastListed = now
		}
		nw.mu.Unlock()
		deliver(tw, u)
	}
}

// lookWithHistory is the first look at a task alone on its node: the node's
// task list for the task's guest and type, newest first, which shows the task
// itself and how long the guest's last one took. A failing look leaves the
// task without an expectation, and its wait asks for its status itself.
func (nw *nodeWatcher) lookWithHistory(tw *taskWaiter, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	items, err := nw.c.taskHistory(ctx, nw.node, tw.upid)
	u := taskUpdate{missing: true}
	nw.mu.Lock()
	if err == nil {
		tw.expected = expectedDuration(items, tw.upid.Raw)
		for _, it := range items {
			if it.UPID == tw.upid.Raw {
				u = taskUpdate{status: it.status()}
				tw.lastListed = now
			}
		}
	}
	tw.due = tw.nextLook(now, true)
	nw.mu.Unlock()
	deliver(tw, u)
}

// taskHistoryDepth: how many of a guest's tasks of one type the first look
// reads (the task itself, and the ones before it).
const taskHistoryDepth = 4

// taskHistory lists the node's newest tasks of upid's type for upid's guest,
// running and ended.
func (c *Client) taskHistory(ctx context.Context, node string, upid UPID) ([]taskListItem, error) {
	q := url.Values{"source": {"all"}, "vmid": {upid.ID}, "typefilter": {upid.Type}, "limit": {strconv.Itoa(taskHistoryDepth)}}
	var items []taskListItem
	if err := c.get(ctx, segPath("nodes", node, "tasks"), q, &items); err != nil {
		return nil, err
	}
	return items, nil
}

// expectedDuration is how long the newest successful task in items other
// than own took (PVE keeps whole seconds), or 0.
func expectedDuration(items []taskListItem, own string) time.Duration {
	for _, it := range items {
		st := strings.TrimSpace(it.Status)
		if it.UPID == own || it.EndTime == 0 || (st != "OK" && !strings.HasPrefix(st, "WARNINGS")) {
			continue
		}
		if d := int64(it.EndTime) - int64(it.StartTime); d >= 0 {
			return time.Duration(d) * time.Second
		}
	}
	return 0
}

// deliver hands a waiter its update, replacing one it has not taken yet.
func deliver(tw *taskWaiter, u taskUpdate) {
	select {
	case <-tw.updates:
	default:
	}
	tw.updates <- u
}

func (c *Client) taskPollMax() time.Duration {
	return min(c.pollMax, defaultTaskPollMax)
}

// taskListItem is one entry of GET /nodes/{node}/tasks.
type taskListItem struct {
	UPID      string              `json:"upid"`
	Status    string              `json:"status"`
	StartTime proxmox.StringOrInt `json:"starttime"`
	EndTime   proxmox.StringOrInt `json:"endtime"`
}

// status is the entry as the task status endpoint would describe it.
func (it taskListItem) status() taskStatus {
	st := strings.TrimSpace(it.Status)
	if (st == "" || strings.EqualFold(st, "running")) && it.EndTime == 0 {
		return taskStatus{Status: "running"}
	}
	return taskStatus{Status: "stopped", ExitStatus: st}
}

// taskList reads the node's tasks started since a time, running and ended,
// as the task status endpoint would describe them.
func (c *Client) taskList(ctx context.Context, node string, since time.Time) (map[string]taskStatus, error) {
	q := url.Values{"source": {"all"}, "since": {strconv.FormatInt(since.Unix(), 10)}, "limit": {"1000"}}
	var items []taskListItem
	if err := c.get(ctx, segPath("nodes", node, "tasks"), q, &items); err != nil {
		return nil, err
	}
	out := make(map[string]taskStatus, len(items))
	for _, it := range items {
		out[it.UPID] = it.status()
	}
	return out, nil
}
