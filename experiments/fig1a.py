"""Reproduce Hanin & Rolnick (2018) Fig. 1a. Same as ``fmsim demo``; see fmsim/experiments/fig1a.py."""

import sys

from fmsim.commandline import run_main
from fmsim.experiments.fig1a import main

if __name__ == "__main__":
    sys.exit(run_main(main, prog="fig1a"))
