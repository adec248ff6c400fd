"""The NumPy engine. Importing it registers the image layers (conv.py) beside the built-in ones."""

from digitlab.core import conv as conv  # noqa: F401  (registers conv2d, pooling, batchnorm)
