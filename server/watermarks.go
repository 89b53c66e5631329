package server

import (
	"net/http"

	"ttq/engine"
	"ttq/timeline"
)

// watermarksResponse is the answer of GET /v1/watermarks.
type watermarksResponse struct {
	Global  *string           `json:"global"`
	Sources []sourceWatermark `json:"sources"`
}

type sourceWatermark struct {
	Source    string  `json:"source"`
	Kind      string  `json:"kind"`
	Watermark *string `json:"watermark"`
	MaxTS     *string `json:"max_ts"`
	// HoldsGlobal is true when this source's watermark is G.
	HoldsGlobal bool `json:"holds_global"`
	// TrailsUS is how far the watermark is behind the most advanced
	// source's watermark, in microseconds (null without a watermark).
	TrailsUS *int64 `json:"trails_us"`
	// LagUS is how far the watermark is behind the newest record seen from
	// the source, in microseconds (null without both).
	LagUS *int64 `json:"lag_us"`
	// Since is G when this source's watermark last moved.
	Since    *string `json:"since"`
	Applied  int64   `json:"applied"`
	Rejected int64   `json:"rejected"`
}

func (s *Server) handleWatermarks(w http.ResponseWriter, r *http.Request) {
	g, sources := s.e.Watermarks()
	writeJSON(w, http.StatusOK, watermarksBody(g, sources))
}

func watermarksBody(g int64, sources []engine.SourceWatermark) watermarksResponse {
	lead := timeline.None
	for _, sw := range sources {
		lead = max(lead, sw.W)
	}
	resp := watermarksResponse{Global: formatTime(g), Sources: []sourceWatermark{}}
	for _, sw := range sources {
		out := sourceWatermark{Source: sw.Source, Kind: sw.Kind, Watermark: formatTime(sw.W), MaxTS: formatTime(sw.MaxTS),
			HoldsGlobal: sw.Holding && sw.W != timeline.None, Since: formatTime(sw.Since), Applied: sw.Applied, Rejected: sw.Rejected}
		if sw.W != timeline.None {
			t := lead - sw.W
			out.TrailsUS = &t
			if sw.MaxTS != timeline.None {
				l := max(sw.MaxTS-sw.W, 0)
				out.LagUS = &l
			}
		}
		resp.Sources = append(resp.Sources, out)
	}
	return resp
}
