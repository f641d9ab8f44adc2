package aws

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/aquarium-fish/aquarium-fish/internal/clock"
)

// ttlCache is a small key/value cache whose entries expire after ttl on the
// injected clock. Loads run outside the lock; concurrent loads of one key are
// collapsed into a single call (singleflight), so a burst of allocations of
// the same label costs one AWS lookup.
type ttlCache[V any] struct {
	clk   clock.Clock
	ttl   time.Duration
	mu    sync.Mutex
	items map[string]cacheItem[V]
	group singleflight.Group
}

type cacheItem[V any] struct {
	val     V
	expires time.Time
}

func newTTLCache[V any](clk clock.Clock, ttl time.Duration) *ttlCache[V] {
	return &ttlCache[V]{clk: clk, ttl: ttl, items: map[string]cacheItem[V]{}}
}

// get returns the cached value or loads it with load (never under the lock).
// Errors are not cached.
func (c *ttlCache[V]) get(ctx context.Context, key string, load func(context.Context) (V, error)) (V, error) {
	if v, ok := c.peek(key); ok {
		return v, nil
	}
	res, err, _ := c.group.Do(key, func() (any, error) {
		if v, ok := c.peek(key); ok {
			return v, nil
		}
		v, err := load(ctx)
		if err != nil {
			return v, err
		}
		c.put(key, v)
		return v, nil
	})
	if err != nil {
		var zero V
		return zero, err
	}
	return res.(V), nil
}

func (c *ttlCache[V]) peek(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[key]
	if !ok || !c.clk.Now().Before(it.expires) {
		var zero V
		return zero, false
	}
	return it.val, true
}

func (c *ttlCache[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items[key] = cacheItem[V]{val: v, expires: c.clk.Now().Add(c.ttl)}
}

// update changes a cached value in place (if present and fresh).
func (c *ttlCache[V]) update(key string, fn func(V) V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[key]
	if !ok || !c.clk.Now().Before(it.expires) {
		return
	}
	it.val = fn(it.val)
	c.items[key] = it
}

// invalidate drops one key.
func (c *ttlCache[V]) invalidate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, key)
}
