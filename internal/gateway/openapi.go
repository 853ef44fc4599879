package gateway

import (
	_ "embed"
	"net/http"

	"github.com/swaggest/swgui/v5emb"
	"sigs.k8s.io/yaml"
)

// openAPIYAML is the REST contract: the single source of truth that the tests hold every
// answer to.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON is the same document as JSON, converted once at start.
var openAPIJSON = mustJSON(openAPIYAML)

func mustJSON(doc []byte) []byte {
	out, err := yaml.YAMLToJSON(doc)
	if err != nil {
		panic("gateway: the embedded openapi.yaml is not valid YAML: " + err.Error())
	}
	return out
}

func serveOpenAPIJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIJSON)
}

func serveOpenAPIYAML(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openAPIYAML)
}

// docsHandler serves Swagger UI at /docs/, its assets embedded in the binary (swgui's v5emb):
// the page works with no internet access.
func docsHandler() http.Handler {
	return v5emb.New("Loan applications", "/openapi.json", "/docs/")
}

func redirectToDocs(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/docs/", http.StatusMovedPermanently)
}
