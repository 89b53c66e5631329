package engine

import (
	"context"
	"sort"
)

// ExpectPartitions declares the partitions that gate a source's watermark
// (every partition of its Kafka topic), durably. A partition that has carried
// no watermark holds the source at "nothing sealed" beyond its floor. Adding
// partitions later (a topic that grew) is allowed; partitions are never
// removed, since Kafka topics do not shrink.
func (e *Engine) ExpectPartitions(ctx context.Context, source string, parts []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.closed.Load() {
		return ErrClosed
	}
	s := e.st.Tracker.Sources[source]
	if s == nil {
		return nil
	}
	set := map[string]bool{}
	for _, p := range s.Expected {
		set[p] = true
	}
	changed := false
	for _, p := range parts {
		if !set[p] {
			set[p] = true
			changed = true
		}
	}
	if !changed {
		return nil
	}
	all := make([]string, 0, len(set))
	for p := range set {
		all = append(all, p)
	}
	sort.Strings(all)
	saved := e.st.clone()
	e.st.Tracker.Expect(source, all)
	if err := e.commitStateLocked(false, nil, 0); err != nil {
		e.st = saved
		return err
	}
	e.publishLocked()
	return nil
}
