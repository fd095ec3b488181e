"""FX rates, a second source: a Frankfurter-style HTTP API -> the lake's `fx` dataset (extract),
and an offline stand-in for that API (stub), which serves when `TOTES_FX_URL` is not set."""

DATASET = "fx"  # the lake folder, beside `totesys`
TABLE = "fx_rate"
