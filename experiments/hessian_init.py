"""Hessian-norm diagnostics and initialization (Skorski et al. 2020). See fmsim/experiments/hessian_init.py."""

from fmsim.experiments.hessian_init import main

if __name__ == "__main__":
    main()
