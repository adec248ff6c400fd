"""Every kind of bad input we know of, fed to the `digitlab` command: a table of how each went.

    python scripts/bad_inputs.py [--mnist DIR]     # DIR: MNIST's four files [$DIGITLAB_DATA_DIR]

Each case must end with a non-zero exit, exactly one line on stderr that starts with
"digitlab: error:", no traceback, and no new or half-written file left behind (the run folder
it asked for absent or empty), except what a case says it keeps: a run that diverges keeps its
last good weights. tests/test_bad_inputs.py runs the same cases.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import pickle
import resource
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# MNIST's four files: --mnist DIR, else $DIGITLAB_DATA_DIR (CI sets it)
MNIST_FROM_ENV = os.environ.get("DIGITLAB_DATA_DIR")
MNIST = Path(MNIST_FROM_ENV or ".")
FILES = {
    "train images": "train-images-idx3-ubyte.gz",
    "train labels": "train-labels-idx1-ubyte.gz",
    "test images": "t10k-images-idx3-ubyte.gz",
    "test labels": "t10k-labels-idx1-ubyte.gz",
}


# what the run folder of a diverged run keeps: the last good weights and what led there
# status.json says "failed", with the error line, for the studio and other readers
HELD: list[int] = []  # file descriptors of locks a case holds while it runs

DIVERGED_RUN = ("config.json", "history.jsonl", "diagnostics.json", "model.npz", "status.json")


@dataclass
class Case:
    name: str
    make: Callable[[Path], list[str]]  # given a scratch folder, returns the CLI arguments
    expect: str  # a piece of the error line
    keeps: tuple[str, ...] = ()  # files it leaves on purpose, relative to the scratch folder
    file_size_limit: int | None = None  # bytes: RLIMIT_FSIZE while it runs (a full disk)


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def tiny_idx_folder(
    folder: Path, n_train: int = 40, n_test: int = 20, side: int = 5, classes: int = 3,
    **changes: bytes,
) -> Path:  # fmt: skip
    """A small valid IDX dataset (side x side images); `changes` replaces files' bytes."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train images": rng.integers(0, 256, (n_train, side, side)),
        "train labels": np.arange(n_train) % classes,
        "test images": rng.integers(0, 256, (n_test, side, side)),
        "test labels": np.arange(n_test) % classes,
    }
    for key, name in FILES.items():
        data = changes.get(key.replace(" ", "_"), gzip.compress(idx_bytes(arrays[key])))
        (folder / name).write_bytes(data)
    return folder


def idx_case(**changes: Callable[[], bytes]) -> Callable[[Path], list[str]]:
    def make(scratch: Path) -> list[str]:
        folder = tiny_idx_folder(scratch / "data", **{k: f() for k, f in changes.items()})
        return ["train", "--data", "idx", "--data-dir", str(folder), "--epochs", "1"]

    return make


def good_labels(n: int = 20) -> bytes:
    return gzip.compress(idx_bytes(np.arange(n) % 3))


def saved_model(scratch: Path, *args: str) -> Path:
    """Train a tiny model on the 8x8 digits (quietly) and return its run folder."""
    from digitlab.cli import main

    out = scratch / "trained"
    with redirect_stdout(io.StringIO()):
        main(["train", "--epochs", "1", "--hidden", "8", "--no-report", "--out", str(out), *args])
    return out


