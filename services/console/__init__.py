"""The supervisor console: server-rendered pages over the monitor's and notifier's APIs."""
