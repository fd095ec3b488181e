"""Operating totes: log lines, metrics, the run ledger, alerts and `totes status`."""
