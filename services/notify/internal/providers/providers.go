// Package providers holds the channel senders: FCM HTTP v1 push, a
// Twilio-compatible SMS API, SMTP e-mail, Standard Webhooks, and the dev
// sink that captures messages instead of sending them.
package providers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/wneessen/go-mail"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/google"

	"github.com/comfortech/platform/services/notify/internal/app"
)

// httpResult classifies an HTTP answer: 2xx accepted; 408, 429 and 5xx
// retried (with Retry-After); other 4xx permanent.
func httpResult(resp *http.Response, err error) app.Result {
	if err != nil {
		return app.Result{Err: err, Detail: err.Error()}
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	r := app.Result{Status: resp.StatusCode, Detail: strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, body))}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return r
	}
	r.Err = fmt.Errorf("provider answered %d", resp.StatusCode)
	r.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	r.Permanent = resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout
	return r
}

// retryAfter parses Retry-After (seconds or an HTTP date), capped at an hour.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, time.Hour)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), time.Hour)
	}
	return 0
}

// FCMConfig configures push through FCM HTTP v1.
type FCMConfig struct {
	// BaseURL is https://fcm.googleapis.com unless a test says otherwise.
	BaseURL string
	// ProjectID is the Firebase project.
	ProjectID string
	// CredentialsJSON is the service account's key file content.
	CredentialsJSON []byte
	// TokenURL overrides the key file's token_uri (tests).
	TokenURL string
}

// FCM sends push messages with FCM HTTP v1 (messages:send), authorised by
// an OAuth2 service-account token.
type FCM struct {
	url    string
	client *http.Client
}

// NewFCM returns the FCM sender.
func NewFCM(cfg FCMConfig, base *http.Client) (*FCM, error) {
	jc, err := google.JWTConfigFromJSON(cfg.CredentialsJSON, "https://www.googleapis.com/auth/firebase.messaging")
	if err != nil {
		return nil, fmt.Errorf("fcm credentials: %w", err)
	}
	if cfg.TokenURL != "" {
		jc.TokenURL = cfg.TokenURL
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, base)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &oauth2.Transport{Source: jc.TokenSource(ctx), Base: base.Transport}}
	return &FCM{url: strings.TrimRight(cfg.BaseURL, "/") + "/v1/projects/" + url.PathEscape(cfg.ProjectID) + "/messages:send", client: client}, nil
}

