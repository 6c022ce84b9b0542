// Package bench drives load against a control service and measures what
// docs/performance.md reports: OFREP throughput and latency, how long a
// revert takes to reach every connected flags provider, an ingress
// router's durable acknowledgements and replays. It runs against a
// service it starts on loopback, or against any URL.
//
// The separate-process measurements (IngressSeparate, Propagation with
// Processes, Replay with a Binary) start parts of the switchback binary as
// children, read their stdout for their address, and charge each its own
// CPU from /proc/PID/stat (internal/procstat) over the measured window:
// on a machine whose cores everything shares, the CPU per request is what
// says what a part costs; a rate says what the machine did.
package bench
