// Package catalog holds ttq's schema: the declared sources, the tables each
// source owns, and the views defined over them.
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"ttq/types"
)

// Sentinel errors of catalog changes and lookups.
var (
	ErrUnknownSource = errors.New("catalog: unknown source")
	ErrUnknownTable  = errors.New("catalog: unknown table")
	ErrUnknownView   = errors.New("catalog: unknown view")
	ErrExists        = errors.New("catalog: already exists")
	ErrInvalid       = errors.New("catalog: invalid definition")
	ErrInUse         = errors.New("catalog: still in use")
)

// Watermark kinds of a source.
const (
	WatermarkExplicit = "explicit" // the source sends watermark records
	WatermarkBounded  = "bounded"  // W = highest ts seen - MaxDelay
)

// Formats of a source's Kafka messages.
const (
	FormatTTQ      = "ttq"
	FormatDebezium = "debezium"
)

// Source is a declared upstream system. Its watermark gates the global one.
type Source struct {
	Name      string `json:"name"`
	Topic     string `json:"topic"`
	Format    string `json:"format"`
	Watermark string `json:"watermark"`
	MaxDelay  int64  `json:"max_delay_us,omitempty"` // microseconds, for bounded sources
	// Options keeps every WITH option as written, for SHOW SOURCES.
	Options map[string]string `json:"options,omitempty"`
}

// Column is one typed column of a table.
type Column struct {
	Name string     `json:"name"`
	Type types.Type `json:"type"`
}

// Table is a versioned table owned by one source.
type Table struct {
	ID      uint32   `json:"id"`
	Name    string   `json:"name"`
	Source  string   `json:"source"`
	Columns []Column `json:"columns"`
	// PK holds the indexes into Columns of the primary key, in key order.
	PK []int `json:"pk"`
	// Retention in microseconds of timeline; 0 keeps everything.
	Retention int64 `json:"retention_us,omitempty"`
}

// ColumnIndex returns the index of the named column (case-insensitive) or -1.
func (t *Table) ColumnIndex(name string) int {
	for i, c := range t.Columns {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}

// IsKey reports whether column i is part of the primary key.
func (t *Table) IsKey(i int) bool {
	for _, k := range t.PK {
		if k == i {
			return true
		}
	}
	return false
}

// Schema returns the Arrow schema of the table's columns.
func (t *Table) Schema() *arrow.Schema {
	fs := make([]arrow.Field, len(t.Columns))
	for i, c := range t.Columns {
		fs[i] = arrow.Field{Name: c.Name, Type: c.Type.Arrow(), Nullable: !t.IsKey(i)}
	}
	return arrow.NewSchema(fs, nil)
}

// View is a precomputed query over base tables, maintained once per epoch.
type View struct {
	Name  string `json:"name"`
	Query string `json:"query"`
	// Epoch is the epoch length in microseconds; 0 uses the store's default.
	Epoch int64 `json:"epoch_us,omitempty"`
	// ID names the view's rows in the store, like a table's ID.
	ID uint32 `json:"id"`
	// Columns is the view's output schema, fixed when it is created.
	Columns []Column `json:"columns"`
	// PK indexes the columns that identify a view row.
	PK []int `json:"pk"`
	// Created is the first epoch boundary the view answers for.
	Created int64 `json:"created_us"`
}

// Catalog is the whole schema. It is not safe for concurrent mutation; the
// engine serialises DDL and hands readers an immutable Clone.
type Catalog struct {
	Sources map[string]*Source `json:"sources"`
	Tables  map[string]*Table  `json:"tables"`
	Views   map[string]*View   `json:"views"`
	NextID  uint32             `json:"next_id"`
}

// New returns an empty catalog.
func New() *Catalog {
	return &Catalog{Sources: map[string]*Source{}, Tables: map[string]*Table{}, Views: map[string]*View{}, NextID: 1}
}

// Normalize lower-cases an identifier: names in ttq are case-insensitive.
func Normalize(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// Source looks up a source by name.
func (c *Catalog) Source(name string) (*Source, error) {
	s, ok := c.Sources[Normalize(name)]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownSource, name)
	}
	return s, nil
}

// Table looks up a table by name.
func (c *Catalog) Table(name string) (*Table, error) {
	t, ok := c.Tables[Normalize(name)]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTable, name)
	}
	return t, nil
}

// View looks up a view by name.
func (c *Catalog) View(name string) (*View, error) {
	v, ok := c.Views[Normalize(name)]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownView, name)
	}
	return v, nil
}

