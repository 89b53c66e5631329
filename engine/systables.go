package engine

import (
	"sync"

	"ttq/catalog"
	"ttq/types"
)

// SystemTableFunc produces the rows of a system table that another part of
// the process owns (the Kafka daemon's ttq_kafka).
type SystemTableFunc func() (cols []catalog.Column, rows [][]types.Value)

type extraTables struct {
	mu sync.RWMutex // guards m
	m  map[string]SystemTableFunc
}

// RegisterSystemTable adds a system table answered by fn; names start with
// ttq_ by convention and must not collide with the built-in ones.
func (e *Engine) RegisterSystemTable(name string, fn SystemTableFunc) {
	e.extra.mu.Lock()
	defer e.extra.mu.Unlock()
	if e.extra.m == nil {
		e.extra.m = map[string]SystemTableFunc{}
	}
	e.extra.m[catalog.Normalize(name)] = fn
}

func (e *Engine) extraTable(name string) (SystemTableFunc, bool) {
	e.extra.mu.RLock()
	defer e.extra.mu.RUnlock()
	fn, ok := e.extra.m[name]
	return fn, ok
}
