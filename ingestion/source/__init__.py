"""The totesys source: its tables here; the demo database's schema, data and churn in the modules.

A run needs only the table names, so they live apart from the generator and its libraries.
"""

# Business tables in foreign-key order (parents first). `_prisma_migrations` is not one.
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
