// Package config holds the configuration of each switchback process, one
// struct per process with its defaults, its SWITCHBACK_* environment
// variables (FromEnv) and Validate: Serve for the control service and
// Ingress for a router alone. The command reads the flags over it, so that
// flags override the environment, which overrides the defaults. Logger
// builds the slog logger that --log-format and --log-level describe.
package config
