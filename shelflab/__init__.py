"""ShelfLab: experiment registry and evaluation harness for e-commerce search and recommendation."""

__version__ = "0.1.0"
