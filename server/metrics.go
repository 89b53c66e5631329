package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ttq/engine"
	"ttq/timeline"
)

// metrics is the server's own Prometheus registry: request metrics kept by
// the handlers, and engine state read at scrape time.
type metrics struct {
	reg *prometheus.Registry

	queryDuration *prometheus.HistogramVec // kind, code
	inFlight      prometheus.Gauge
	overloaded    prometheus.Counter
	httpRecords   *prometheus.CounterVec // result
	httpRejects   *prometheus.CounterVec // reason

	ingestInFlight   prometheus.Gauge
	ingestOverloaded prometheus.Counter
}

func newMetrics(e *engine.Engine, slots, ingestSlots int) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		queryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ttq_query_duration_seconds",
			Help:    "Time to answer POST /v1/sql, by statement kind (select, ddl, meta, other) and outcome code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ttq_queries_in_flight",
			Help: "Statements running now (each holds one of ttq_query_slots).",
		}),
		overloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ttq_queries_overloaded_total",
			Help: "Statements refused with 429 because every query slot stayed busy.",
		}),
		httpRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ttq_http_ingest_records_total",
			Help: "Records received on POST /v1/ingest since the server started, by result (applied, watermark, rejected).",
		}, []string{"result"}),
		httpRejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ttq_http_ingest_rejects_total",
			Help: "Records rejected on POST /v1/ingest since the server started, by reason.",
		}, []string{"reason"}),
		ingestInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ttq_ingest_requests_in_flight",
			Help: "POST /v1/ingest requests being read and applied now (each holds one of ttq_ingest_slots).",
		}),
		ingestOverloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ttq_ingest_overloaded_total",
			Help: "POST /v1/ingest requests refused with 429 because every ingest slot stayed busy.",
		}),
	}
	slotsGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ttq_query_slots", Help: "Statements that may run at once (--max-concurrent-queries)."})
	slotsGauge.Set(float64(slots))
	ingestSlotsGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ttq_ingest_slots", Help: "POST /v1/ingest requests that may be read at once (--max-concurrent-ingest)."})
	ingestSlotsGauge.Set(float64(ingestSlots))
	m.reg.MustRegister(m.queryDuration, m.inFlight, m.overloaded, m.httpRecords, m.httpRejects, slotsGauge,
		m.ingestInFlight, m.ingestOverloaded, ingestSlotsGauge,
		&engineCollector{e: e},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *metrics) observeQuery(kind, code string, d time.Duration) {
	m.queryDuration.WithLabelValues(kind, code).Observe(d.Seconds())
}

// engineCollector reads the engine's durable counters and watermarks at
// scrape time, so they cover every way records arrive and survive restarts.
type engineCollector struct{ e *engine.Engine }

var (
	descRecords = prometheus.NewDesc("ttq_ingest_records_total",
		"Records stored per source since the store was created, by result (applied, rejected).", []string{"source", "result"}, nil)
	descRejects = prometheus.NewDesc("ttq_ingest_rejects_total",
		"Records rejected per source and reason since the store was created (source \"\" when unknown).", []string{"source", "reason"}, nil)
	descSourceWM = prometheus.NewDesc("ttq_source_watermark_seconds",
		"A source's watermark as Unix seconds (absent while it has none).", []string{"source"}, nil)
	descSourceMax = prometheus.NewDesc("ttq_source_max_ts_seconds",
		"Newest record time seen from a source, as Unix seconds.", []string{"source"}, nil)
	descSourceLag = prometheus.NewDesc("ttq_source_watermark_lag_seconds",
		"How far a source's watermark is behind the newest record seen from it (max_ts - watermark).", []string{"source"}, nil)
	descHolds = prometheus.NewDesc("ttq_source_holds_global",
		"1 when the source's watermark is the global watermark, holding it back.", []string{"source"}, nil)
	descGlobal = prometheus.NewDesc("ttq_global_watermark_seconds",
		"The global watermark G as Unix seconds (absent while nothing is sealed).", nil, nil)
	descSegBytes = prometheus.NewDesc("ttq_segment_cache_bytes",
		"Memory held by the cache of checkpoints kept for scans (--segment-cache).", nil, nil)
	descSegBudget = prometheus.NewDesc("ttq_segment_cache_budget_bytes",
		"The segment cache's budget (-1: off).", nil, nil)
	descSegLoads = prometheus.NewDesc("ttq_segment_cache_loads_total",
		"Checkpoint segments read into the segment cache by a scan that did not find them.", nil, nil)
	descSegHits = prometheus.NewDesc("ttq_segment_cache_hits_total",
		"Scans that found their checkpoint segment in the segment cache.", nil, nil)
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecords, descRejects, descSourceWM, descSourceMax, descSourceLag, descHolds, descGlobal,
		descSegBytes, descSegBudget, descSegLoads, descSegHits} {
		ch <- d
	}
}

func seconds(ts int64) float64 { return float64(ts) / 1e6 }

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	g, sources := c.e.Watermarks()
	if g != timeline.None {
		ch <- prometheus.MustNewConstMetric(descGlobal, prometheus.GaugeValue, seconds(g))
	}
	for _, s := range sources {
		ch <- prometheus.MustNewConstMetric(descRecords, prometheus.CounterValue, float64(s.Applied), s.Source, "applied")
		ch <- prometheus.MustNewConstMetric(descRecords, prometheus.CounterValue, float64(s.Rejected), s.Source, "rejected")
		holds := 0.0
		if s.Holding && s.W != timeline.None {
			holds = 1
		}
		ch <- prometheus.MustNewConstMetric(descHolds, prometheus.GaugeValue, holds, s.Source)
		if s.W != timeline.None {
			ch <- prometheus.MustNewConstMetric(descSourceWM, prometheus.GaugeValue, seconds(s.W), s.Source)
		}
		if s.MaxTS != timeline.None {
			ch <- prometheus.MustNewConstMetric(descSourceMax, prometheus.GaugeValue, seconds(s.MaxTS), s.Source)
			if s.W != timeline.None {
				ch <- prometheus.MustNewConstMetric(descSourceLag, prometheus.GaugeValue, seconds(max(s.MaxTS-s.W, 0)), s.Source)
			}
		}
	}
	sc := c.e.Store().SegmentCacheStats()
	ch <- prometheus.MustNewConstMetric(descSegBytes, prometheus.GaugeValue, float64(sc.Bytes))
	ch <- prometheus.MustNewConstMetric(descSegBudget, prometheus.GaugeValue, float64(sc.Budget))
	ch <- prometheus.MustNewConstMetric(descSegLoads, prometheus.CounterValue, float64(sc.Loads))
	ch <- prometheus.MustNewConstMetric(descSegHits, prometheus.CounterValue, float64(sc.Hits))
	for src, reasons := range c.e.RejectCounts() {
		for reason, n := range reasons {
			ch <- prometheus.MustNewConstMetric(descRejects, prometheus.CounterValue, float64(n), src, reason)
		}
	}
}
