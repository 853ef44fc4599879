package banksim

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes the API the simulator serves, bank and admin paths.
//
//go:embed openapi.json
var openAPIDocument []byte

// docsPage is a self-contained page (no assets from the internet) pointing at the document.
const docsPage = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Bank partner API (simulator)</title></head>
<body>
<h1>Bank partner API (simulator)</h1>
<p>The OpenAPI 3 description is at <a href="/openapi.json">/openapi.json</a>.</p>
</body>
</html>
`

// serveDocsPage is GET /docs, where the real bank serves its documentation too.
func serveDocsPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(docsPage))
}

// serveOpenAPI is GET /openapi.json.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDocument)
}
