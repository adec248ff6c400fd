import numpy as np
import pytest

import digitlab.core  # noqa: F401  (importing the package registers the image layers)
from digitlab.core import images as images_module
from digitlab.core.layers import LAYERS
from digitlab.core.model import build_model
from digitlab.core.optim import get_optimizer
from digitlab.core.schedules import batch_size_schedule, get_schedule
from digitlab.core.train import TrainOptions, fit
from digitlab.diagnostics.gradcheck import STEP, check_model, relative_error
from digitlab.errors import ConfigError
from digitlab.lab.modelfile import load_model, save_model

RELU = {"type": "activation", "name": "relu"}
TANH = {"type": "activation", "name": "tanh"}
FLATTEN = {"type": "flatten"}


def conv(filters=3, kernel_size=3, **kwargs):
    return {"type": "conv2d", "filters": filters, "kernel_size": kernel_size, **kwargs}


def images(shape=(2, 6, 6)):
    return [{"type": "reshape", "shape": list(shape)}]


def build(spec, shape=(2, 6, 6), seed=3, dtype=np.float64):
    return build_model(spec, int(np.prod(shape)), np.random.default_rng(seed), dtype)


def assert_gradients(model, x, y):
    results = check_model(model, x, y)
    worst = max(results, key=lambda r: r.error)
    assert worst.passed, results


def input_gradient_error(lay, x, seed=0):
    """backward(g) against the central difference of sum(forward(x) * g) for every input."""
    g = np.random.default_rng(seed).standard_normal(lay.forward(x, training=True).shape)
    analytic = lay.backward(g)
    numeric = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        saved = x[index]
        x[index] = saved + STEP
        plus = float((lay.forward(x, training=True) * g).sum())
        x[index] = saved - STEP
        minus = float((lay.forward(x, training=True) * g).sum())
        x[index] = saved
        numeric[index] = (plus - minus) / (2 * STEP)
    return relative_error(analytic, numeric)


def naive_conv(x, w, b, stride, pads):
    """The definition, one output pixel at a time: x (n, c, h, w), w (kh, kw, c, f)."""
    (top, bottom), (left, right) = pads
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    kh, kw, _, f = w.shape
    oh, ow = (x.shape[2] - kh) // stride + 1, (x.shape[3] - kw) // stride + 1
    z = np.zeros((x.shape[0], f, oh, ow))
    for r in range(oh):
        for s in range(ow):
            patch = x[:, :, r * stride : r * stride + kh, s * stride : s * stride + kw]
            z[:, :, r, s] = np.einsum("nchw,hwcf->nf", patch, w) + b
    return z


# ---------------------------------------------------------------- forward against the definition


@pytest.mark.parametrize(
    ("kernel_size", "stride", "padding", "pads"),
    [
        (3, 1, 0, ((0, 0), (0, 0))),
        (3, 2, 1, ((1, 1), (1, 1))),
        (3, 1, "same", ((1, 1), (1, 1))),
        (2, 1, "same", ((0, 1), (0, 1))),
        (2, 2, 0, ((0, 0), (0, 0))),
        ([3, 1], 1, 0, ((0, 0), (0, 0))),
    ],
)
@pytest.mark.parametrize("channels", [1, 2])  # im2col copies one channel differently
@pytest.mark.parametrize("chunks", ["whole batch", "image by image"])
def test_conv_matches_the_definition(
    kernel_size, stride, padding, pads, channels, chunks, rng, monkeypatch
):
    if chunks == "image by image":  # the products made a chunk of images at a time
        monkeypatch.setattr(images_module, "CHUNK_BYTES", 1)
    shape = (channels, 7, 6)
    model = build(images(shape) + [conv(4, kernel_size, stride=stride, padding=padding)], shape)
    lay = model.layers[1]
    lay.params["b"][:] = rng.standard_normal(4)
    x = rng.standard_normal((3, *shape))
    expected = naive_conv(x, lay.params["w"], lay.params["b"], stride, pads)
    z = model.forward(x.reshape(3, -1))
    assert z.shape == expected.shape
    np.testing.assert_allclose(z, expected, rtol=1e-12, atol=1e-12)
    if padding == "same":
        assert z.shape[2:] == (7, 6)


