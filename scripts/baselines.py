"""B1: how far non-neural methods get, so the reader sees what a hidden layer buys.

    .venv/bin/python scripts/baselines.py --data digits
    .venv/bin/python scripts/baselines.py --data mnist --data-dir DIR

Nearest centroid, logistic regression (multinomial, L2 with scikit-learn's default C = 1), and
PCA to 50 components (32 for the 64-pixel digits) followed by the same logistic regression,
each fitted on the training part of digitlab's own split (digits: our holdout; MNIST: the
book split, all 60,000 training images, standardised with the training set's mean and std as
the book does) and scored on the
validation part and the test part(s), with 95% Wilson intervals. Deterministic (no seed matters:
the split's seed is 0, and these fits have no randomness).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from digitlab.errors import DigitlabError
from digitlab.lab.config import make_config
from digitlab.lab.experiment import prepare_data, whole_test_set
from digitlab.stats import wilson_interval


def models(components: int) -> dict[str, object]:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import NearestCentroid
    from sklearn.pipeline import make_pipeline

    return {
        "nearest centroid": NearestCentroid(),
        "logistic regression": LogisticRegression(max_iter=200),
        f"PCA ({components}) + logistic regression": make_pipeline(
            PCA(components, random_state=0), LogisticRegression(max_iter=200)
        ),
    }


def percent(y: np.ndarray, predicted: np.ndarray) -> str:
    correct, n = int((predicted == y).sum()), len(y)
    low, high = wilson_interval(correct, n)
    return f"{100 * correct / n:.2f}% ({100 * low:.2f}-{100 * high:.2f}, n={n})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["digits", "mnist"], default="digits")
    parser.add_argument(
        "--data-dir", default=None, help="MNIST's folder (else as digitlab finds it)"
    )
    args = parser.parse_args(argv)
    values: dict[str, object] = {"data": args.data}
    if args.data == "mnist":
        values.update(split="book", standardize=True, data_dir=args.data_dir)
    try:
        config = make_config(values)
        prepared = prepare_data(config)
    except DigitlabError as err:
        print(f"baselines: error: {err}", file=sys.stderr)
        return 1
    splits = prepared.splits
    parts = {"val": splits.val, "test": splits.test}
    if config.split == "book":
        parts["all 10,000"] = whole_test_set(config, splits)
    print(f"{args.data}: {len(splits.train.y)} training images; split {config.split}")
    for name, model in models(min(50, splits.train.x.shape[1] // 2)).items():
        start = time.perf_counter()
        with warnings.catch_warnings():  # lbfgs may stop at max_iter: the figure is what it is
            warnings.simplefilter("ignore")
            model.fit(splits.train.x, splits.train.y)  # type: ignore[attr-defined]
        seconds = time.perf_counter() - start
        scores = "; ".join(
            f"{part} {percent(s.y, model.predict(s.x))}"  # type: ignore[attr-defined]
            for part, s in parts.items()
        )
        print(f"{name}: {scores}; fit {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
