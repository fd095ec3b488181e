"""What people run on the warehouse: the payments API and the dashboard."""
