"""Extract: the sources -> the landing zone. totesys (`totesys`, checked against `contract` and
read with `copy_backend`; `source_keys` finds deletes), the FX API (`fx`, or its offline
`fx_stub`) and the delivery partner's JSON files (`deliveries`).
The names a run needs from here live in this module, apart from dlt and its kin."""

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
# the delivery partner's files in the lake: their events, and the files that broke the contract
DELIVERIES_DATASET = "deliveries"
DELIVERY_TABLE = "delivery_event"
REJECTED_TABLE = "rejected_file"
