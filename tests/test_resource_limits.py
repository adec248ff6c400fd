"""Resource limits: data files, model files and models that would need more memory than the
header, the archive or the machine allows are refused with one line, before the allocation."""

import gzip
import io
import json
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from digitlab import memory
from digitlab.data.idx import read_idx
from digitlab.errors import ConfigError, DataError, ModelError
from digitlab.lab.modelfile import check_model_memory, load_model, save_model


def header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()


def peak_bytes(call) -> int:
    """Peak of traced allocations (NumPy's included) while `call` runs."""
    tracemalloc.start()
    try:
        call()
    except (DataError, ModelError, ConfigError):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_gzip_payload_longer_than_announced_is_read_no_further(tmp_path: Path) -> None:
    # 3x2x2 announced, 64 MiB of zeros behind it: a 64 KiB gzip bomb
    path = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.open(path, "wb") as file:
        file.write(header(0x08, (3, 2, 2)) + bytes(12))
        file.write(bytes(64 << 20))
    assert path.stat().st_size < 200_000
    with pytest.raises(DataError, match=r"trailing bytes: header says 3x2x2 = 12 bytes, the "
                       r"payload has over 1048576 more"):  # fmt: skip
        read_idx(path)
    assert peak_bytes(lambda: read_idx(path)) < 4 << 20


def test_gzip_header_announcing_more_than_the_file_can_hold(tmp_path: Path) -> None:
    path = tmp_path / "liar-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header(0x08, (100_000, 1000, 1000)) + bytes(1000)))
    with pytest.raises(DataError, match=r"header says 100000x1000x1000 = 93.1 GiB, more than a "
                       r".* gzip file can hold \(at most 1032:1\)"):  # fmt: skip
        read_idx(path)
    assert peak_bytes(lambda: read_idx(path)) < 1 << 20


def test_raw_header_announcing_more_than_the_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "liar-idx3-ubyte"
    path.write_bytes(header(0x0E, (4_000_000_000, 1000)) + bytes(80))
    with pytest.raises(DataError, match="truncated: header says 4000000000x1000"):
        read_idx(path)
    assert peak_bytes(lambda: read_idx(path)) < 1 << 20


def test_idx_larger_than_memory(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(header(0x08, (5000,)) + bytes(5000)))
    assert read_idx(path).shape == (5000,)
    monkeypatch.setattr(memory, "memory", lambda: (4096, 8192))
    with pytest.raises(DataError, match=r"big-idx1-ubyte.gz: the header's 5000 array needs "
                       r"4.88 KiB; this machine has 4 KiB free of 8 KiB"):  # fmt: skip
        read_idx(path)


def test_memory_reads_this_machine() -> None:
    available, total = memory.memory()
    assert available is not None and total is not None
    assert 0 < available <= total * 1.01 or available < total  # RLIMIT_AS may be the bound


def test_model_too_large_for_the_machine(cli, tmp_path: Path) -> None:
    code, _, err = cli(["train", "--hidden-sizes", "10000000,10000000", "--epochs", "1",
                        "--out", str(tmp_path / "run"), "--quiet"])  # fmt: skip
    assert code == 1
    line = err.strip()
    assert "\n" not in line
    assert line.startswith("digitlab: error: the model (100,000,760,000,010 parameters")
    assert "needs 2,183 TiB; this machine has" in line
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_batch_too_large_for_the_machine(monkeypatch) -> None:
    spec = [{"type": "dense", "units": 1000}, {"type": "dense", "units": 10}]
    # 75,010 parameters: 1.7 MiB of training state; 1,010 outputs per example
    monkeypatch.setattr(memory, "memory", lambda: (8 << 20, 16 << 20))
    assert check_model_memory(spec, 64, "float32", 100, ConfigError) == 75_010
    with pytest.raises(ConfigError, match=r"the model with 10,000 examples at once \(a batch\) "
                       r"needs 117 MiB; this machine has 8 MiB free of 16 MiB"):  # fmt: skip
        check_model_memory(spec, 64, "float32", 10_000, ConfigError)


def saved(tmp_path: Path) -> Path:
    from digitlab.core.model import build_model
    from digitlab.core.specs import mlp_spec

    model = build_model(mlp_spec([4], 3, "relu"), 5, np.random.default_rng(0))
    return save_model(model, tmp_path / "model.npz")


