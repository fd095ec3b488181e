"""The local stack that the demo and the tests run on: the embedded PostgreSQL (`postgres`) and
the demo's totesys source (`source`). The production image leaves out their libraries."""
