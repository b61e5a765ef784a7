"""Files: resumable, checksummed HDF5 runs (:mod:`fmsim.store`), safe opening and locking, integrity checks,
tables for xarray and pandas, and the checksummed data registry."""