def test_maxpool_and_avgpool_match_the_definition(rng):
    x = rng.standard_normal((2, 3, 7, 7))
    for size, stride in [(2, 2), (3, 2), (2, 1), (3, 3)]:
        for kind, reduce in [("maxpool2d", np.max), ("avgpool2d", np.mean)]:
            model = build(
                images((3, 7, 7)) + [{"type": kind, "size": size, "stride": stride}], (3, 7, 7)
            )
            out = model.forward(x.reshape(2, -1))
            o = (7 - size) // stride + 1
            assert out.shape == (2, 3, o, o)
            for r in range(o):
                for s in range(o):
                    window = x[:, :, r * stride : r * stride + size, s * stride : s * stride + size]
                    np.testing.assert_allclose(out[:, :, r, s], reduce(window, axis=(2, 3)))


# ---------------------------------------------------------------- gradient checks (float64)


@pytest.mark.parametrize(
    "conv_args",
    [
        {"kernel_size": 3, "stride": 1, "padding": 0},
        {"kernel_size": 3, "stride": 1, "padding": 1},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": 3, "padding": "same"},
        {"kernel_size": 2, "padding": "same"},
        {"kernel_size": 2, "stride": 2},
    ],
)
@pytest.mark.parametrize("pool", ["maxpool2d", "avgpool2d"])
def test_conv_pool_dense_gradients(conv_args, pool, rng):
    # two convolutions, so that the second one's input gradient feeds the first one's weights
    spec = images() + [
        conv(3, **conv_args),
        TANH,
        conv(2, kernel_size=2, padding="same"),
        RELU,
        {"type": pool, "size": 2},
        FLATTEN,
        {"type": "dense", "units": 3},
    ]
    model = build(spec)
    model.layers[3].params["b"][:] = 0.1  # keep the ReLU inputs away from its kink
    x, y = rng.standard_normal((4, 72)), rng.integers(0, 3, 4)
    assert_gradients(model, x, y)


@pytest.mark.parametrize(
    "lay_spec",
    [
        conv(3, 3),
        conv(2, 2, stride=2, padding=1),
        conv(3, [2, 3], padding="same", bias=False),
        {"type": "maxpool2d", "size": 2},
        {"type": "maxpool2d", "size": 3, "stride": 2},
        {"type": "maxpool2d", "size": 2, "stride": 1},
        {"type": "maxpool2d", "size": 2, "stride": 3},  # gaps between the windows
        {"type": "avgpool2d", "size": [1, 2]},
        {"type": "avgpool2d", "size": 3, "stride": 2},
        {"type": "avgpool2d", "size": 2, "stride": 1},
        {"type": "batchnorm"},
    ],
)
@pytest.mark.parametrize("chunks", ["whole batch", "image by image"])
def test_input_gradients(lay_spec, chunks, rng, monkeypatch):
    if chunks == "image by image":  # a convolution's products a chunk of images at a time
        monkeypatch.setattr(images_module, "CHUNK_BYTES", 1)
    # an odd 7 x 5 image; right after the reshape nothing upstream is trained, so the model
    # switches the input gradient off: switch it on to check it
    model = build(images((2, 7, 5)) + [lay_spec], (2, 7, 5))
    lay = model.layers[1]
    assert not lay.needs_input_grad
    lay.needs_input_grad = True
    assert input_gradient_error(lay, rng.standard_normal((3, 2, 7, 5))) < 1e-6


def test_flat_batchnorm_input_gradient(rng):
    model = build([{"type": "dense", "units": 4}, {"type": "batchnorm"}], (5,))
    assert input_gradient_error(model.layers[1], rng.standard_normal((6, 4))) < 1e-6


