"""The demo's totesys database: its schema (schema.sql, constraints.sql), its data (`generate`,
for `totes source init`) and its changes (`churn`, for `totes source churn`)."""