// AddSource declares a source.
func (c *Catalog) AddSource(s *Source) error {
	s.Name = Normalize(s.Name)
	if s.Name == "" {
		return fmt.Errorf("%w: a source needs a name", ErrInvalid)
	}
	if _, ok := c.Sources[s.Name]; ok {
		return fmt.Errorf("%w: source %q", ErrExists, s.Name)
	}
	if s.Topic == "" {
		s.Topic = s.Name
	}
	if s.Format == "" {
		s.Format = FormatTTQ
	}
	if s.Format != FormatTTQ && s.Format != FormatDebezium {
		return fmt.Errorf("%w: format %q (use 'ttq' or 'debezium')", ErrInvalid, s.Format)
	}
	if s.Watermark == "" {
		s.Watermark = WatermarkExplicit
	}
	if s.Watermark != WatermarkExplicit && s.Watermark != WatermarkBounded {
		return fmt.Errorf("%w: watermark %q (use 'explicit' or 'bounded')", ErrInvalid, s.Watermark)
	}
	if s.Watermark == WatermarkBounded && s.MaxDelay < 0 {
		return fmt.Errorf("%w: max_delay must not be negative", ErrInvalid)
	}
	c.Sources[s.Name] = s
	return nil
}

// AddTable declares a table; its source must exist.
func (c *Catalog) AddTable(t *Table) error {
	t.Name = Normalize(t.Name)
	t.Source = Normalize(t.Source)
	if _, ok := c.Tables[t.Name]; ok {
		return fmt.Errorf("%w: table %q", ErrExists, t.Name)
	}
	if _, ok := c.Views[t.Name]; ok {
		return fmt.Errorf("%w: %q is a view", ErrExists, t.Name)
	}
	if _, ok := c.Sources[t.Source]; !ok {
		return fmt.Errorf("%w %q: declare it first with CREATE SOURCE %s", ErrUnknownSource, t.Source, t.Source)
	}
	if len(t.Columns) == 0 {
		return fmt.Errorf("%w: table %q has no columns", ErrInvalid, t.Name)
	}
	if len(t.PK) == 0 {
		return fmt.Errorf("%w: table %q needs a PRIMARY KEY", ErrInvalid, t.Name)
	}
	seen := map[string]bool{}
	for i := range t.Columns {
		t.Columns[i].Name = Normalize(t.Columns[i].Name)
		n := t.Columns[i].Name
		if seen[n] {
			return fmt.Errorf("%w: column %q appears twice in table %q", ErrInvalid, n, t.Name)
		}
		if strings.HasPrefix(n, "_") {
			return fmt.Errorf("%w: column %q: names starting with _ are reserved", ErrInvalid, n)
		}
		seen[n] = true
	}
	t.ID = c.NextID
	c.NextID++
	c.Tables[t.Name] = t
	return nil
}

// AddView records a view definition.
func (c *Catalog) AddView(v *View) error {
	v.Name = Normalize(v.Name)
	if _, ok := c.Views[v.Name]; ok {
		return fmt.Errorf("%w: view %q", ErrExists, v.Name)
	}
	if _, ok := c.Tables[v.Name]; ok {
		return fmt.Errorf("%w: %q is a table", ErrExists, v.Name)
	}
	v.ID = c.NextID
	c.NextID++
	c.Views[v.Name] = v
	return nil
}

// DropTable removes a table.
func (c *Catalog) DropTable(name string) (*Table, error) {
	t, err := c.Table(name)
	if err != nil {
		return nil, err
	}
	delete(c.Tables, t.Name)
	return t, nil
}

// DropView removes a view.
func (c *Catalog) DropView(name string) (*View, error) {
	v, err := c.View(name)
	if err != nil {
		return nil, err
	}
	delete(c.Views, v.Name)
	return v, nil
}

// DropSource removes a source that owns no tables.
func (c *Catalog) DropSource(name string) (*Source, error) {
	s, err := c.Source(name)
	if err != nil {
		return nil, err
	}
	for _, t := range c.Tables {
		if t.Source == s.Name {
			return nil, fmt.Errorf("%w: source %q owns table %q; drop the table first", ErrInUse, s.Name, t.Name)
		}
	}
	delete(c.Sources, s.Name)
	return s, nil
}

// SourceNames returns the declared sources in name order.
func (c *Catalog) SourceNames() []string { return sortedKeys(c.Sources) }

// TableNames returns the tables in name order.
func (c *Catalog) TableNames() []string { return sortedKeys(c.Tables) }

// ViewNames returns the views in name order.
func (c *Catalog) ViewNames() []string { return sortedKeys(c.Views) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Marshal encodes the catalog for durable storage.
func (c *Catalog) Marshal() ([]byte, error) { return json.Marshal(c) }

// Unmarshal decodes a catalog stored by Marshal.
func Unmarshal(b []byte) (*Catalog, error) {
	c := New()
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("catalog: decode: %w", err)
	}
	if c.Sources == nil {
		c.Sources = map[string]*Source{}
	}
	if c.Tables == nil {
		c.Tables = map[string]*Table{}
	}
	if c.Views == nil {
		c.Views = map[string]*View{}
	}
	return c, nil
}

// Clone returns a deep copy, so readers can keep a consistent catalog while
// DDL changes the live one.
func (c *Catalog) Clone() *Catalog {
	b, err := c.Marshal()
	if err != nil {
		panic(err) // the catalog holds only plain data
	}
	out, err := Unmarshal(b)
	if err != nil {
		panic(err)
	}
	return out
}
