package kafka

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"ttq/catalog"
	"ttq/types"
)

// Name keys the daemon in the server's /healthz body.
func (d *Daemon) Name() string { return "kafka" }

// Health reports the daemon's status; it is working when connected (or
// still starting).
func (d *Daemon) Health() (any, bool) {
	st := d.Status()
	return st, st.State == StateConnected || st.State == StateStarting
}

// Collector exports per-partition offsets, high watermarks and lag, and the
// daemon's state.
func (d *Daemon) Collector() prometheus.Collector { return collector{d} }

var (
	descOffset = prometheus.NewDesc("ttq_kafka_partition_offset",
		"Next offset to apply per partition; everything below it is durable in the store.", []string{"topic", "partition"}, nil)
	descHigh = prometheus.NewDesc("ttq_kafka_partition_high_watermark",
		"The partition's end offset as last seen by the daemon.", []string{"topic", "partition"}, nil)
	descLag = prometheus.NewDesc("ttq_kafka_partition_lag",
		"Messages between the stored offset and the partition's end.", []string{"topic", "partition"}, nil)
	descState = prometheus.NewDesc("ttq_kafka_state",
		"1 for the daemon's current state (starting, connected, retrying, stalled, stopped).", []string{"state"}, nil)
	descMessages = prometheus.NewDesc("ttq_kafka_messages_total",
		"Kafka messages consumed by this process.", nil, nil)
)

type collector struct{ d *Daemon }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOffset, descHigh, descLag, descState, descMessages} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.Status()
	for _, p := range st.Partitions {
		part := itoa(p.Partition)
		ch <- prometheus.MustNewConstMetric(descOffset, prometheus.GaugeValue, float64(p.Offset), p.Topic, part)
		if p.HighWatermark >= 0 {
			ch <- prometheus.MustNewConstMetric(descHigh, prometheus.GaugeValue, float64(p.HighWatermark), p.Topic, part)
			ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(p.Lag), p.Topic, part)
		}
	}
	for _, s := range []State{StateStarting, StateConnected, StateRetrying, StateStalled, StateStopped} {
		v := 0.0
		if st.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, string(s))
	}
	ch <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, float64(st.Messages))
}

func itoa(i int) string { return types.Int(int64(i)).Text() }

// SystemTable answers ttq_kafka: one row per partition the daemon reads.
func (d *Daemon) SystemTable() ([]catalog.Column, [][]types.Value) {
	cols := []catalog.Column{
		// Names avoid SQL keywords (stream, partition, offset) so they need
		// no quoting.
		{Name: "topic_partition", Type: types.Varchar}, {Name: "topic", Type: types.Varchar}, {Name: "part", Type: types.BigInt},
		{Name: "sources", Type: types.Varchar}, {Name: "next_offset", Type: types.BigInt}, {Name: "end_offset", Type: types.BigInt},
		{Name: "lag", Type: types.BigInt}, {Name: "state", Type: types.Varchar}, {Name: "last_error", Type: types.Varchar},
	}
	st := d.Status()
	var rows [][]types.Value
	for _, p := range st.Partitions {
		hw, lag := types.NullValue, types.NullValue
		if p.HighWatermark >= 0 {
			hw, lag = types.Int(p.HighWatermark), types.Int(p.Lag)
		}
		state := "reading"
		if st.StalledOn == p.Stream {
			state = "stalled"
		}
		errv := types.NullValue
		if p.Error != "" {
			errv = types.String(p.Error)
		}
		rows = append(rows, []types.Value{types.String(p.Stream), types.String(p.Topic), types.Int(int64(p.Partition)),
			types.String(strings.Join(p.Sources, ",")), types.Int(p.Offset), hw, lag, types.String(state), errv})
	}
	return cols, rows
}
