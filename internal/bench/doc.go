// Package bench drives load against a control service and measures what
// docs/performance.md reports: OFREP throughput and latency, and how long a
// revert takes to reach every connected flags provider. It runs against a
// service it starts on loopback, or against any URL.
package bench
