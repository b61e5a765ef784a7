"""Experiment drivers (run, store, plot). Scripts in the repository's ``experiments/`` call these."""
