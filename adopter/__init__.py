"""Adopter: find where optimized deep-learning kernels apply in PyTorch model code, and adopt them."""

__version__ = "0.1.0"
