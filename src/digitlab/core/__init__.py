"""The NumPy engine. Importing it registers every built-in layer type: the basic layers
(layers.py) and, beside them, dropout, the merges, image layers, batch norm and the mixed
activation."""

from digitlab.core import batchnorm as batchnorm  # noqa: F401  (registers batchnorm)
from digitlab.core import conv as conv  # noqa: F401  (registers conv2d)
from digitlab.core import dropout as dropout  # noqa: F401  (registers dropout)
from digitlab.core import merge as merge  # noqa: F401  (registers add, concat)
from digitlab.core import mixed as mixed  # noqa: F401  (registers mixed)
from digitlab.core import pooling as pooling  # noqa: F401  (registers maxpool2d, avgpool2d)
