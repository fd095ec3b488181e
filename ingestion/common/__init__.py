"""What every stage uses: Postgres connections (`database`, `copy_out`), retries, progress."""
