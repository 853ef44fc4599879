package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// DefaultTokenReloadInterval is how often the gateway looks whether --auth-token-file changed.
const DefaultTokenReloadInterval = time.Second

// bearerTokens holds the digest of the token /api/ requests must carry. With a token file it is
// read again whenever the file changes (a rotated Secret, whose mounted file the kubelet swaps),
// so that rotating the token needs no restart.
type bearerTokens struct {
	digest atomic.Pointer[[sha256.Size]byte]
	file   string
}

// newBearerTokens answers the token holder: the file's token when file is set, else the fixed
// token; nil when neither is (no authentication).
func newBearerTokens(token, file string) (*bearerTokens, error) {
	t := &bearerTokens{file: file}
	switch {
	case file != "":
		if err := t.reload(); err != nil {
			return nil, err
		}
	case token != "":
		t.set(token)
	default:
		return nil, nil
	}
	return t, nil
}

func (t *bearerTokens) set(token string) {
	sum := sha256.Sum256([]byte(token))
	t.digest.Store(&sum)
}

// ReadTokenFile reads a bearer token from path: its content, blanks trimmed, never empty.
func ReadTokenFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the auth token file: %w", err)
	}
	token := strings.TrimSpace(string(raw))
	if token == "" {
		return "", fmt.Errorf("the auth token file %s is empty", path)
	}
	return token, nil
}

// reload reads the file again. It reads it whole, every time: a token file is a few bytes, and
// its modification time and size cannot tell a same-length token written within one tick of the
// clock. A file that cannot be read or is empty keeps the previous token: a half-written
// rotation must not open the API.
func (t *bearerTokens) reload() error {
	token, err := ReadTokenFile(t.file)
	if err != nil {
		return err
	}
	t.set(token)
	return nil
}

// watch reloads the file every interval until ctx ends.
func (t *bearerTokens) watch(ctx context.Context, interval time.Duration, log logr.Logger) {
	if t == nil || t.file == "" {
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := t.reload(); err != nil && !errors.Is(err, context.Canceled) {
				log.Error(err, "keeping the previous bearer token")
			}
		}
	}
}

// requireBearerToken refuses (401) a request whose Authorization header does not carry the
// current token as a bearer token. The comparison is of SHA-256 digests in constant time, so
// that neither the token's bytes nor its length can be learnt from the time a refusal takes.
func requireBearerToken(tokens *bearerTokens) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			want := tokens.digest.Load()
			got, ok := bearerToken(r.Header.Get("Authorization"))
			sum := sha256.Sum256([]byte(got))
			if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="loan-gateway"`)
				writeProblem(w, newProblem(http.StatusUnauthorized,
					"this API needs a valid bearer token: send Authorization: Bearer <token>"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// bearerToken extracts the token of an "Authorization: Bearer <token>" header (the scheme is
// case-insensitive, RFC 9110).
func bearerToken(header string) (string, bool) {
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
