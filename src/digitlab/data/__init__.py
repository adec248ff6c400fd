"""Data: strict IDX files, datasets (8x8 digits, MNIST, any IDX folder), splits and transforms.

Loaders return raw uint8 pixels; splits cut them by index; transforms fitted on training rows
turn them into float features. Imports only NumPy, the standard library and scikit-learn.
"""

from digitlab.data.idx import read_idx, write_idx
from digitlab.data.sources import (
    DATASETS,
    Dataset,
    load_dataset,
    load_digits,
    load_idx_folder,
    load_mnist,
)
from digitlab.data.splits import SPLITS, Split, Splits, make_splits
from digitlab.data.transforms import Pipeline, build_pipeline

__all__ = [
    "DATASETS",
    "SPLITS",
    "Dataset",
    "Pipeline",
    "Split",
    "Splits",
    "build_pipeline",
    "load_dataset",
    "load_digits",
    "load_idx_folder",
    "load_mnist",
    "make_splits",
    "read_idx",
    "write_idx",
]
