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
	upid       UPID
	due        time.Time     // when this task wants its next look
	delay      time.Duration // the interval after that
	lastListed time.Time     // when the task list last showed it
	noLogTurns bool          // its log cannot be read: list looks only
	updates    chan taskUpdate
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
	// a first look soon, for the many tasks that take a moment, then every
	// taskPollMax
	tw := &taskWaiter{upid: upid, due: now.Add(nw.c.pollMin), delay: nw.c.taskPollMax(), lastListed: now, updates: make(chan taskUpdate, 1)}
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
	if len(nw.waiters) == 1 {
		for _, tw := range nw.waiters {
			if !tw.noLogTurns && now.Sub(tw.lastListed) < listLookEvery {
				// alone on the node: its own log is as cheap a look, and
				// carries its progress
				tw.due = now.Add(tw.delay)
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
	alone := false
	nw.mu.Lock()
	if err != nil {
		nw.failures++
		var ae *APIError
		if nw.failures >= maxListFailures || (errors.As(err, &ae) && ae.StatusCode < 500) {
			nw.unusable = true
			alone = true
		}
	} else {
		nw.failures = 0
	}
	nw.mu.Unlock()
	for _, tw := range waiters {
		var u taskUpdate
		switch st, ok := list[tw.upid.Raw]; {
		case alone:
			u.alone = true
		case err == nil && ok:
			u.status = st
		default:
			u.missing = true
		}
		nw.mu.Lock()
		tw.due = now.Add(tw.delay)
		if err == nil {
			tw.lastListed = now
		}
		nw.mu.Unlock()
		deliver(tw, u)
	}
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
	UPID    string              `json:"upid"`
	Status  string              `json:"status"`
	EndTime proxmox.StringOrInt `json:"endtime"`
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
		st := strings.TrimSpace(it.Status)
		if st == "" || strings.EqualFold(st, "running") {
			if it.EndTime == 0 {
				out[it.UPID] = taskStatus{Status: "running"}
				continue
			}
		}
		out[it.UPID] = taskStatus{Status: "stopped", ExitStatus: st}
	}
	return out, nil
}
