"""The NumPy engine. Importing it registers the image layers (conv.py) and the mixed-activation
layer (mixed.py) beside the built-in ones."""

from digitlab.core import conv as conv  # noqa: F401  (registers conv2d, pooling, batchnorm)
from digitlab.core import mixed as mixed  # noqa: F401  (registers the mixed-activation layer)
