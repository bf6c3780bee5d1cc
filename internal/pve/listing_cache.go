package pve

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// listingTTL bounds how long a shared listing answers refreshes. A refresh of
// many backups reads each storage once; a listing older than this (changes
// made outside Terraform meanwhile) is read again.
const listingTTL = 30 * time.Second

// listingCache shares storage listings between the refreshes of one provider
// run: 500 backups on two storages cost two listings instead of 500. Every
// write this client makes (POST, PUT, DELETE) empties it, before and after the
// request, so an answer never predates the provider's own create, update or
// delete.
type listingCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[string]*listingEntry
}

type listingEntry struct {
	gen   uint64
	at    time.Time
	done  chan struct{}
	byVol map[string]Backup
	err   error
}

// invalidate forgets every listing, including those being read now.
func (lc *listingCache) invalidate() {
	lc.mu.Lock()
	lc.gen++
	lc.entries = nil
	lc.mu.Unlock()
}

// listing returns the backups on storage as seen from node, read at most once
// per generation and TTL by all callers together.
func (c *Client) sharedListing(ctx context.Context, node, storage string) (map[string]Backup, error) {
	lc := &c.listings
	key := node + "\x00" + storage
	lc.mu.Lock()
	e := lc.entries[key]
	if e != nil && e.gen == lc.gen && (!isDone(e.done) || (e.err == nil && time.Since(e.at) < listingTTL)) {
		lc.mu.Unlock()
		select {
		case <-e.done:
			return e.byVol, e.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e = &listingEntry{gen: lc.gen, at: time.Now(), done: make(chan struct{})}
	if lc.entries == nil {
		lc.entries = map[string]*listingEntry{}
	}
	lc.entries[key] = e
	lc.mu.Unlock()

	list, err := c.listContent(ctx, node, storage, 0)
	if err == nil {
		e.byVol = make(map[string]Backup, len(list))
		for _, b := range list {
			e.byVol[b.VolID] = b
		}
	}
	e.err = err
	close(e.done)
	return e.byVol, e.err
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// RefreshBackup is GetBackup for a refresh: the backup is looked up in a
// listing of its storage shared by every refresh of this run (see
// listingCache), and asked for by name only when that listing does not show
// it (hidden from these credentials, or gone).
func (c *Client) RefreshBackup(ctx context.Context, node, volid string) (*Backup, error) {
	storage, _, err := ParseVolID(volid)
	if err != nil {
		return nil, err
	}
	bn, perr := ParseBackupVolID(volid)
	if node == "" {
		if node, err = c.resolveBackupNode(ctx, bn); err != nil {
			return nil, fmt.Errorf("reading backup %s: %w", volid, err)
		}
	}
	vmid := 0
	if perr == nil {
		vmid = bn.VMID
	}
	b, listed, err := c.ListedBackup(ctx, node, volid)
	if err != nil {
		return nil, fmt.Errorf("reading backup %s: %w", volid, err)
	}
	if listed {
		return b, nil
	}
	return c.getUnlistedBackup(ctx, node, storage, volid, vmid)
}

// ListedBackup looks volid up in the shared listing of its storage on node
// and nowhere else: listed is false when the listing does not show it (hidden
// from these credentials, or gone), which RefreshBackup then asks PVE about.
func (c *Client) ListedBackup(ctx context.Context, node, volid string) (b *Backup, listed bool, err error) {
	storage, _, err := ParseVolID(volid)
	if err != nil {
		return nil, false, err
	}
	byVol, err := c.sharedListing(ctx, node, storage)
	if err != nil {
		return nil, false, err
	}
	if found, ok := byVol[volid]; ok {
		return &found, true, nil
	}
	return nil, false, nil
}
