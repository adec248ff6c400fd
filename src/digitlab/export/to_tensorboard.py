"""Runs to TensorBoard event files (written with tensorboardX; `digitlab export tensorboard`).

Each run becomes the folder TO/<name> (a sweep's trials TO/<sweep>/<variant>_seed<seed>), one
event file holding: every per-epoch number as a scalar (step = epoch, names from
sources.scalar_name), the final metrics as scalars `final/...` at the last epoch, the flattened
config with the final metrics as hparams (the HParams dashboard compares runs), the alarms'
findings as the text `diagnostics`, and the report's figures as images `figures/<name>`. A run
is written into a hidden staging folder, then put in place of the old one by renames, so
exporting again replaces a run and never duplicates it. A folder there that this exporter did
not write (no MARKER file) is left alone: an error.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path
from typing import Any

from digitlab.errors import ConfigError, DataError
from digitlab.export.sources import Source, final_metrics, flat_params, require
from digitlab.lab.runs import replace_folder, write_json

MARKER = "digitlab-export.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> channels (grey, RGB, grey+a, RGBA)


def export_tensorboard(sources: list[Source], to: str | os.PathLike[str]) -> list[Path]:
    """Write each source's event file under `to`; return the run folders written."""
    require("tensorboardX", "digitlab export tensorboard")
    root = Path(to)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--to {root}: exists and is not a folder")
    written = []
    for source in sources:
        target = root / source.name
        if target.exists() and not (target / MARKER).is_file():
            raise ConfigError(f"{target}: exists and was not written by digitlab export")
        staging = target.with_name(f".{target.name}.{os.getpid()}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            _write_run(source, staging)
            replace_folder(staging, target)
        except OSError as err:
            raise DataError(f"{target}: cannot be written ({err.strerror or err})") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        written.append(target)
    return written


def _write_run(source: Source, folder: Path) -> None:
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    folder.mkdir(parents=True)
    times = source.epoch_times()
    last = source.last_epoch
    end = times.get(last)
    final = final_metrics(source.run.metrics)
    writer = SummaryWriter(logdir=str(folder), flush_secs=3600)
    try:
        for tag, points in source.scalars().items():
            for epoch, value in points:
                writer.add_scalar(tag, value, epoch, walltime=times.get(epoch))
        for tag, value in final.items():
            writer.add_scalar(tag, value, last, walltime=end)
        params: dict[str, Any] = dict(flat_params(source.run.config))
        params.update({k: v for k, v in source.tags.items() if k in ("variant", "sweep")})
        for summary in hparams(params, final):
            writer.file_writer.add_summary(summary, last, walltime=end)
        alarms = [
            f"- **{f.severity}** {f.kind} (epoch {f.epoch}): {f.message}" for f in source.alarms()
        ]
        if alarms:
            writer.add_text("diagnostics", "\n".join(alarms), last, walltime=end)
        for name, png in source.figures().items():
            writer.file_writer.add_summary(_image_summary(f"figures/{name[:-4]}", png), last, end)
    finally:
        writer.close()
    write_json(
        folder / MARKER,
        {"run_folder": str(source.path), "fingerprint": source.fingerprint(), **source.tags},
    )


def _image_summary(tag: str, png: bytes) -> Any:
    """A TensorBoard image summary holding the PNG file as it is (no decoding, no re-encoding)."""
    from tensorboardX.proto.summary_pb2 import Summary

    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ConfigError(f"{tag}: not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    image = Summary.Image(
        height=height,
        width=width,
        colorspace=PNG_CHANNELS.get(png[25], 4),
        encoded_image_string=png,
    )
    return Summary(value=[Summary.Value(tag=tag, image=image)])