def test_batchnorm_gradients(rng):
    spec = images() + [
        conv(3, 3, padding=1, bias=False),
        {"type": "batchnorm"},
        TANH,
        {"type": "avgpool2d", "size": 2},
        FLATTEN,
        {"type": "dense", "units": 5},
        {"type": "batchnorm", "momentum": 0.5},
        TANH,
        {"type": "dense", "units": 3},
    ]
    model = build(spec)
    for lay in model.layers:  # away from gamma = 1, beta = 0, where some terms vanish
        if lay.name.startswith("batchnorm"):
            lay.params["gamma"][:] = rng.uniform(0.5, 1.5, lay.params["gamma"].shape)
            lay.params["beta"][:] = rng.standard_normal(lay.params["beta"].shape)
    x, y = rng.standard_normal((6, 72)), rng.integers(0, 3, 6)
    results = check_model(model, x, y)
    # batch norm subtracts the batch mean, so the loss does not depend on dense1.b at all: its
    # gradient is zero up to rounding, below the finite differences' resolution, and passes
    assert np.abs(model.layers[6].grads["b"]).max() < 1e-12
    assert {r.name: r.error for r in results}["dense1.b"] == 0
    worst = max(results, key=lambda r: r.error)
    assert worst.passed, results


def test_a_wrong_conv_gradient_fails_the_check(rng):
    model = build(images() + [conv(2, 3), TANH, FLATTEN, {"type": "dense", "units": 3}])
    lay = model.layers[1]
    backward = lay.backward

    def wrong(dout):
        dx = backward(dout)
        lay.grads["w"][0, 0] *= 1.5
        return dx

    lay.backward = wrong
    results = check_model(model, rng.standard_normal((4, 72)), rng.integers(0, 3, 4))
    assert [r.passed for r in results] == [False, True, True, True]


# ---------------------------------------------------------------- shapes, dtypes, behaviour


def small_cnn():
    return images((1, 12, 12)) + [
        conv(4, 3),
        RELU,
        {"type": "maxpool2d", "size": 2},
        conv(6, 2, stride=2, padding=1),
        {"type": "batchnorm"},
        RELU,
        {"type": "avgpool2d", "size": 2},
        FLATTEN,
        {"type": "dense", "units": 8},
        {"type": "batchnorm"},
        RELU,
        {"type": "dense", "units": 10},
    ]


