package pve

import (
	"context"
	"encoding/json"
	"net/url"
	"sync"
	"time"
)

// lookupTTL bounds how old a shared answer about the cluster's layout (which
// node a guest is on, which storages a node has) may be. These change by
// migration or configuration, not by anything a backup does, so a plan of
// 400 backups asks once instead of once per backup, and the create that
// follows a plan check reuses its answer.
const lookupTTL = 10 * time.Second

// lookupCache shares GET answers about the cluster's layout within one
// provider process. A guest's status or lock is never read from it.
type lookupCache struct {
	mu      sync.Mutex
	entries map[string]*lookupEntry
}

type lookupEntry struct {
	mu  sync.Mutex // one request at a time per key: parallel plans wait for it
	at  time.Time
	raw json.RawMessage
}

// forget drops every shared answer (after a write that can move or create a
// guest: a restore, a guest's deletion).
func (lc *lookupCache) forget() {
	lc.mu.Lock()
	lc.entries = nil
	lc.mu.Unlock()
}

// getShared is a GET whose answer is shared for lookupTTL.
func (c *Client) getShared(ctx context.Context, path string, q url.Values, out any) error {
	key := path + "?" + q.Encode()
	lc := &c.lookups
	lc.mu.Lock()
	if lc.entries == nil {
		lc.entries = map[string]*lookupEntry{}
	}
	e := lc.entries[key]
	if e == nil {
		e = &lookupEntry{}
		lc.entries[key] = e
	}
	lc.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.raw == nil || time.Since(e.at) > lookupTTL {
		var raw json.RawMessage
		if err := c.get(ctx, path, q, &raw); err != nil {
			return err
		}
		e.raw, e.at = raw, time.Now()
	}
	return json.Unmarshal(e.raw, out)
}
