"""Reproduce Hanin & Rolnick (2018) Fig. 1a. Same as ``fmsim demo``; see fmsim/experiments/fig1a.py."""

from fmsim.experiments.fig1a import main

if __name__ == "__main__":
    main()