// Send implements app.Sender. UNREGISTERED (404) answers Gone.
func (f *FCM) Send(ctx context.Context, m *app.Message) app.Result {
	body, _ := json.Marshal(map[string]any{"message": map[string]any{
		"token":        m.Recipient,
		"notification": map[string]string{"title": m.Subject, "body": m.Body},
		"data":         map[string]string{"notification_id": m.NotificationID},
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, strings.NewReader(string(body)))
	if err != nil {
		return app.Result{Err: err, Detail: err.Error(), Permanent: true}
	}
	req.Header.Set("Content-Type", "application/json")
	r := httpResult(f.client.Do(req))
	if r.Status == http.StatusNotFound || strings.Contains(r.Detail, "UNREGISTERED") {
		r.Gone = true
	}
	return r
}

// TwilioConfig configures SMS through a Twilio-compatible Messages API.
type TwilioConfig struct {
	// BaseURL is https://api.twilio.com unless a test says otherwise.
	BaseURL    string
	AccountSID string
	AuthToken  string
	// From is the sending number.
	From string
}

// Twilio sends SMS with POST /2010-04-01/Accounts/{sid}/Messages.json.
type Twilio struct {
	cfg    TwilioConfig
	client *http.Client
}

// NewTwilio returns the SMS sender.
func NewTwilio(cfg TwilioConfig, client *http.Client) *Twilio {
	return &Twilio{cfg: cfg, client: client}
}

// Send implements app.Sender.
func (t *Twilio) Send(ctx context.Context, m *app.Message) app.Result {
	form := url.Values{"To": {m.Recipient}, "From": {t.cfg.From}, "Body": {m.Body}}
	u := strings.TrimRight(t.cfg.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(t.cfg.AccountSID) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return app.Result{Err: err, Detail: err.Error(), Permanent: true}
	}
	req.SetBasicAuth(t.cfg.AccountSID, t.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return httpResult(t.client.Do(req))
}

// SMTPConfig configures e-mail.
type SMTPConfig struct {
	// Addr is host:port of the relay.
	Addr string
	// Username and Password authenticate (PLAIN) when set.
	Username, Password string
	// From is the sender address.
	From string
	// TLS requires STARTTLS; otherwise it is used when offered.
	TLS bool
}

// SMTP sends e-mail with text and HTML parts (github.com/wneessen/go-mail).
type SMTP struct {
	cfg SMTPConfig
}

// NewSMTP returns the e-mail sender.
func NewSMTP(cfg SMTPConfig) *SMTP { return &SMTP{cfg: cfg} }

// Send implements app.Sender.
func (s *SMTP) Send(ctx context.Context, m *app.Message) app.Result {
	host, portS, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return app.Result{Err: err, Detail: "SMTP_ADDR: " + err.Error(), Permanent: true}
	}
	port, _ := strconv.Atoi(portS)
	msg := mail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return app.Result{Err: err, Detail: err.Error(), Permanent: true}
	}
	if err := msg.To(m.Recipient); err != nil {
		return app.Result{Err: err, Detail: err.Error(), Permanent: true}
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(mail.TypeTextPlain, m.Body)
	if m.HTMLBody != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTMLBody)
	}
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(10 * time.Second), mail.WithTLSPolicy(mail.TLSOpportunistic)}
	if s.cfg.TLS {
		opts[2] = mail.WithTLSPolicy(mail.TLSMandatory)
	}
	if s.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(s.cfg.Username), mail.WithPassword(s.cfg.Password))
	}
	c, err := mail.NewClient(host, opts...)
	if err != nil {
		return app.Result{Err: err, Detail: err.Error(), Permanent: true}
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		r := app.Result{Err: err, Detail: err.Error()}
		if se, ok := errors.AsType[*mail.SendError](err); ok {
			r.Status = se.ErrorCode()
			r.Permanent = se.ErrorCode() >= 500
		}
		return r
	}
	return app.Result{Status: 250, Detail: "250 accepted"}
}

// Webhook posts Standard Webhooks: webhook-id, webhook-timestamp and
// webhook-signature ("v1," + base64 HMAC-SHA256 of id.timestamp.body, one
// per active secret), authenticated as the message's Auth says (basic,
// bearer, or an OAuth2 client-credentials token fetched through the same
// guarded client and reused until it expires). 410 answers Gone.
type Webhook struct {
	client *http.Client
	now    func() time.Time

	mu     sync.Mutex
	tokens map[string]oauth2.TokenSource // by sha256 of the credentials
}

// NewWebhook returns the webhook sender over client (see GuardedClient).
func NewWebhook(client *http.Client) *Webhook {
	return &Webhook{client: client, now: time.Now, tokens: map[string]oauth2.TokenSource{}}
}

// Sign returns the webhook-signature header for secrets.
func Sign(secrets []string, id string, ts int64, body []byte) string {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil {
			continue
		}
		mac := hmac.New(sha256.New, key)
		_, _ = fmt.Fprintf(mac, "%s.%d.", id, ts)
		_, _ = mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " ")
}

// Send implements app.Sender.
func (w *Webhook) Send(ctx context.Context, m *app.Message) app.Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Recipient, strings.NewReader(string(m.JSON)))
	if err != nil {
		return app.Result{Err: err, Detail: err.Error(), Permanent: true}
	}
	ts := w.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", m.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(m.Secrets, m.ID, ts, m.JSON))
	if res, ok := w.authorize(req, m.Auth); !ok {
		return res
	}
	r := httpResult(w.client.Do(req))
	if errors.Is(r.Err, ErrForbiddenAddress) {
		r.Permanent = true
	}
	if r.Status == http.StatusUnauthorized && m.Auth != nil && m.Auth.OAuth2 != nil {
		// The token may have been revoked: the next attempt fetches another.
		w.forget(m.Auth.OAuth2)
		r.Permanent = false
	}
	r.Gone = r.Status == http.StatusGone
	return r
}

