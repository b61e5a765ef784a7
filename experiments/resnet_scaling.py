"""resnet_scaling experiment (issue 6). See fmsim/experiments/resnet_scaling.py."""

import sys

from fmsim.commandline import run_main
from fmsim.experiments.resnet_scaling import main

if __name__ == "__main__":
    sys.exit(run_main(main, prog="resnet_scaling"))
