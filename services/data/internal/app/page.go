package app

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Page sizes of the lists without sizes of their own (the protos document
// them).
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Page sizes of the fleet list (datav1.ListFleetDevicesRequest).
const (
	DefaultFleetPageSize = 100
	MaxFleetPageSize     = 1000
)

// Cursor is the sort key of the last row of a page: lists continue after
// it (keyset pagination), so pages stay stable while rows are added. The
// zero Cursor starts at the beginning.
type Cursor struct {
	// Time is the first sort column, as Unix microseconds (0 when the list
	// sorts by ID alone).
	Time int64 `json:"t,omitempty"`
	// ID breaks ties and is the only key of lists sorted by id.
	ID string `json:"i"`
}

// IsZero reports whether c is the start of a list.
func (c Cursor) IsZero() bool { return c == Cursor{} }

// PageRequest is a list request's paging fields.
type PageRequest struct {
	Size  int32
	Token string
}

// encodeToken makes the opaque next_page_token for c: base64url of its
// JSON. It is not signed: a forged token only moves within what the
// caller may list anyway.
func encodeToken(c Cursor) string {
	b, _ := json.Marshal(c) // cannot fail for this struct
	return base64.RawURLEncoding.EncodeToString(b)
}

// parsePage validates a page request and returns its cursor and the row
// limit to ask the store for (one more than the page, to learn whether a
// next page exists).
func parsePage(p PageRequest) (Cursor, int, error) {
	return ParsePage(p, DefaultPageSize, MaxPageSize)
}

// ParsePage is parsePage for a list with its own default and largest page
// sizes (the audit log's and the fleet's 100 and 1000).
func ParsePage(p PageRequest, defaultSize, maxSize int) (Cursor, int, error) {
	size := int(p.Size)
	switch {
	case size < 0 || size > maxSize:
		return Cursor{}, 0, invalid("page_size", fmt.Sprintf("must be between 0 and %d", maxSize))
	case size == 0:
		size = defaultSize
	}
	var c Cursor
	if p.Token != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.Token)
		if err != nil || json.Unmarshal(b, &c) != nil || c.ID == "" {
			return Cursor{}, 0, invalid("page_token", "malformed page token")
		}
	}
	return c, size + 1, nil
}

// NextPage trims rows fetched with a limit from ParsePage and returns the
// token of the next page ("" on the last one).
func NextPage[T any](rows []T, limit int, key func(T) Cursor) ([]T, string) {
	return page(rows, limit, key)
}

// page trims rows fetched with limit = size+1 to size and returns the
// token of the next page ("" on the last one).
func page[T any](rows []T, limit int, key func(T) Cursor) ([]T, string) {
	if len(rows) < limit {
		return rows, ""
	}
	rows = rows[:limit-1]
	return rows, encodeToken(key(rows[len(rows)-1]))
}
