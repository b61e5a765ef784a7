"""Reproduce Hanin & Rolnick (2018) Fig. 1b (epochs to 20% MNIST accuracy) and its FM2 variant.

See fmsim/experiments/fig1b.py; ``python experiments/fig1b.py --help``.
"""

import sys

from fmsim.commandline import run_main
from fmsim.experiments.fig1b import main

if __name__ == "__main__":
    sys.exit(run_main(main, prog="fig1b"))
