"""Which validation examples moved the loss between two models (Nielsen's puzzle, Q7).

Given each example's loss and correctness under a model `before` (say the epoch of the lowest
validation loss) and `after` (the end of training), the examples fall into four groups: right
at both, wrong at both, became right, became wrong. Per group: its count, its mean loss before
and after, and its part of the change in the mean loss (the group's summed change over n, so
the parts add up to the whole change) with its share of that change. A run trained with
`save_best_model` keeps both models' per-example validation losses in predictions.npz;
`read_loss_change(run)` reads them, and the run report and scripts/classics.py show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.errors import DataError
from digitlab.report.plots import figure_png, new_figure

GROUPS = ("right at both", "wrong at both", "became right", "became wrong")
GROUP_COLORS = ("tab:green", "tab:red", "tab:blue", "tab:orange")
KEYS = ("val_y", "val_pred", "val_losses", "val_best_losses", "val_best_pred", "best_loss_epoch")


@dataclass
class Group:
    name: str
    count: int
    loss_before: float  # mean over the group (NaN when empty)
    loss_after: float
    part: float  # the group's summed change over n: the parts add up to the change in the mean
    share: float  # part / the whole change (NaN when the mean did not change)


@dataclass
class LossChange:
    before: np.ndarray  # (n,) each example's loss under the first model
    after: np.ndarray
    group: np.ndarray  # (n,) index into GROUPS
    groups: list[Group]
    top_share: dict[float, float]  # fraction of examples with the largest rise -> share of it

    @property
    def change(self) -> float:
        return float(self.after.mean() - self.before.mean())

    def lines(self) -> list[str]:
        """The table as text, one group a line."""
        out = [
            f"mean loss {self.before.mean():.4f} -> {self.after.mean():.4f} "
            f"(change {self.change:+.4f}, n = {len(self.before):,})"
        ]
        for g in self.groups:
            out.append(
                f"  {g.name:<13} {g.count:>6,}  mean loss {g.loss_before:8.4f} -> "
                f"{g.loss_after:8.4f}  part {g.part:+.4f} ({100 * g.share:+.0f}% of the change)"
            )
        tops = ", ".join(f"{100 * f:g}%: {100 * s:.0f}%" for f, s in self.top_share.items())
        out.append(f"  share of the summed rises from the examples that rose most: {tops}")
        return out


def loss_change(
    before: np.ndarray,
    after: np.ndarray,
    right_before: np.ndarray,
    right_after: np.ndarray,
    tops: tuple[float, ...] = (0.01, 0.05, 0.1),
) -> LossChange:
    """Group the examples by correctness before and after, and split the loss change by group.

    `top_share[f]`: of the summed positive changes, the share of the fraction f of examples
    whose loss rose most (how concentrated the rise is).
    """
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    n = len(before)
    group = np.where(right_before, np.where(right_after, 0, 3), np.where(right_after, 2, 1))
    whole = float(after.mean() - before.mean())
    groups = []
    for index, name in enumerate(GROUPS):
        members = group == index
        count = int(members.sum())
        part = float((after[members] - before[members]).sum() / n)
        groups.append(
            Group(
                name,
                count,
                float(before[members].mean()) if count else float("nan"),
                float(after[members].mean()) if count else float("nan"),
                part,
                part / whole if whole else float("nan"),
            )
        )
    rises = np.sort(np.clip(after - before, 0, None))[::-1]
    total = rises.sum()
    top_share = {
        f: float(rises[: max(1, round(f * n))].sum() / total) if total else 0.0 for f in tops
    }
    return LossChange(before, after, group, groups, top_share)


def read_loss_change(run: str | Path) -> tuple[LossChange, int] | None:
    """The validation loss change from the lowest-loss epoch to the end of a run trained with
    save_best_model, and that epoch; None for a run without those arrays."""
    path = Path(run) / "predictions.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if not set(KEYS) <= set(data.files):
                return None
            arrays = {key: data[key] for key in KEYS}
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: cannot be read ({err})") from None
    y = arrays["val_y"]
    change = loss_change(
        arrays["val_best_losses"],
        arrays["val_losses"],
        arrays["val_best_pred"] == y,
        arrays["val_pred"] == y,
    )
    return change, int(arrays["best_loss_epoch"])


def loss_change_plot(change: LossChange, before_label: str, after_label: str) -> bytes:
    """Left: each group's part of the change in the mean loss, with its count. Right: every
    example's loss before against after (log scales), coloured by group."""
    fig = new_figure(11.0, 4.2)
    left, right = fig.subplots(1, 2)
    parts = [g.part for g in change.groups]
    bars = left.bar(range(len(GROUPS)), parts, color=GROUP_COLORS)
    for bar, g in zip(bars, change.groups, strict=True):
        left.annotate(
            f"n = {g.count:,}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom" if g.part >= 0 else "top",
            fontsize="small",
        )
    left.axhline(0, color="0.3", linewidth=0.8)
    left.set_xticks(range(len(GROUPS)), GROUPS, fontsize="small")
    left.set_ylabel("part of the change in mean loss")
    left.set_title(f"mean validation loss {change.change:+.4f}: by group")
    left.grid(alpha=0.3, axis="y")
    floor = 1e-6  # a loss of 0 cannot sit on a log axis
    for index, (name, color) in enumerate(zip(GROUPS, GROUP_COLORS, strict=True)):
        members = change.group == index
        if members.any():
            right.scatter(
                np.maximum(change.before[members], floor),
                np.maximum(change.after[members], floor),
                s=4,
                alpha=0.5,
                color=color,
                label=name,
            )
    low = max(floor, float(min(change.before.min(), change.after.min())))
    high = float(max(change.before.max(), change.after.max()))
    right.plot([low, high], [low, high], color="0.3", linewidth=0.8)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel(f"loss at {before_label}")
    right.set_ylabel(f"loss at {after_label}")
    right.set_title("each validation example")
    right.grid(alpha=0.3)
    right.legend(fontsize="small", markerscale=3)
    return figure_png(fig)
