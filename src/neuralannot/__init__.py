"""Open, reproducible NeuralAnnot: neural annotation of 3D pseudo-GT human model parameters."""

__version__ = "0.1.0"
__all__ = ["__version__"]
