"""Jit-compiled kernels. Drivers in :mod:`fmsim.simulate` validate and allocate."""
