"""Sampling: counter-based Philox streams (:mod:`fmsim.rng`), the weight laws they drive (``fmsim.laws``),
the first layer's exact law (``fmsim.first_layer``) and Haar-orthogonal matrices (:mod:`fmsim.orthogonal`)."""