// authorize sets req's Authorization as a says; when it cannot (no OAuth2
// token), it returns the result to record and false.
func (w *Webhook) authorize(req *http.Request, a *app.WebhookAuth) (app.Result, bool) {
	switch {
	case a == nil:
	case a.Basic != nil:
		req.SetBasicAuth(a.Basic.Username, a.Basic.Password)
	case a.Bearer != nil:
		req.Header.Set("Authorization", "Bearer "+a.Bearer.Token)
	case a.OAuth2 != nil:
		tok, err := w.tokenSource(a.OAuth2).Token()
		if err != nil {
			r := app.Result{Err: err, Detail: "oauth2 token: " + err.Error()}
			if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok && re.Response != nil {
				code := re.Response.StatusCode
				r.Permanent = code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout
			}
			if errors.Is(err, ErrForbiddenAddress) {
				r.Permanent = true
			}
			return r, false
		}
		tok.SetAuthHeader(req)
	}
	return app.Result{}, true
}

// tokenKey identifies OAuth2 credentials without keeping the secret.
func tokenKey(a *app.OAuth2Auth) string {
	h := sha256.New()
	for _, v := range append([]string{a.TokenURL, a.ClientID, a.ClientSecret}, a.Scopes...) {
		_, _ = io.WriteString(h, v)
		_, _ = h.Write([]byte{0})
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// tokenSource returns the client-credentials token source of a, which
// reuses a token until it expires.
func (w *Webhook) tokenSource(a *app.OAuth2Auth) oauth2.TokenSource {
	key := tokenKey(a)
	w.mu.Lock()
	defer w.mu.Unlock()
	if ts, ok := w.tokens[key]; ok {
		return ts
	}
	cc := clientcredentials.Config{ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL, Scopes: a.Scopes}
	ts := cc.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, w.client))
	w.tokens[key] = ts
	return ts
}

// forget drops a's token source, and with it its token.
func (w *Webhook) forget(a *app.OAuth2Auth) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.tokens, tokenKey(a))
}

// ErrForbiddenAddress is the SSRF guard's refusal.
var ErrForbiddenAddress = errors.New("address not allowed")

// CheckIP refuses loopback, private, link-local, unspecified and
// multicast addresses unless allowPrivate.
func CheckIP(ip netip.Addr, allowPrivate bool) error {
	ip = ip.Unmap()
	if allowPrivate {
		return nil
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || netip.MustParsePrefix("100.64.0.0/10").Contains(ip) {
		return fmt.Errorf("%w: %s is a private, loopback or link-local address", ErrForbiddenAddress, ip)
	}
	return nil
}

// CheckHost refuses a literal IP the guard would refuse (names are checked
// when dialled, after resolution, so DNS rebinding cannot get through).
func CheckHost(host string, allowPrivate bool) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		return CheckIP(ip, allowPrivate)
	}
	if !allowPrivate && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, host)
	}
	return nil
}

// GuardedClient returns an HTTP client for webhooks whose dialer checks
// every resolved address at connect time (SSRF guard) and that does not
// follow redirects.
func GuardedClient(allowPrivate bool, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
		}
		return CheckIP(ap.Addr(), allowPrivate)
	}}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = d.DialContext
	t.Proxy = nil
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Timeout: timeout, Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Sink captures messages in the dev inbox instead of sending them.
type Sink struct {
	store interface {
		AddSinkMessage(ctx context.Context, m *app.SinkMessage) error
	}
}

// NewSink returns the dev sink over store.
func NewSink(store interface {
	AddSinkMessage(ctx context.Context, m *app.SinkMessage) error
}) *Sink {
	return &Sink{store: store}
}

// Send implements app.Sender.
func (s *Sink) Send(ctx context.Context, m *app.Message) app.Result {
	err := s.store.AddSinkMessage(ctx, &app.SinkMessage{ID: uuid.NewString(), Channel: m.Channel, Recipient: m.Recipient,
		Subject: m.Subject, Body: m.Body, HTMLBody: m.HTMLBody, NotificationID: m.NotificationID, Time: time.Now().UTC()})
	if err != nil {
		return app.Result{Err: err, Detail: err.Error()}
	}
	return app.Result{Detail: "captured by the dev sink"}
}
