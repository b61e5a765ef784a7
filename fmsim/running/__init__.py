"""Running: the driver (:mod:`fmsim.running.simulate`), the road from a chunk's configuration to its kernel
(:mod:`fmsim.running.launch`), per-net statistics and summaries, the CUDA backend, Dask execution, and the
plain-NumPy reference nets."""
