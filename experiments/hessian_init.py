"""Hessian-norm diagnostics and initialization (Skorski et al. 2020). See fmsim/experiments/hessian_init.py."""

import sys

from fmsim.commandline import run_main
from fmsim.experiments.hessian_init import main

if __name__ == "__main__":
    sys.exit(run_main(main, prog="hessian_init"))