def test_shapes_names_and_registry(rng):
    assert {"conv2d", "maxpool2d", "avgpool2d", "batchnorm"} <= set(LAYERS)
    model = build(small_cnn(), (1, 12, 12), dtype=np.float32)
    assert [lay.name for lay in model.layers] == [
        "reshape1", "conv1", "relu1", "maxpool1", "conv2", "batchnorm1", "relu2",
        "avgpool1", "flatten1", "dense1", "batchnorm2", "relu3", "dense2",
    ]  # fmt: skip
    x = rng.standard_normal((5, 144)).astype(np.float32)
    shapes = []
    for lay in model.layers:
        x = lay.forward(x, training=True)
        shapes.append(x.shape[1:])
    assert shapes == [
        (1, 12, 12), (4, 10, 10), (4, 10, 10), (4, 5, 5), (6, 3, 3), (6, 3, 3), (6, 3, 3),
        (6, 1, 1), (6,), (8,), (8,), (8,), (10,),
    ]  # fmt: skip
    assert model.layers[1].params["w"].shape == (3, 3, 1, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_backward_keep_dtype(dtype, rng):
    model = build(small_cnn(), (1, 12, 12), dtype=dtype)
    x = rng.standard_normal((5, 144)).astype(dtype)
    for training in (True, False):
        logits = model.forward(x, training=training)
        assert logits.dtype == dtype
    model.forward(x, training=True)
    dout = np.ones_like(logits)
    for lay in reversed(model.layers[2:]):
        dout = lay.backward(dout)
        assert dout.dtype == dtype, lay.name
    assert model.layers[1].backward(dout) is None  # the first conv: parameter gradients only
    for _, p, g in model.parameters():
        assert p.dtype == dtype and g.dtype == dtype
    for _, buffer in model.buffers():
        assert buffer.dtype == dtype


def test_first_layer_skips_its_input_gradient(rng):
    model = build(images() + [conv(2, 3)])
    lay = model.layers[1]
    lay.needs_input_grad = False
    x = rng.standard_normal((2, 2, 6, 6))
    out = lay.forward(x, training=True)
    assert lay.backward(np.ones_like(out)) is None
    assert np.abs(lay.grads["w"]).sum() > 0


def test_maxpool_tie_sends_the_gradient_to_the_first_maximum():
    model = build(images((1, 4, 4)) + [{"type": "maxpool2d", "size": 2}], (1, 4, 4))
    pool = model.layers[1]
    pool.needs_input_grad = True  # off after the data's reshape: nothing upstream is trained
    x = np.ones((1, 1, 4, 4))
    x[0, 0, 3, 3] = 2.0
    pool.forward(x, training=True)
    dx = pool.backward(np.ones((1, 1, 2, 2)))
    expected = np.zeros((4, 4))
    expected[0, 0] = expected[0, 2] = expected[2, 0] = expected[3, 3] = 1.0
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size, stride", [(2, 2), (3, 2)])  # tiled and overlapping windows
def test_pooling_before_relu_is_the_same_network(dtype, size, stride):
    """max and ReLU commute, relu(max(window)) = max(relu(window)), and the gradient reaches
    the same pixels (the first maximum, and nothing from a window whose maximum is <= 0): the
    recipes' conv - maxpool - relu order computes conv - relu - maxpool's numbers exactly,
    with its ReLU on a quarter of the numbers (benchmarks/PERFORMANCE.md)."""
    pool = {"type": "maxpool2d", "size": size, "stride": stride}
    head = [conv(4, 3, padding=1)]
    tail = [FLATTEN, {"type": "dense", "units": 5}]
    relu_first = build(images((2, 9, 9)) + head + [RELU, pool] + tail, (2, 9, 9), dtype=dtype)
    pool_first = build(images((2, 9, 9)) + head + [pool, RELU] + tail, (2, 9, 9), dtype=dtype)
    rng = np.random.default_rng(4)
    # small integers: ties inside windows, windows whose maximum is 0 or below, exact zeros
    x = rng.integers(-2, 3, (6, 2 * 9 * 9)).astype(dtype)
    y = rng.integers(0, 5, 6)
    for model in (relu_first, pool_first):
        for _, w, _ in model.parameters():
            w[...] = np.round(w * 4) / 4  # weights in quarters keep the ties in z
    outputs = [m.forward(x, training=True) for m in (relu_first, pool_first)]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    for model, out in zip((relu_first, pool_first), outputs, strict=True):
        model.backward(np.eye(5, dtype=dtype)[y] - out / len(x))
    z = relu_first.layers[1].forward(x.reshape(6, 2, 9, 9), training=False)
    assert (z == 0).any() and (z < 0).any()  # the edge cases are there
    pairs = zip(relu_first.parameters(), pool_first.parameters(), strict=True)
    for (name, _, g_relu_first), (_, _, g_pool_first) in pairs:
        assert np.abs(g_relu_first).sum() > 0, name
        np.testing.assert_array_equal(g_relu_first, g_pool_first, err_msg=name)


def test_same_seed_same_weights():
    first, second = build(small_cnn(), (1, 12, 12)), build(small_cnn(), (1, 12, 12))
    for (_, a, _), (_, b, _) in zip(first.parameters(), second.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            images((1, 4, 4)) + [conv(2, 5)],
            r"layer 2 \(conv2d\): kernel_size \(5, 5\) is larger than the \(padded\) input",
        ),
        (images((1, 4, 4)) + [conv(0, 3)], "filters > 0"),
        (images((1, 4, 4)) + [conv(2, 3, stride=2, padding="same")], "needs stride 1"),
        (images((1, 4, 4)) + [conv(2, 3, padding="valid")], "padding must be"),
        (images((1, 4, 4)) + [conv(2, -1)], "kernel_size must be"),
        ([conv(2, 3)], r"needs images \(channels, height, width\)"),
        (images((1, 4, 4)) + [{"type": "maxpool2d", "size": 5}], r"pool size \(5, 5\) is larger"),
        (images((1, 4, 4)) + [{"type": "avgpool2d", "size": 2, "stride": 0}], "stride must"),
        (images((1, 4, 4)) + [{"type": "batchnorm", "momentum": 0}], "momentum"),
        (images((1, 4, 4)) + [{"type": "conv2d", "filters": 2}], "kernel_size"),
    ],
)
def test_bad_specs_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        build(spec, (1, 4, 4))


