package idpstore

import (
	"context"
	"strings"
)

// Client is an OAuth client of a realm.
type Client struct {
	// ID is the internal UUID (Keycloak's "id", gocloak's idOfClient).
	ID      string
	RealmID string
	// ClientID is the public name ("clientId").
	ClientID           string
	Name               string
	Secret             string
	Enabled            bool
	PublicClient       bool
	BearerOnly         bool
	DirectAccessGrants bool
	ServiceAccounts    bool
	StandardFlow       bool
	FullScopeAllowed   bool
	Protocol           string
	RedirectURIs       []string
	WebOrigins         []string
	Attributes         map[string]string
	// DefaultScopes and OptionalScopes name client scopes.
	DefaultScopes  []string
	OptionalScopes []string
}

const clientCols = `id, realm_id, client_id, name, secret, enabled, public_client, bearer_only,
	direct_access_grants, service_accounts, standard_flow, full_scope_allowed, protocol,
	redirect_uris, web_origins, attributes, default_scopes, optional_scopes`

func scanClient(row interface{ Scan(...any) error }) (*Client, error) {
	var (
		c                                   Client
		uris, origins, attrs, defs, options string
	)
	if err := row.Scan(&c.ID, &c.RealmID, &c.ClientID, &c.Name, &c.Secret, &c.Enabled, &c.PublicClient,
		&c.BearerOnly, &c.DirectAccessGrants, &c.ServiceAccounts, &c.StandardFlow, &c.FullScopeAllowed,
		&c.Protocol, &uris, &origins, &attrs, &defs, &options); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		text string
		dst  any
	}{{uris, &c.RedirectURIs}, {origins, &c.WebOrigins}, {attrs, &c.Attributes}, {defs, &c.DefaultScopes}, {options, &c.OptionalScopes}} {
		if err := fromJSON("client", f.text, f.dst); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// CreateClient inserts a client.
func (s *Store) CreateClient(ctx context.Context, c *Client) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO clients (`+clientCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		c.ID, c.RealmID, c.ClientID, c.Name, c.Secret, b2i(c.Enabled), b2i(c.PublicClient), b2i(c.BearerOnly),
		b2i(c.DirectAccessGrants), b2i(c.ServiceAccounts), b2i(c.StandardFlow), b2i(c.FullScopeAllowed),
		c.Protocol, jsonText(c.RedirectURIs), jsonText(c.WebOrigins), jsonText(c.Attributes),
		jsonText(c.DefaultScopes), jsonText(c.OptionalScopes))
	return mapErr("create client", err)
}

// ClientByID returns the client with internal id in the realm.
func (s *Store) ClientByID(ctx context.Context, realmID, id string) (*Client, error) {
	c, err := scanClient(s.q.QueryRowContext(ctx,
		`SELECT `+clientCols+` FROM clients WHERE realm_id = ? AND id = ?`, realmID, id))
	if err != nil {
		return nil, mapErr("client by id", err)
	}
	return c, nil
}

// ClientByClientID returns the client whose public name is clientID.
func (s *Store) ClientByClientID(ctx context.Context, realmID, clientID string) (*Client, error) {
	c, err := scanClient(s.q.QueryRowContext(ctx,
		`SELECT `+clientCols+` FROM clients WHERE realm_id = ? AND client_id = ?`, realmID, clientID))
	if err != nil {
		return nil, mapErr("client by clientId", err)
	}
	return c, nil
}

// ListClients returns the realm's clients ordered by clientId. A non-empty
// clientID filters: exactly, or as a case-insensitive substring when search
// is set.
func (s *Store) ListClients(ctx context.Context, realmID, clientID string, search bool, first, limit int) ([]*Client, error) {
	q := `SELECT ` + clientCols + ` FROM clients WHERE realm_id = ?`
	args := []any{realmID}
	switch {
	case clientID != "" && search:
		q += ` AND lower(client_id) LIKE ? ESCAPE '\'`
		args = append(args, "%"+likeEscape(strings.ToLower(clientID))+"%")
	case clientID != "":
		q += ` AND client_id = ?`
		args = append(args, clientID)
	}
	q += ` ORDER BY client_id LIMIT ? OFFSET ?`
	args = append(args, limit, first)
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr("list clients", err)
	}
	defer rows.Close()
	var out []*Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, mapErr("list clients", err)
		}
		out = append(out, c)
	}
	return out, mapErr("list clients", rows.Err())
}
