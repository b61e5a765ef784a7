"""Training onset: a plain-NumPy MLP with hand-written backprop (:mod:`fmsim.mlp`), SGD on MNIST
(:mod:`fmsim.train`, :mod:`fmsim.mnist`) and Hessian diagnostics (:mod:`fmsim.hessian`)."""
