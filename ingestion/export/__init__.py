"""Export: the star schema -> the processed zone, as parquet (`processed`)."""
