// Package web holds the user interface's templates and static files,
// embedded in the binary so that switchback serves them with no network.
package web

import "embed"

// FS holds the UI's files.
//
//go:embed static
var FS embed.FS
