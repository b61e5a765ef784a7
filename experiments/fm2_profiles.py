"""fm2_profiles experiment (issue 6). See fmsim/experiments/fm2_profiles.py."""

from fmsim.experiments.fm2_profiles import main

if __name__ == "__main__":
    main()
