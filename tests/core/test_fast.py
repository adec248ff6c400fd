"""The optional compiled path (digitlab.fast): every kernel gives the NumPy code's numbers.

Skipped where numba is not installed. The kernels are only used for arrays of fast.MIN_SIZE
numbers or more; these tests lower that to 0 so that their small arrays take them.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

import digitlab.core  # noqa: E402, F401  (registers the image layers)
from digitlab import fast  # noqa: E402
from digitlab.core import images as images_module  # noqa: E402
from digitlab.core.layers import Activation  # noqa: E402
from digitlab.core.model import build_model  # noqa: E402
from digitlab.core.optim import get_optimizer  # noqa: E402
from digitlab.core.schedules import batch_size_schedule, get_schedule  # noqa: E402
from digitlab.core.train import TrainOptions, fit  # noqa: E402
from digitlab.diagnostics.gradcheck import check_model  # noqa: E402

DTYPES = [np.float32, np.float64]
RELU = {"type": "activation", "name": "relu"}


@pytest.fixture(autouse=True)
def every_size(monkeypatch):
    monkeypatch.setattr(fast, "MIN_SIZE", 0)
    yield
    fast.set_enabled(None)  # as the environment says, after tests that switch it


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    """Compile (or load from numba's cache) the kernels for both dtypes once, up front."""
    for dtype in DTYPES:
        x = np.ones((1, 2, 3, 3), dtype)
        with fast.compiled(True):
            fast.relu_backward(fast.relu(x), x)
            out, argmax = fast.maxpool(x, (2, 2), (1, 1))
            fast.maxpool_backward(out, argmax, x.shape, (2, 2), (1, 1))
            fast.im2col(x, (2, 2), (1, 1), ((0, 0), (0, 0)))
            dz, w = np.ones((2, 4), dtype), np.ones((2, 2, 3, 4), dtype)  # x (1, 2, 3, 3) -> (1, 2)
            fast.conv_input_gradient(dz, w, x.shape, (1, 1), ((0, 0), (0, 0)))
            fast.add_bias(dz, dz[0])


def same_bits(a, b):
    """Equal bit for bit (NaN, -0 included), in the same dtype and shape."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def both_ways(run):
    """run() with the compiled path off, then on."""
    with fast.compiled(False):
        plain = run()
    with fast.compiled(True):
        compiled = run()
    return plain, compiled


def images(rng, shape, dtype, channels_last=True, ties=True):
    """(n, c, h, w) over channels-last memory as the image layers pass it on, or plain C
    order; small whole numbers (ties in the pools), a NaN, +0 and -0 among them."""
    n, c, h, w = shape
    values = rng.integers(-3, 4, (n, h, w, c)) if ties else rng.standard_normal((n, h, w, c))
    x = values.astype(dtype)
    x.flat[:: max(1, x.size // 5)] = -0.0
    x.flat[1] = np.nan if x.size > 8 else x.flat[1]
    return (
        x.transpose(0, 3, 1, 2) if channels_last else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    )


def layer(spec, shape, dtype):
    model = build_model([{"type": "reshape", "shape": list(shape[1:])}, spec],
                        int(np.prod(shape[1:])), np.random.default_rng(0), dtype)  # fmt: skip
    lay = model.layers[1]
    lay.needs_input_grad = True
    return lay


POOLS = [  # (n, c, h, w), size, stride
    ((1, 1, 7, 9), [3, 2], [2, 1]),  # overlapping rows, odd sizes, n = 1, one channel
    ((3, 3, 8, 8), 2, 2),  # tiled
    ((2, 3, 9, 7), 3, 2),  # overlapping, the last row and column uncovered
    ((2, 1, 8, 9), 2, 3),  # gaps between the windows
    ((2, 3, 6, 6), [1, 2], [1, 2]),
    ((2, 4, 5, 5), 2, 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "size", "stride"), POOLS)
@pytest.mark.parametrize("channels_last", [True, False])
def test_maxpool_same_as_numpy(shape, size, stride, dtype, channels_last, rng):
    x = images(rng, shape, dtype, channels_last)
    dout_shape = layer({"type": "maxpool2d", "size": size, "stride": stride}, shape, dtype)
    dout = rng.standard_normal(dout_shape.forward(x, False).shape).astype(dtype)

    def run():
        lay = layer({"type": "maxpool2d", "size": size, "stride": stride}, shape, dtype)
        out = lay.forward(x, True)
        return out, lay._argmax.copy(), lay.backward(dout), lay.forward(x, False)

    plain, compiled = both_ways(run)
    for a, b in zip(plain, compiled, strict=True):
        assert same_bits(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["c_order", "channels_last", "strided", "dout_other_order"])
def test_relu_same_as_numpy(layout, dtype, rng):
    z = rng.standard_normal((6, 5, 4, 3)).astype(dtype)
    z.flat[:6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, -np.nan]
    dout = rng.standard_normal(z.shape).astype(dtype)
    dout.flat[6:9] = [np.nan, np.inf, -0.0]
    if layout == "c_order":
        pass
    elif layout == "channels_last":
        z, dout = z.transpose(0, 3, 1, 2), dout.transpose(0, 3, 1, 2)
    elif layout == "strided":
        z, dout = z[:, ::2], dout[:, ::2]
    else:
        z, dout = z.transpose(0, 3, 1, 2), np.ascontiguousarray(dout.transpose(0, 3, 1, 2))

    def run():
        lay = Activation("relu")
        a = lay.forward(z, True)
        return a, lay.backward(dout)

    plain, compiled = both_ways(run)
    for a, b in zip(plain, compiled, strict=True):
        assert same_bits(a, b) and a.strides == b.strides


CONVS = [  # (n, c, h, w), layer keys
    ((1, 1, 7, 6), {"filters": 2, "kernel_size": 3}),
    ((3, 3, 8, 7), {"filters": 4, "kernel_size": [2, 3], "padding": "same", "bias": False}),
    ((2, 3, 9, 9), {"filters": 3, "kernel_size": 3, "stride": 2, "padding": 1}),
    ((2, 1, 8, 8), {"filters": 5, "kernel_size": 2, "stride": 2}),
    ((2, 2, 6, 5), {"filters": 2, "kernel_size": 3, "stride": [1, 2], "padding": 2}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "keys"), CONVS)
@pytest.mark.parametrize("chunk", ["whole batch", "image by image"])
def test_conv_same_as_numpy(shape, keys, dtype, chunk, rng, monkeypatch):
    if chunk == "image by image":  # both paths make their products an image at a time
        monkeypatch.setattr(images_module, "CHUNK_BYTES", 1)
    x = images(rng, shape, dtype, ties=False)
    x.flat[1] = 0.5
    spec = {"type": "conv2d", **keys}
    dout = rng.standard_normal(layer(spec, shape, dtype).forward(x, False).shape).astype(dtype)

    def run():
        lay = layer(spec, shape, dtype)
        z = lay.forward(x, True)
        dx = lay.backward(dout)
        return z, dx, *(g.copy() for g in lay.grads.values())

    plain, compiled = both_ways(run)
    for a, b in zip(plain, compiled, strict=True):
        assert same_bits(a, b)


@pytest.mark.parametrize(
    "spec",
    [
        [{"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": 1}, RELU,
         {"type": "maxpool2d", "size": 2},
         {"type": "conv2d", "filters": 2, "kernel_size": 2, "stride": 2}, RELU],
        [{"type": "conv2d", "filters": 2, "kernel_size": 2}, RELU,
         {"type": "maxpool2d", "size": 3, "stride": 2},
         {"type": "conv2d", "filters": 2, "kernel_size": [2, 3], "padding": "same"}],
    ],
)  # fmt: skip
def test_gradients_pass_with_the_compiled_path(spec, rng):
    model = build_model(
        [{"type": "reshape", "shape": [2, 7, 8]}, *spec, {"type": "flatten"},
         {"type": "dense", "units": 3}],
        112, np.random.default_rng(3), np.float64,
    )  # fmt: skip
    for lay in model.layers:
        if "b" in lay.params:
            lay.params["b"][:] = 0.1  # keep the ReLU inputs away from the kink
    x, y = rng.standard_normal((4, 112)), rng.integers(0, 3, 4)
    with fast.compiled(True):
        results = check_model(model, x, y)
    assert all(r.passed for r in results), results


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_convolution_in_chunks_at_the_recipes_size(dtype, rng):
    """cnn_augment's second convolution (32 -> 64 channels, 14x14, padding 1) on 42 images:
    im2col with its product, and the input gradient's products, are made a few images at a time
    (9 in float32, 4 in float64), the last chunk short."""
    shape = (42, 32, 14, 14)
    x = rng.standard_normal(shape).astype(dtype)
    spec = {"type": "conv2d", "filters": 64, "kernel_size": 3, "padding": 1}
    dout = rng.standard_normal((42, 64, 14, 14)).astype(dtype)
    per_chunk = images_module.CHUNK_BYTES // (9 * 14 * 14 * 32 * np.dtype(dtype).itemsize)
    assert 1 < per_chunk < 42 and 42 % per_chunk != 0

    def run():
        lay = layer(spec, shape, dtype)
        z = lay.forward(x, True)
        return z, lay.backward(dout), *(g.copy() for g in lay.grads.values())

    plain, compiled = both_ways(run)
    for a, b in zip(plain, compiled, strict=True):
        assert same_bits(a, b)


def small_cnn_weights(dtype):
    spec = [
        {"type": "reshape", "shape": [1, 8, 8]},
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "padding": 1},
        RELU,
        {"type": "maxpool2d", "size": 2},
        {"type": "conv2d", "filters": 6, "kernel_size": 3},
        RELU,
        {"type": "maxpool2d", "size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 10},
    ]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((96, 64)).astype(dtype)
    y = rng.integers(0, 10, 96)
    model = build_model(spec, 64, np.random.default_rng(0), dtype)
    options = TrainOptions(3, batch_size_schedule(32), get_schedule("constant", 0.05, 3))
    fit(model, x, y, get_optimizer("momentum", 0.05), options, rng=np.random.default_rng(1))
    return [w.copy() for _, w, _ in model.parameters()]


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_seeded_fit_gives_the_same_weights(dtype):
    plain, compiled = both_ways(lambda: small_cnn_weights(dtype))
    assert len(plain) == 6
    for a, b in zip(plain, compiled, strict=True):
        assert same_bits(a, b)


def test_the_switch_and_what_falls_back(monkeypatch):
    monkeypatch.setenv("DIGITLAB_COMPILED", "0")
    fast.set_enabled(None)
    assert not fast.enabled() and not fast.handles(np.ones(4))
    monkeypatch.setenv("DIGITLAB_COMPILED", "1")
    fast.set_enabled(None)
    assert fast.enabled() and fast.handles(np.ones(4, np.float32))
    # dtypes the kernels do not take, mixed dtypes, and (at the real threshold) small arrays
    assert not fast.handles(np.ones(4, np.float16))
    assert not fast.handles(np.ones(4, np.int64))
    assert not fast.handles(np.ones(4, np.float32), np.ones(4))
    monkeypatch.setattr(fast, "MIN_SIZE", 1 << 16)
    assert not fast.handles(np.ones(100, np.float32))
    assert fast.handles(np.ones(1 << 16, np.float32))
    # a dtype the kernels do not take goes the NumPy way, with its numbers
    z = np.array([-1.0, 2.0], np.float16)
    assert np.array_equal(Activation("relu").forward(z, False), [0, 2])


def test_importing_digitlab_and_an_mlp_do_not_import_numba():
    # an MLP's ReLU on rows, however many, keeps the NumPy code: loading numba and LLVM costs
    # about 0.3 s and 70-100 MB, which only the image layers' passes repay
    code = (
        "import sys, numpy as np, digitlab, digitlab.cli\n"
        "from digitlab.core.layers import Activation\n"
        "relu = Activation('relu')\n"
        "a = relu.forward(np.ones((2048, 256), np.float32), True)\n"
        "relu.backward(a)\n"
        "print('numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_run_records_whether_the_path_was_on(cli, tmp_path, monkeypatch):
    for setting, expected in (("0", False), ("1", True)):
        monkeypatch.setenv("DIGITLAB_COMPILED", setting)
        fast.set_enabled(None)
        folder = tmp_path / setting
        args = ["train", "--hidden-sizes", "8", "--epochs", "1", "--out", str(folder)]
        code, _, err = cli([*args, "--no-report"])
        assert code == 0, err
        assert json.loads((folder / "status.json").read_text())["compiled"] is expected