def rewrite(path: Path, change) -> Path:
    """The archive at `path` with member contents changed by change(name, bytes) -> bytes."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    out = path.with_name("changed.npz")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, change(name, data))
    return out


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_npy_header_announcing_a_huge_shape(tmp_path: Path) -> None:
    def huge(name: str, data: bytes) -> bytes:
        if name != "dense1.w.npy":
            return data
        fake = npy(np.zeros((1, 1), np.float32)).replace(b"(1, 1)", b"(10000000, 1000000)")
        return fake  # the header announces 37 TiB; the member holds 4 bytes of data

    path = rewrite(saved(tmp_path), huge)
    with pytest.raises(ModelError, match=r"dense1.w.npy: its header says float32\[10000000, "
                       r"1000000\], which does not fit its \d+ bytes"):  # fmt: skip
        load_model(path)
    assert peak_bytes(lambda: load_model(path)) < 1 << 20


def test_zip_member_claiming_more_than_its_compressed_size(tmp_path: Path) -> None:
    path = rewrite(saved(tmp_path), lambda name, data: data)  # deflated, as a bomb would be
    data = bytearray(path.read_bytes())
    # the central directory's uncompressed size of the first member: 4 GiB - 1
    start = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, start + 24, 0xFFFFFFFE)
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="claims 4 GiB from .*: a zip bomb or a damaged archive"):
        load_model(path)


def test_zip_bomb_larger_than_memory(tmp_path: Path, monkeypatch) -> None:
    path = rewrite(
        saved(tmp_path),
        lambda name, data: npy(np.zeros((4 << 20,), np.uint8)) if name == "dense1.b.npy" else data,
    )
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(memory, "memory", lambda: (1 << 20, 2 << 20))
    with pytest.raises(ModelError, match=r"changed.npz: its arrays needs 4 MiB; this machine has "
                       r"1 MiB free of 2 MiB"):  # fmt: skip
        load_model(path)


def test_description_larger_than_the_arrays(tmp_path: Path) -> None:
    def bigger(name: str, data: bytes) -> bytes:
        if name != "model.json.npy":
            return data
        head = json.loads(np.load(io.BytesIO(data)).tobytes())
        head["model"]["layers"][0]["units"] = 10_000_000
        return npy(np.frombuffer(json.dumps(head).encode(), np.uint8))

    path = rewrite(saved(tmp_path), bigger)
    with pytest.raises(ModelError, match=r"it describes 90,000,003 parameters, the file holds 39"):
        load_model(path)
    assert peak_bytes(lambda: load_model(path)) < 4 << 20


def test_data_too_large_for_memory_as_floats(monkeypatch) -> None:
    from digitlab.lab.config import make_config
    from digitlab.lab.experiment import prepare_data

    config = make_config({"dtype": "float64"})
    assert prepare_data(config).splits.train.x.dtype == np.float64
    # the digits: 1,797 x 64 bytes as read, 8 times that as float64
    monkeypatch.setattr(memory, "memory", lambda: (400_000, 800_000))
    with pytest.raises(DataError, match=r"the digits data as float64 needs 1.\d+ MiB; this "
                       r"machine has 391 KiB free of 781 KiB"):  # fmt: skip
        prepare_data(config)


def test_an_allocation_no_check_foresaw_is_one_line(cli, monkeypatch, tmp_path: Path) -> None:
    def fail(*args, **kwargs):
        raise MemoryError("Unable to allocate 40.0 GiB for an array with shape (10, 10)")

    monkeypatch.setattr("digitlab.lab.experiment.prepare_data", fail)
    code, _, err = cli(["train", "--out", str(tmp_path / "run"), "--no-report", "--quiet"])
    assert code == 1
    assert err.strip() == ("digitlab: error: out of memory (Unable to allocate 40.0 GiB for an "
                           "array with shape (10, 10))")  # fmt: skip


def test_csv_larger_than_memory(tmp_path: Path, monkeypatch) -> None:
    from digitlab.data.csvdata import read_csv

    path = tmp_path / "train.csv"
    path.write_text("label," + ",".join(f"pixel{i}" for i in range(4)) + "\n" + "1,0,0,9,9\n" * 400)
    assert read_csv(path)[0].shape == (400, 4)
    monkeypatch.setattr(memory, "memory", lambda: (8192, 16384))
    with pytest.raises(DataError, match=r"train.csv: reading it needs 19.7 KiB; this machine has "
                       r"8 KiB free of 16 KiB"):  # fmt: skip
        read_csv(path)
