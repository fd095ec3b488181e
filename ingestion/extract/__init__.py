"""Extract: the sources -> the landing zone. totesys (`totesys`, checked against `contract` and
read with `copy_backend`; `source_keys` finds deletes) and the FX API (`fx`, or its offline
`fx_stub`). The names a run needs from here live in this module, apart from dlt and its kin."""

# totesys's business tables in foreign-key order (parents first). `_prisma_migrations` is not one.
TABLES = (
    "address",
    "counterparty",
    "currency",
    "department",
    "design",
    "staff",
    "payment_type",
    "sales_order",
    "purchase_order",
    "transaction",
    "payment",
)
# the FX source's dataset in the lake (beside `totesys`) and its one table
FX_DATASET = "fx"
FX_TABLE = "fx_rate"
