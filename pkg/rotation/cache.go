package rotation

import (
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// VersionCache remembers parsed secret values by secret ARN and version id,
// so that the steps of one rotation, run one after another in the same warm
// function, read each value once.
//
// That is safe because a version's value never changes: Secrets Manager
// refuses to overwrite it. Labels do move, so a step still checks with
// DescribeSecret which version carries AWSCURRENT and AWSPENDING before it
// looks anything up here. An empty cache (a cold start, another instance)
// only means the values are read again.
//
// The values hold passwords, as the function's memory does during a step
// anyway; they stay no longer than the cache's time to live. A nil
// *VersionCache caches nothing.
type VersionCache struct {
	lru *expirable.LRU[versionKey, Credential]
}

type versionKey struct{ arn, versionID string }

// NewVersionCache returns a cache of at most size values, each kept for at
// most ttl (at least a millisecond: the library's clean-up needs a tick).
// A size or ttl of zero or less returns nil, which caches nothing.
func NewVersionCache(size int, ttl time.Duration) *VersionCache {
	if size <= 0 || ttl <= 0 {
		return nil
	}
	return &VersionCache{lru: expirable.NewLRU[versionKey, Credential](size, nil, max(ttl, time.Millisecond))}
}

func (c *VersionCache) get(arn, versionID string) (Credential, bool) {
	if c == nil || arn == "" || versionID == "" {
		return Credential{}, false
	}
	return c.lru.Get(versionKey{arn, versionID})
}

func (c *VersionCache) put(arn, versionID string, v Credential) {
	if c == nil || arn == "" || versionID == "" {
		return
	}
	c.lru.Add(versionKey{arn, versionID}, v)
}

// Len is the number of values held.
func (c *VersionCache) Len() int {
	if c == nil {
		return 0
	}
	return c.lru.Len()
}
