"""fm2_profiles experiment (issue 6). See fmsim/experiments/fm2_profiles.py."""

import sys

from fmsim.commandline import run_main
from fmsim.experiments.fm2_profiles import main

if __name__ == "__main__":
    sys.exit(run_main(main, prog="fm2_profiles"))
