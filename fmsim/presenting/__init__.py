"""Presenting results: numbers beyond float64's range for people (:mod:`fmsim.display`) and figures
(:mod:`fmsim.plotting`)."""
