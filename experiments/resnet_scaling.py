"""resnet_scaling experiment (issue 6). See fmsim/experiments/resnet_scaling.py."""

from fmsim.experiments.resnet_scaling import main

if __name__ == "__main__":
    main()