# ---------------------------------------------------------------- batch norm


def test_batchnorm_train_and_eval(rng):
    model = build(images((3, 4, 4)) + [{"type": "batchnorm", "momentum": 0.25}], (3, 4, 4))
    bn = model.layers[1]
    x = rng.standard_normal((8, 3, 4, 4)) * [[[2.0]], [[0.5]], [[1.0]]] + [[[1.0]], [[-3]], [[0]]]
    out = bn.forward(x, training=True)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-4)
    m = 8 * 4 * 4
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.25 * x.mean(axis=(0, 2, 3)))
    unbiased = x.var(axis=(0, 2, 3)) * m / (m - 1)
    np.testing.assert_allclose(bn.buffers["running_var"], 0.75 + 0.25 * unbiased)
    # evaluation: the running statistics, and nothing changes
    before = {k: v.copy() for k, v in bn.buffers.items()}
    out = bn.forward(x, training=False)
    mean, var = bn.buffers["running_mean"], bn.buffers["running_var"]
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    for key, value in bn.buffers.items():
        np.testing.assert_array_equal(value, before[key])


def test_batchnorm_on_flat_features(rng):
    model = build([{"type": "batchnorm"}], (5,), dtype=np.float32)
    x = (rng.standard_normal((16, 5)) * 3 + 2).astype(np.float32)
    out = model.forward(x, training=True)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    assert [name for name, _ in model.buffers()] == [
        "batchnorm1.running_mean",
        "batchnorm1.running_var",
    ]


def test_batchnorm_running_stats_survive_save_and_load(tmp_path, rng):
    model = build(small_cnn(), (1, 12, 12), dtype=np.float32)
    x = rng.standard_normal((64, 144)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    options = TrainOptions(1, batch_size_schedule(16), get_schedule("constant", 0.05, 1))
    fit(model, x, y, get_optimizer("sgd", 0.05), options, rng=rng)
    stats = dict(model.buffers())
    assert not np.allclose(stats["batchnorm1.running_mean"], 0)
    loaded, _ = load_model(save_model(model, tmp_path / "cnn.npz"))
    for name, value in loaded.buffers():
        np.testing.assert_array_equal(value, stats[name])
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert loaded.forward(x).dtype == np.float32


# ---------------------------------------------------------------- end to end


def test_a_small_cnn_learns_the_8x8_digits():
    from digitlab.core.evaluation import evaluate
    from digitlab.data import build_pipeline, load_digits

    data = load_digits()
    pipeline = build_pipeline(max_value=data.max_value, image_shape=(8, 8), standardize=True)
    x, x_test = pipeline.fit_transform(data.x_train), pipeline(data.x_test)
    spec = images((1, 8, 8)) + [
        conv(8, 3, padding="same"),
        {"type": "batchnorm"},
        RELU,
        {"type": "maxpool2d", "size": 2},
        FLATTEN,
        {"type": "dense", "units": 10},
    ]
    rng = np.random.default_rng(0)
    model = build_model(spec, 64, rng)
    options = TrainOptions(4, batch_size_schedule(32), get_schedule("constant", 0.05, 4))
    fit(model, x, data.y_train, get_optimizer("momentum", 0.05), options, rng=rng)
    result = evaluate(model, x_test, data.y_test)
    assert result.accuracy >= 0.95
    assert result.probabilities.dtype == np.float32
