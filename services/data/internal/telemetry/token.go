package telemetry

import (
	"encoding/base64"
	"encoding/json"
)

// pageToken is the content of an opaque page token: which list it
// continues (kind and device) and where (the cursor of the last item).
// Binding the device stops a token from one device paging another's list.
type pageToken struct {
	Kind   string          `json:"k"`
	Device string          `json:"d"`
	Cursor json.RawMessage `json:"c"`
}

func encodeToken(kind, deviceID string, cursor any) string {
	c, err := json.Marshal(cursor)
	if err != nil {
		panic(err) // cursors are plain structs
	}
	b, err := json.Marshal(pageToken{Kind: kind, Device: deviceID, Cursor: c})
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken reads a token made by encodeToken for the same list into
// cursor; anything else is an invalid page_token.
func decodeToken(tok, kind, deviceID string, cursor any) error {
	bad := invalid("page_token", "is not a token of this list")
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return bad
	}
	var t pageToken
	if json.Unmarshal(b, &t) != nil || t.Kind != kind || t.Device != deviceID || json.Unmarshal(t.Cursor, cursor) != nil {
		return bad
	}
	return nil
}
