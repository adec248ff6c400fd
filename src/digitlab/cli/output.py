"""What the commands print: the consoles, result tables, confusion matrices and findings."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from digitlab.diagnostics.alarms import Finding

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def print_findings(findings: list[Finding]) -> None:
    for finding in findings:
        if finding.severity == "info":
            console.print(f"[dim]{finding.message}[/]")
            continue
        console.print(f"[bold yellow]{finding.kind}[/]: {finding.message}")
        if finding.causes:
            console.print("  likely causes: " + "; ".join(finding.causes))
        if finding.remedies:
            console.print("  usual remedies: " + "; ".join(finding.remedies))


def print_results(metrics: dict[str, Any], n_classes: int) -> None:
    table = Table(title="results (95% Wilson interval)")
    for column in ("split", "n", "loss", "accuracy", "95% interval"):
        table.add_column(column, justify="right")
    labels = {"train": "train", "val": "validation", "test": "test", "test_all": "val + test"}
    for name, label in labels.items():
        if name not in metrics:
            continue
        m = metrics[name]
        low, high = m["accuracy_ci95"]
        table.add_row(
            label,
            str(m["n"]),
            f"{m['loss']:.4f}",
            f"{100 * m['accuracy']:.2f}%",
            f"{100 * low:.2f}-{100 * high:.2f}%",
        )
    console.print(table)
    print_confusion(np.array(metrics["test"]["confusion"]), "test confusion matrix (rows: true)")


def print_confusion(confusion: np.ndarray, title: str) -> None:
    table = Table(title=title)
    table.add_column("")
    for k in range(len(confusion)):
        table.add_column(str(k), justify="right")
    for k, row in enumerate(confusion):
        table.add_row(str(k), *(f"[bold]{v}[/]" if i == k else str(v) for i, v in enumerate(row)))
    console.print(table)
