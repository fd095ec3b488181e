"""The landing zone: its layout (`layout`), file systems for local folders and S3 (`storage`),
and the merging of a day's small files (`compaction`)."""
