"""Data writing for vasot_dist: shard format, sharding tool, synthetic benchmark, dataset adapters (README.md)."""
