"""Model zoos: a folder of checkpoints plus a manifest, evaluated in parallel (Dask), with rank correlations
between each bound and the measured generalization gap (Jiang et al. 2020)."""
