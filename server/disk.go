package server

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// diskFull reports whether the data directory's disk has less free space
// than MinFreeDisk. Badger writes its logs through memory-mapped files, and
// a write to a full disk there is a SIGBUS that kills the process, not an
// error; so ttq stops writing while there is still room, and keeps serving
// reads.
func (s *Server) diskFull() (free int64, full bool) {
	if s.cfg.DiskFree == nil || s.cfg.MinFreeDisk <= 0 {
		return 0, false
	}
	free, err := s.cfg.DiskFree()
	if err != nil {
		s.log.Warn("cannot read the free space of the data directory's disk", "err", err)
		return 0, false
	}
	return free, free < s.cfg.MinFreeDisk
}

// diskFullMessage is the one-line answer for a write refused for space.
func (s *Server) diskFullMessage(free int64, what string) string {
	return fmt.Sprintf("only %d MiB free on the data directory's disk (--min-free-disk %d MiB): %s refused until space is freed; reads keep working", free>>20, s.cfg.MinFreeDisk>>20, what)
}

// writeDiskFull answers 507 for a write refused for space.
func (s *Server) writeDiskFull(w http.ResponseWriter, free int64, what string) {
	writeError(w, http.StatusInsufficientStorage, "disk_full", s.diskFullMessage(free, what))
}

// registerDiskMetric exports the free space the check reads.
func (s *Server) registerDiskMetric() {
	if s.cfg.DiskFree == nil {
		return
	}
	s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ttq_disk_free_bytes",
		Help: "Free bytes on the data directory's disk; ingest and DDL stop below --min-free-disk.",
	}, func() float64 {
		free, err := s.cfg.DiskFree()
		if err != nil {
			return -1
		}
		return float64(free)
	}))
}
