// Package httpapi serves the control service's HTTP API: JSON in and out,
// bearer-token roles, one table from error codes to statuses, Prometheus
// metrics by route.
package httpapi
