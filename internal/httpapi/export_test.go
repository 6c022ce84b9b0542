package httpapi

import (
	"net/http"

	"github.com/switchbackhq/switchback/flags"
)

// WriteOFREPAnswer writes the single-flag OFREP answer of res, as POST
// /ofrep/v1/evaluate/flags/{key} does: for the errors that no request to a
// running server can bring about.
func WriteOFREPAnswer(w http.ResponseWriter, key string, res flags.Resolution) {
	writeOFREP(w, key, res)
}

// OFREPBulkItem is res as an item of the bulk answer.
func OFREPBulkItem(key string, res flags.Resolution) any { return ofrepItem(key, res) }
