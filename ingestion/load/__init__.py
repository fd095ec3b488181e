"""Load: the lake's new loads -> the warehouse's raw schemas (`raw`)."""
