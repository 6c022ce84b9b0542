// Package web holds the user interface's templates and static files,
// embedded in the binary so that switchback serves them with no network.
// Package webui renders them.
package web

import "embed"

// FS holds the UI's files: templates/*.html (html/template) and static/
// (served under /ui/static/).
//
//go:embed templates static
var FS embed.FS
