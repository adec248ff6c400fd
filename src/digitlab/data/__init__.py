"""Data: strict IDX files, datasets (8x8 digits, MNIST, any IDX folder, a folder of your own
images, the CSV form), splits and transforms.

Loaders return raw uint8 pixels; splits cut them by index; transforms fitted on training rows
turn them into float features. Imports only NumPy, the standard library, scikit-learn and
(when image files are read) Pillow.
"""

from digitlab.data.csvdata import load_csv
from digitlab.data.folder import load_image_folder
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
    "load_csv",
    "load_dataset",
    "load_digits",
    "load_idx_folder",
    "load_image_folder",
    "load_mnist",
    "make_splits",
    "read_idx",
    "write_idx",
]