def cases(mnist: Path) -> list[Case]:
    def args(*a: str) -> Callable[[Path], list[str]]:
        return lambda scratch: ["train", *a]

    def config(text: str, *a: str) -> Callable[[Path], list[str]]:
        def make(scratch: Path) -> list[str]:
            path = scratch / "run.toml"
            path.write_text(text)
            return ["train", "--config", str(path), *a]

        return make

    def file_as_model(content: bytes, name: str = "model.npz") -> Callable[[Path], list[str]]:
        def make(scratch: Path) -> list[str]:
            (scratch / name).write_bytes(content)
            return ["eval", str(scratch / name)]

        return make

    def pickled_model(scratch: Path) -> list[str]:
        np.save(scratch / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return ["eval", str(scratch / "evil.npy")]

    def other_input_size(scratch: Path) -> list[str]:
        return ["eval", str(saved_model(scratch)), "--data", "mnist", "--data-dir", str(mnist)]

    def more_classes(scratch: Path) -> list[str]:
        folder = tiny_idx_folder(scratch / "data", n_train=60, n_test=24, side=8, classes=12)
        model = saved_model(scratch)  # 8x8 digits: 64 inputs like the folder, but 10 classes
        return ["eval", str(model), "--data", "idx", "--data-dir", str(folder)]

    def missing_file(scratch: Path) -> list[str]:
        folder = tiny_idx_folder(scratch / "data")
        (folder / FILES["test labels"]).unlink()
        return ["train", "--data", "idx", "--data-dir", str(folder)]

    def mnist_truncated(scratch: Path) -> list[str]:
        folder = scratch / "mnist"
        shutil.copytree(mnist, folder)
        images = folder / FILES["test images"]
        images.write_bytes(images.read_bytes()[:100_000])
        return ["train", "--data", "mnist", "--data-dir", str(folder)]

    def out_is_a_file(scratch: Path) -> list[str]:
        (scratch / "taken").write_text("x")
        return ["train", "--out", str(scratch / "taken")]

    def out_not_empty(scratch: Path) -> list[str]:
        (scratch / "full").mkdir()
        (scratch / "full" / "keep.txt").write_text("mine")
        return ["train", "--out", str(scratch / "full")]

    def no_checkpoint(scratch: Path) -> list[str]:
        return ["train", "--resume", str(saved_model(scratch))]

    labels = good_labels

    def model_archive(scratch: Path, change: Callable[[str, bytes], bytes]) -> Path:
        """A saved model's archive with its members changed by change(name, bytes)."""
        with zipfile.ZipFile(saved_model(scratch) / "model.npz") as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        path = scratch / "changed.npz"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members.items():
                archive.writestr(name, change(name, data))
        return path

    def npy(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()

    def huge_npy_header(scratch: Path) -> list[str]:
        fake = npy(np.zeros((1, 1), np.float32)).replace(b"(1, 1)", b"(10000000, 1000000)")
        path = model_archive(scratch, lambda n, d: fake if n == "dense1.w.npy" else d)
        return ["eval", str(path)]

    def lying_zip_sizes(scratch: Path) -> list[str]:
        path = model_archive(scratch, lambda name, data: data)
        raw = bytearray(path.read_bytes())
        struct.pack_into("<I", raw, raw.index(b"PK\x01\x02") + 24, 0xFFFFFFFE)
        path.write_bytes(bytes(raw))
        return ["eval", str(path)]

    def header_change(change: Callable[[dict], None]) -> Callable[[Path], list[str]]:
        def make(scratch: Path) -> list[str]:
            def edit(name: str, data: bytes) -> bytes:
                if name != "model.json.npy":
                    return data
                header = json.loads(np.load(io.BytesIO(data)).tobytes())
                change(header)
                return npy(np.frombuffer(json.dumps(header).encode(), np.uint8))

            return ["eval", str(model_archive(scratch, edit))]

        return make

    def wider(header: dict) -> None:
        header["model"]["layers"][0]["units"] = 10_000_000

    def extra_a_list(header: dict) -> None:
        header["extra"] = ["config"]

    def damaged_checkpoint(scratch: Path) -> list[str]:
        from digitlab.lab.runs import write_npz

        run = saved_model(scratch, "--checkpoint-every", "1")
        with np.load(run / "checkpoint.npz") as data:
            arrays = {key: data[key] for key in data.files}
        header = json.loads(arrays["checkpoint.json"].tobytes())
        header["state"]["epoch"] = "three"
        arrays["checkpoint.json"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
        write_npz(run / "checkpoint.npz", arrays)
        return ["train", "--resume", str(run)]

    def symlink_loop(folder: Path, name: str) -> Path:
        """folder/name -> folder/name.b -> folder/name."""
        (folder / name).symlink_to(folder / f"{name}.b")
        (folder / f"{name}.b").symlink_to(folder / name)
        return folder / name

    def looped_data_dir(scratch: Path) -> list[str]:
        return ["train", "--data", "idx", "--data-dir", str(symlink_loop(scratch, "data"))]

    def looped_data_file(scratch: Path) -> list[str]:
        folder = tiny_idx_folder(scratch / "data")
        (folder / FILES["test labels"]).unlink()
        symlink_loop(folder, FILES["test labels"])
        return ["train", "--data", "idx", "--data-dir", str(folder)]

    def looped_out(scratch: Path) -> list[str]:
        return ["train", "--out", str(symlink_loop(scratch, "out"))]

    def config_bytes(data: bytes) -> Callable[[Path], list[str]]:
        def make(scratch: Path) -> list[str]:
            (scratch / "run.toml").write_bytes(data)
            return ["train", "--config", str(scratch / "run.toml")]

        return make

    def resume_beside_a_live_run(scratch: Path) -> list[str]:
        import fcntl

        run = saved_model(scratch, "--checkpoint-every", "1")
        lock = os.open(run / ".digitlab.lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(lock, fcntl.LOCK_EX)  # what the live run holds; released when the case ends
        HELD.append(lock)
        return ["train", "--resume", str(run)]

    def sweep_beside_a_sweep(scratch: Path) -> list[str]:
        import fcntl

        (scratch / "two.toml").write_text("seeds = 2\n[base]\nepochs = 1\n")
        (scratch / "sweep").mkdir()
        lock = os.open(scratch / "sweep" / ".lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(lock, fcntl.LOCK_EX)  # what the running sweep holds
        HELD.append(lock)
        return ["sweep", str(scratch / "two.toml"), "--out", str(scratch / "sweep")]

    def report_onto_a_full_disk(scratch: Path) -> list[str]:
        from digitlab.cli import main

        with redirect_stdout(io.StringIO()):
            main(["train", "--epochs", "1", "--hidden", "8", "--out", str(scratch / "run")])
        return ["report", str(scratch / "run")]

    def bomb_after_payload() -> bytes:
        return gzip.compress(idx_bytes(np.arange(20) % 3) + bytes(16 << 20))

    def header_beyond_gzip() -> bytes:
        return gzip.compress(struct.pack(">BBBBIII", 0, 0, 8, 3, 100_000, 1000, 1000) + bytes(99))

    return [
        Case("truncated IDX .gz (real MNIST test images)", mnist_truncated, "t10k-images"),
        Case(
            "corrupt gzip stream",
            idx_case(test_labels=lambda: labels()[:-12] + b"\0" * 12),
            "t10k-labels",
        ),  # fmt: skip
        Case(
            "wrong magic number",
            idx_case(
                test_labels=lambda: gzip.compress(
                    b"\x12\x34\x08\x01" + idx_bytes(np.arange(20) % 3)[4:]
                )
            ),
            "magic",
        ),
        Case(
            "wrong number of dimensions",
            idx_case(
                test_labels=lambda: gzip.compress(
                    b"\x00\x00\x08\x07" + idx_bytes(np.arange(20) % 3)[4:]
                )
            ),
            "dimensions",
        ),
        Case(
            "bad dtype code",
            idx_case(
                test_labels=lambda: gzip.compress(
                    b"\x00\x00\x0a\x01" + idx_bytes(np.arange(20) % 3)[4:]
                )
            ),
            "t10k-labels",
        ),  # fmt: skip
        Case(
            "header dims disagree with payload",
            idx_case(test_labels=lambda: gzip.compress(idx_bytes(np.arange(20) % 3) + b"\1\2")),
            "t10k-labels",
        ),  # fmt: skip
        Case("image/label count mismatch", idx_case(test_labels=lambda: labels(19)), "19"),
        Case(
            "empty dataset (0 test images)",
            idx_case(
                test_images=lambda: gzip.compress(idx_bytes(np.zeros((0, 5, 5)))),
                test_labels=lambda: labels(0),
            ),
            "t10k",
        ),  # fmt: skip
        Case(
            "raw bytes that are not IDX",
            idx_case(test_labels=lambda: b"hello world"),
            "t10k-labels",
        ),  # fmt: skip
        Case("data folder missing a file", missing_file, "t10k-labels"),
        Case(
            "data folder that does not exist",
            args("--data", "mnist", "--data-dir", "/nope"),
            "/nope",
        ),  # fmt: skip
        Case("labels outside the model's classes", more_classes, "labels must lie in"),
        Case(
            "--train-per-class larger than a class",
            args("--train-per-class", "500"),
            "larger than class",
        ),  # fmt: skip
        Case(
            "--train-first larger than the training set",
            args("--train-first", "99999"),
            "--train-first 99999",
        ),  # fmt: skip
        Case("unknown activation", args("--activation", "swishy"), "unknown activation"),
        Case("unknown optimizer", args("--optimizer", "adamm"), "unknown optimizer"),
        Case("unknown dataset", args("--data", "cifar"), "'cifar' is not one of"),
        Case("unknown loss", args("--loss", "hinge"), "unknown loss"),
        Case("unknown initialiser", args("--init", "glorot9"), "unknown initialiser"),
        Case(
            "unknown activation parameter",
            args("--activation", "relu", "--activation-param", "slope=0.1"),
            "takes no parameters",
        ),  # fmt: skip
        Case("unknown flag", args("--hiden", "10"), "No such option"),
        Case("zero hidden size", args("--hidden", "0"), "hidden sizes must all be > 0"),
        Case("negative hidden size", args("--hidden", "100,-5"), "hidden sizes must all be > 0"),
        Case("hidden sizes not numbers", args("--hidden", "ten"), "comma list"),
        Case("zero learning rate", args("--lr", "0"), "learning_rate: Input should be greater"),
        Case("negative learning rate", args("--lr", "-0.1"), "learning_rate: Input should"),
        Case("learning rate not a number", args("--lr", "fast"), "not a valid float"),
        Case("zero batch size", args("--batch-size", "0"), "batch_size"),
        Case("zero epochs", args("--epochs", "0"), "epochs"),
        Case("dropout of 1.5", args("--dropout", "1.5"), "dropout"),
        Case("negative L2", args("--l2", "-1"), "l2"),
        Case("crop that leaves nothing", args("--crop", "4"), "leaves nothing"),
        Case("pixel subset larger than the image", args("--pixel-subset", "65"), "larger than"),
        Case("--data-dir with the 8x8 digits", args("--data-dir", "/tmp"), "--data-dir"),
        Case("malformed TOML", config("hidden = [32,\n"), "malformed config"),
        Case("TOML with an unknown key", config("hiden = [32]\n"), "hiden: Extra inputs"),
        Case("TOML with a wrong type", config('epochs = "many"\n'), "epochs"),
        Case(
            "config file that does not exist", args("--config", "/nope.toml"), "cannot read config"
        ),  # fmt: skip
        Case("plugin file that does not exist", args("--plugin", "/nope.py"), "no such file"),
        Case(
            "model file that is not ours",
            file_as_model(b"PK\x03\x04garbage"),
            "not a digitlab model file",
        ),  # fmt: skip
        Case(
            "model file that is a pickle",
            file_as_model(pickle.dumps({"w": 1})),
            "not a digitlab model file",
        ),  # fmt: skip
        Case(
            "model file that is a NumPy object array (pickle inside)",
            pickled_model,
            "not a digitlab model file",
        ),  # fmt: skip
        Case("model for another input size", other_input_size, "inputs but the data has"),
        Case("--resume without a checkpoint", no_checkpoint, "no checkpoint here"),
        Case("--out is a file", out_is_a_file, "is a file"),
        Case("--out is a folder with files in it", out_not_empty, "not empty"),
        Case(
            "learning rate that diverges",
            args("--lr", "1e4", "--epochs", "2"),
            "diverged",
            keeps=("out", *(f"out/{name}" for name in DIVERGED_RUN)),
        ),
        # round 2: resource limits, the file system, damaged model files and checkpoints
        Case(
            "IDX .gz with 16 MiB more payload than its header says (a bomb)",
            idx_case(test_labels=bomb_after_payload),
            "the payload has over 1048576 more",
        ),
        Case(
            "IDX .gz header announcing 93 GiB",
            idx_case(test_images=header_beyond_gzip),
            "gzip file can hold (at most 1032:1)",
        ),
        Case(
            "model too large for memory (--hidden-sizes 10000000,10000000)",
            args("--hidden-sizes", "10000000,10000000"),
            "needs 2,183 TiB; this machine has",
        ),
        Case(
            "model file: .npy header announcing 37 TiB",
            huge_npy_header,
            "which does not fit its",
        ),
        Case(
            "model file: zip member claiming 4 GiB (a zip bomb)",
            lying_zip_sizes,
            "a zip bomb or a damaged archive",
        ),
        Case(
            "model file describing more weights than it holds",
            header_change(wider),
            "parameters, the file holds",
        ),
        Case(
            "model file whose JSON header has the wrong types",
            header_change(extra_a_list),
            "is not a table",
        ),
        Case("checkpoint with a damaged header", damaged_checkpoint, "damaged checkpoint"),
        Case("--data-dir that is a symlink loop", looped_data_dir, "symlink loop"),
        Case("data file that is a symlink loop", looped_data_file, "symlink loop"),
        Case("--out that is a symlink loop", looped_out, "symlink loop"),
        Case(
            "config file over 1 MiB",
            config_bytes(b"# padding\n" * 120_000),
            "over 1048576 bytes",
        ),
        Case("config file that is not UTF-8", config_bytes(b"epochs = 1 # \xff\xfe\n"), "UTF-8"),
        Case(
            "config nested 100,000 deep",
            config_bytes(b"layers = " + b"[" * 100_000 + b"]" * 100_000 + b"\n"),
            "malformed config",
        ),
        Case(
            "augment elastic_sigma of 1e9 (a 60 GiB smoothing kernel)",
            config("augment = { elastic_alpha = 34, elastic_sigma = 1e9 }\n"),
            "elastic_sigma must be at least 0 and at most 1000",
        ),
        Case("config naming a plugin that is a number", config("plugins = [1]\n"), "plugins"),
        Case(
            "--resume while another process writes the run folder",
            resume_beside_a_live_run,
            "another digitlab process is writing",
        ),
        Case("a second sweep on a busy folder", sweep_beside_a_sweep, "another sweep is running"),
        Case(
            "report onto a full disk (a 20 KB file-size limit)",
            report_onto_a_full_disk,
            "cannot write: file too large",
            file_size_limit=20_000,
        ),
    ]


def check(case: Case, scratch: Path) -> tuple[bool, str]:
    """Run one case in-process; return (handled cleanly, what happened)."""
    from digitlab.cli import main

    scratch.mkdir(parents=True, exist_ok=True)
    args = case.make(scratch)
    if args[0] == "train" and "--out" not in args and "--resume" not in args:
        args = [*args, "--out", str(scratch / "out")]
    before = {p for p in scratch.rglob("*")}
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            if case.file_size_limit:  # the CLI ignores SIGXFSZ, so writes fail with EFBIG
                resource.setrlimit(resource.RLIMIT_FSIZE, (case.file_size_limit, limit[1]))
            main([*args, "--quiet"] if args[0] == "train" else args)
    except SystemExit as done:
        code = done.code
    except BaseException as crash:  # anything else is a failure of ours: report it
        return False, f"crashed: {type(crash).__name__}: {crash}"
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        while HELD:  # locks a case held for a process it stands for
            os.close(HELD.pop())
    text = err.getvalue()
    lines = text.strip().splitlines()
    left = sorted(str(p.relative_to(scratch)) for p in set(scratch.rglob("*")) - before)
    problems = []
    if code in (0, None):
        problems.append("exit code 0")
    if len(lines) != 1 or not lines[0].startswith("digitlab: error:"):
        problems.append(f"{len(lines)} stderr lines")
    if "Traceback" in text:
        problems.append("traceback")
    if case.expect not in text:
        problems.append(f"message lacks {case.expect!r}")
    if left != sorted(case.keeps):
        problems.append(f"left behind: {left}, expected {sorted(case.keeps)}")
    detail = lines[0] if lines else "(no message)"
    return not problems, "; ".join(problems) or detail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mnist",
        default=MNIST_FROM_ENV,
        required=MNIST_FROM_ENV is None,
        help="folder of MNIST's four files [$DIGITLAB_DATA_DIR]",
    )
    parser.add_argument("--scratch", default=None, help="work folder [a temporary one]")
    options = parser.parse_args()
    import tempfile

    root = Path(options.scratch or tempfile.mkdtemp(prefix="bad-inputs-"))
    print("| # | bad input | handled cleanly | what digitlab said |\n|---|---|---|---|")
    handled = 0
    all_cases = cases(Path(options.mnist))
    for number, case in enumerate(all_cases, start=1):
        ok, detail = check(case, root / f"case{number}")
        handled += ok
        shown = detail.replace("|", "\\|")
        print(f"| {number} | {case.name} | {'yes' if ok else '**NO**'} | {shown} |")
    print(f"\n{handled} of {len(all_cases)} bad inputs handled cleanly")
    sys.exit(0 if handled == len(all_cases) else 1)


if __name__ == "__main__":
    main()
