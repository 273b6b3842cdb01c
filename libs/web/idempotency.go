package web

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/comfortech/platform/libs/auth"
)

// IdempotencyHeader is the request header that makes a POST safe to retry.
const IdempotencyHeader = "Idempotency-Key"

// IdempotencyConfig bounds what Idempotency remembers.
type IdempotencyConfig struct {
	// TTL is how long a first answer is replayed; default 24h.
	TTL time.Duration
	// Size bounds the number of remembered answers; default 100,000.
	Size int
}

// idempotencyKey scopes a client's key to its account, method and path, so
// that two accounts (or two endpoints) never share an answer.
type idempotencyKey struct {
	account, method, path, key string
}

// idempotent is one remembered request: in flight until done is closed,
// then its answer.
type idempotent struct {
	fingerprint [sha256.Size]byte
	done        chan struct{}
	status      int
	header      http.Header
	body        []byte
	stored      time.Time
}

// Idempotency answers a retried POST that carries an Idempotency-Key with
// the first answer to it, without running the handler again: the retry of a
// claim or a create after a lost response does not act twice. A key reused
// with a different body is refused (422); a retry while the first request
// still runs is refused (409). Server errors (5xx) are not remembered, so a
// retry after one runs again. It runs after authentication: keys belong to
// the caller's account.
//
// Answers are remembered in this process; behind several replicas a
// client's retries must reach the same one (or be answered again).
func Idempotency(cfg IdempotencyConfig) Middleware {
	if cfg.TTL <= 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.Size <= 0 {
		cfg.Size = 100_000
	}
	cache, _ := lru.New[idempotencyKey, *idempotent](cfg.Size)
	var mu sync.Mutex
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := r.Header.Get(IdempotencyHeader)
			if r.Method != http.MethodPost || key == "" {
				next.ServeHTTP(w, r)
				return
			}
			if len(key) > 255 {
				writeJSON(w, http.StatusBadRequest, Failure{Error: ErrorBody{Code: "INVALID_ARGUMENT",
					Message: "Idempotency-Key longer than 255 characters",
					Details: []FieldDetail{{Field: IdempotencyHeader, Description: "at most 255 characters"}}}})
				return
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				WriteError(w, r, err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var account string
			if p, ok := auth.PrincipalFrom(r.Context()); ok {
				account = p.Subject
			}
			k := idempotencyKey{account: account, method: r.Method, path: r.URL.Path, key: key}
			fp := sha256.Sum256(body)

			mu.Lock()
			prev, ok := cache.Get(k)
			if ok && prev.isDone() && time.Since(prev.stored) > cfg.TTL {
				ok = false
			}
			if !ok {
				entry := &idempotent{fingerprint: fp, done: make(chan struct{})}
				cache.Add(k, entry)
				mu.Unlock()
				entry.run(next, w, r, func() {
					mu.Lock()
					defer mu.Unlock()
					if entry.status >= 500 {
						cache.Remove(k)
					}
				})
				return
			}
			mu.Unlock()

			switch {
			case prev.fingerprint != fp:
				writeJSON(w, http.StatusUnprocessableEntity, Failure{Error: ErrorBody{Code: "FAILED_PRECONDITION",
					Message: "this Idempotency-Key was used with a different request"}})
			case !prev.isDone():
				writeJSON(w, http.StatusConflict, Failure{Error: ErrorBody{Code: "ABORTED",
					Message: "a request with this Idempotency-Key is still in progress"}})
			default:
				prev.replay(w)
			}
		})
	}
}

func (e *idempotent) isDone() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// run serves the first request, recording its answer, then calls finish.
func (e *idempotent) run(next http.Handler, w http.ResponseWriter, r *http.Request, finish func()) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		p := recover()
		e.status, e.header, e.body, e.stored = rec.status, w.Header().Clone(), rec.buf.Bytes(), time.Now()
		if p != nil {
			// A panic is a server error: forget it, let Recover answer.
			e.status = http.StatusInternalServerError
		}
		close(e.done)
		finish()
		if p != nil {
			panic(p)
		}
	}()
	next.ServeHTTP(rec, r)
}

// replay writes the remembered answer.
func (e *idempotent) replay(w http.ResponseWriter) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(e.status)
	_, _ = w.Write(e.body)
}

// recorder passes an answer through while keeping a copy.
type recorder struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
