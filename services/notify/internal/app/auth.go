package app

// WebhookAuth is how a delivery authenticates to its receiver, on top of
// the signature: one of its methods is set.
type WebhookAuth struct {
	Basic  *BasicAuth  `json:"basic,omitempty"`
	Bearer *BearerAuth `json:"bearer,omitempty"`
	OAuth2 *OAuth2Auth `json:"oauth2,omitempty"`
}

// BasicAuth sends Authorization: Basic.
type BasicAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// BearerAuth sends a fixed Authorization: Bearer token.
type BearerAuth struct {
	Token string `json:"token"`
}

// OAuth2Auth fetches a token with the client-credentials grant and sends
// it as Authorization: Bearer.
type OAuth2Auth struct {
	TokenURL     string   `json:"token_url"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Scopes       []string `json:"scopes,omitempty"`
}
