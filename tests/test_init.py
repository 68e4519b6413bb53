"""Tests of torchbrain.init: unit-aware initializers and ``param``."""

import copy
import math
import pickle

import numpy as np
import pytest
import torch

from torchbrain.init import (
    Constant,
    Initializer,
    KaimingNormal,
    KaimingUniform,
    Normal,
    Orthogonal,
    TruncatedNormal,
    Uniform,
    VarianceScaling,
    XavierNormal,
    XavierUniform,
    ZeroInit,
    compute_fans,
    param,
)
from torchbrain.units import Quantity, UnitError, is_quantity, to_tensor, u

N = 100_000

RANDOM_INITS = [
    Uniform(),
    Normal(),
    TruncatedNormal(),
    VarianceScaling(),
    KaimingNormal(),
    KaimingUniform(),
    XavierNormal(),
    XavierUniform(),
    Orthogonal(),
]
ALL_INITS = [Constant(1.5), ZeroInit(), *RANDOM_INITS]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- shapes, dtypes
@pytest.mark.parametrize("init", ALL_INITS, ids=repr)
@pytest.mark.parametrize("shape", [(7, 5), (4, 3, 2, 2)])
def test_shape_and_default_dtype(init, shape):
    out = init(shape)
    assert isinstance(out, torch.Tensor)
    assert out.shape == shape
    assert out.dtype == torch.get_default_dtype()
    assert out.device.type == "cpu"
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("init", [i for i in ALL_INITS if not isinstance(i, Orthogonal)], ids=repr)
def test_int_shape_and_1d(init):
    out = init(6)
    assert out.shape == (6,)


@pytest.mark.parametrize("init", ALL_INITS, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_dtype(init, dtype):
    out = init((8, 4), dtype=dtype)
    assert out.dtype == dtype


@pytest.mark.parametrize("init", ALL_INITS, ids=repr)
def test_explicit_device_and_default_dtype_change(init):
    out = init((3, 2), device="cpu")
    assert out.device == torch.device("cpu")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert init((3, 2)).dtype == torch.float64
    finally:
        torch.set_default_dtype(old)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("init", ALL_INITS, ids=repr)
def test_cuda_device(init):
    out = init((3, 2), device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    assert out.device.type == "cuda"


@pytest.mark.parametrize("init", ALL_INITS, ids=repr)
def test_zero_size(init):
    assert init((0, 3)).shape == (0, 3)


def test_constant_and_zero_accept_integer_dtype():
    assert Constant(3)((2,), dtype=torch.int64).tolist() == [3, 3]
    assert ZeroInit()((2,), dtype=torch.int32).dtype == torch.int32


@pytest.mark.parametrize("init", RANDOM_INITS, ids=repr)
def test_random_needs_float_dtype(init):
    with pytest.raises(TypeError, match="floating-point"):
        init((3, 3), dtype=torch.int64)


@pytest.mark.parametrize("shape", [-1, (2, -3), "abc", (2.5,)])
def test_bad_shape(shape):
    with pytest.raises((TypeError, ValueError), match="shape"):
        Normal()(shape)


# --------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("init", RANDOM_INITS, ids=repr)
def test_generator_reproducible(init):
    a = init((16, 8), generator=gen(1))
    b = init((16, 8), generator=gen(1))
    c = init((16, 8), generator=gen(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_global_seed_reproducible():
    torch.manual_seed(3)
    a = Normal()((10,))
    torch.manual_seed(3)
    assert torch.equal(a, Normal()((10,)))


# --------------------------------------------------------------------------- statistics
def test_normal_statistics():
    x = Normal(3.0, 2.0)((N,), dtype=torch.float64, generator=gen())
    assert abs(x.mean().item() - 3.0) < 5 * 2.0 / math.sqrt(N)
    assert abs(x.std().item() - 2.0) < 0.02 * 2.0


def test_normal_zero_std_is_constant():
    assert torch.equal(Normal(1.0, 0.0)((5,)), torch.ones(5))


def test_uniform_statistics_and_bounds():
    x = Uniform(-70.0, 10.0)((N,), dtype=torch.float64, generator=gen())
    assert x.min() >= -70.0 and x.max() < 10.0
    sd = 80.0 / math.sqrt(12)
    assert abs(x.mean().item() + 30.0) < 5 * sd / math.sqrt(N)
    assert abs(x.std().item() - sd) < 0.02 * sd


@pytest.mark.parametrize(
    ("mean", "std", "low", "high"),
    [
        (0.0, 1.0, None, None),
        (-60.0, 5.0, -65.0, -40.0),
        (0.0, 1.0, 5.0, 6.0),
        (0.0, 1.0, -6.0, -5.0),
    ],
)
def test_truncated_normal_bounds_and_moments(mean, std, low, high):
    x = TruncatedNormal(mean, std, low, high)((N,), dtype=torch.float64, generator=gen())
    lo = mean - 2 * std if low is None else low
    hi = mean + 2 * std if high is None else high
    assert x.min() >= lo and x.max() <= hi
    # Moments of the truncated normal, computed here from the closed form.
    a, b = (lo - mean) / std, (hi - mean) / std

    def pdf(z):
        return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    def cdf(z):
        return 0.5 * math.erfc(-z / math.sqrt(2))

    Z = cdf(b) - cdf(a)
    m = (pdf(a) - pdf(b)) / Z
    var = 1 + (a * pdf(a) - b * pdf(b)) / Z - m * m
    expected_mean = mean + std * m
    expected_sd = std * math.sqrt(var)
    assert abs(x.mean().item() - expected_mean) < 5 * expected_sd / math.sqrt(N)
    assert abs(x.std().item() - expected_sd) < 0.03 * expected_sd


def test_truncated_normal_float32_bounds():
    x = TruncatedNormal(0.0, 1.0, -0.5, 0.5)((N,), generator=gen())
    assert x.dtype == torch.float32
    assert x.min() >= -0.5 and x.max() <= 0.5


def test_truncated_normal_tensor_params():
    low = torch.tensor([-1.0, 0.0, 1.0])
    x = TruncatedNormal(0.0, 1.0, low, low + 0.5)((1000, 3), generator=gen())
    assert (x >= low).all() and (x <= low + 0.5).all()


@pytest.mark.parametrize(
    ("init", "shape", "fan"),
    [
        (KaimingNormal(), (500, 200), 500),
        (KaimingUniform(), (500, 200), 500),
        (KaimingNormal(mode="fan_out"), (500, 200), 200),
        (KaimingUniform(scale=1.0, mode="fan_avg"), (500, 200), 350),
        (XavierNormal(), (500, 200), 350),
        (XavierUniform(), (500, 200), 350),
        (XavierNormal(scale=3.0), (500, 200), 350),
        (VarianceScaling(), (500, 200), 500),
        (VarianceScaling(2.0, "fan_out", "uniform"), (500, 200), 200),
        (VarianceScaling(2.0, "fan_in", "normal"), (500, 200), 500),
        (KaimingNormal(), (64, 32, 3, 3), 32 * 9),  # conv: (out, in, kh, kw)
        (KaimingNormal(mode="fan_out"), (64, 32, 3, 3), 64 * 9),
        (KaimingNormal(), (100_000,), 100_000),
    ],
    ids=lambda v: repr(v) if isinstance(v, Initializer) else str(v),
)
def test_variance_scaling_variance(init, shape, fan):
    w = init(shape, dtype=torch.float64, generator=gen())
    expected = init._scale / fan
    assert abs(w.mean().item()) < 5 * math.sqrt(expected / w.numel())
    assert abs(w.var().item() / expected - 1) < 0.05


def test_uniform_limits_of_kaiming():
    w = KaimingUniform()((400, 300), generator=gen())
    limit = math.sqrt(3 * 2.0 / 400)
    assert w.abs().max() <= limit
    assert w.abs().max() > 0.99 * limit


def test_truncated_variance_scaling_is_bounded():
    w = VarianceScaling(1.0, "fan_in", "truncated_normal")((400, 300), generator=gen())
    std = math.sqrt(1.0 / 400) / 0.87962566103423978
    assert w.abs().max() <= 2 * std * (1 + 1e-6)


def test_compute_fans():
    assert compute_fans(7) == (7, 7)
    assert compute_fans((3, 5)) == (3, 5)
    assert compute_fans((8, 4, 3, 3)) == (36, 72)
    assert compute_fans((8, 4, 5)) == (20, 40)
    with pytest.raises(ValueError, match="at least 1"):
        compute_fans(())
    with pytest.raises(ValueError, match="at least 1"):
        KaimingNormal()(())


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (40, 40)])
def test_orthogonal_2d(shape):
    w = Orthogonal()(shape, dtype=torch.float64, generator=gen())
    m = w.T @ w if shape[0] >= shape[1] else w @ w.T
    torch.testing.assert_close(m, torch.eye(min(shape), dtype=torch.float64))


def test_orthogonal_conv_and_scale():
    w = Orthogonal(scale=2.0)((16, 4, 3, 3), generator=gen()).reshape(16, -1)
    torch.testing.assert_close(w @ w.T, 4 * torch.eye(16), atol=1e-5, rtol=1e-5)


def test_orthogonal_float32_is_orthogonal():
    w = Orthogonal()((50, 20), generator=gen())
    torch.testing.assert_close(w.T @ w, torch.eye(20), atol=1e-5, rtol=1e-5)


def test_orthogonal_needs_2d():
    with pytest.raises(ValueError, match="Orthogonal.*at least 2"):
        Orthogonal()(5)


# --------------------------------------------------------------------------- constants
def test_constant_broadcasts_arrays_and_tensors():
    t = torch.tensor([1.0, 2.0, 3.0])
    out = Constant(t)((2, 3))
    assert torch.equal(out, t.expand(2, 3))
    assert out.is_contiguous()
    out[0, 0] = 10.0
    assert t[0] == 1.0  # a copy, never a view of the argument
    assert torch.equal(Constant(np.array([1.0, 2.0]))((3, 2))[2], torch.tensor([1.0, 2.0]))
    assert torch.equal(Constant([[1.0], [2.0]])((2, 2)), torch.tensor([[1.0, 1.0], [2.0, 2.0]]))


def test_constant_same_shape_tensor_is_copied():
    t = torch.zeros(3)
    out = Constant(t)(3)
    out += 1
    assert t.sum() == 0


def test_constant_bad_broadcast():
    with pytest.raises(ValueError, match="Constant.*'value'.*broadcast"):
        Constant(torch.ones(4))((2, 3))


def test_constant_keeps_autograd():
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    Constant(t)((3, 2)).sum().backward()
    assert torch.equal(t.grad, torch.tensor([3.0, 3.0]))


def test_zero_init():
    assert torch.equal(ZeroInit()((2, 2)), torch.zeros(2, 2))
    z = ZeroInit(unit="mV")(3)
    assert is_quantity(z) and z.units == u.mV and torch.equal(z.magnitude, torch.zeros(3))


def test_tensor_parameters_broadcast():
    mean = torch.tensor([0.0, 100.0])
    x = Normal(mean, 1.0)((1000, 2), generator=gen())
    assert x[:, 0].mean().abs() < 0.5 and (x[:, 1].mean() - 100).abs() < 0.5
    with pytest.raises(ValueError, match="Normal.*'mean'.*broadcast"):
        Normal(mean, 1.0)((3,))
    lo = np.array([0.0, 10.0])
    y = Uniform(lo, lo + 1)((500, 2), generator=gen())
    assert (y[:, 1] >= 10).all() and (y[:, 0] < 1).all()


# --------------------------------------------------------------------------- quantities
def test_constant_quantity():
    v = Constant(-65 * u.mV)(10)
    assert is_quantity(v)
    assert v.units == u.mV
    assert isinstance(v.magnitude, torch.Tensor) and v.magnitude.shape == (10,)
    assert torch.equal(v.magnitude, torch.full((10,), -65.0))
    assert torch.equal(to_tensor(v, "mV"), torch.full((10,), -65.0))


def test_constant_array_quantity():
    v = Constant(np.array([1.0, 2.0]) * u.mV)((3, 2))
    assert v.units == u.mV and v.magnitude.shape == (3, 2)
    w = Constant(Quantity(torch.tensor([1.0, 2.0]), "V"))((3, 2))
    assert w.units == u.V and torch.equal(to_tensor(w, "mV")[0], torch.tensor([1000.0, 2000.0]))


def test_normal_quantity_roundtrip_to_tensor():
    q = Normal(-55 * u.mV, 5 * u.mV)((1000,), generator=gen())
    assert is_quantity(q) and q.units == u.mV
    t = to_tensor(q, "mV")
    assert t.shape == (1000,) and t.dtype == torch.get_default_dtype()
    assert abs(t.mean().item() + 55) < 1.0
    with pytest.raises(UnitError):
        to_tensor(q, "ms")


def test_quantity_result_keeps_dtype():
    q = Normal(-55 * u.mV, 5 * u.mV)((10,), dtype=torch.float64)
    assert q.magnitude.dtype == torch.float64


def test_mixed_units_convert_to_first():
    q = Uniform(0 * u.mV, 1 * u.V)((N,), generator=gen())
    assert q.units == u.mV
    m = q.magnitude
    assert m.min() >= 0 and m.max() < 1000 and m.max() > 990
    t = TruncatedNormal(-0.06 * u.V, 5 * u.mV)((N,), generator=gen())
    assert t.units == u.V
    assert t.magnitude.min() >= -0.0701 and t.magnitude.max() <= -0.0499
    assert Normal(1 * u.s, 1 * u.ms)(2).units == u.s


def test_plain_numbers_read_in_quantity_unit():
    q = Normal(0, 5 * u.mV)((N,), generator=gen())
    assert q.units == u.mV
    assert abs(q.magnitude.std().item() - 5) < 0.1
    v = Uniform(-70, 10 * u.mV)(5)
    assert v.units == u.mV and (v.magnitude >= -70).all()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Uniform(-70 * u.mV, 10 * u.ms),
        lambda: Normal(-55 * u.mV, 5 * u.nS),
        lambda: TruncatedNormal(0 * u.mV, 1 * u.mV, high=1 * u.ms),
    ],
)
def test_dimension_mismatch(make):
    with pytest.raises(UnitError, match=r"(Uniform|Normal|TruncatedNormal): parameters '\w+'"):
        make()
    with pytest.raises(ValueError):  # UnitError is a ValueError
        make()


def test_dimension_mismatch_names_both_parameters():
    with pytest.raises(UnitError) as info:
        Uniform(-70 * u.mV, 10 * u.ms)
    msg = str(info.value)
    assert "Uniform" in msg and "'low'" in msg and "'high'" in msg and "ms" in msg


def test_unit_argument_of_variance_scaling():
    g = KaimingNormal(unit=u.nS)((100, 10), generator=gen())
    assert is_quantity(g) and g.units == u.nS
    plain = KaimingNormal()((100, 10), generator=gen())
    assert torch.equal(g.magnitude, plain)
    half = KaimingNormal(unit=0.5 * u.nS)((100, 10), generator=gen())
    torch.testing.assert_close(half.magnitude, 0.5 * plain)
    assert XavierUniform(unit="mV")(3).units == u.mV
    assert Orthogonal(unit=u.pA)((3, 3)).units == u.pA
    with pytest.raises(UnitError, match="'unit'"):
        KaimingNormal(unit="not_a_unit")
    with pytest.raises(UnitError, match="'unit'"):
        KaimingNormal(unit=3)


def test_scale_must_be_dimensionless():
    w = KaimingNormal(scale=2.0 * u.dimensionless)((100, 10), generator=gen())
    assert isinstance(w, torch.Tensor)
    assert KaimingNormal(scale=200 * u.percent)._scale == pytest.approx(2.0)
    with pytest.raises(UnitError, match="KaimingNormal.*'scale'.*dimensionless"):
        KaimingNormal(scale=2.0 * u.mV)


def test_foreign_registry_quantities():
    import pint

    other = pint.UnitRegistry()
    q = Normal(-55 * other.mV, 5 * other.mV)(4)
    assert q.units == u.mV
    to_tensor(q, "mV")
    assert param(3 * other.ms, 2).units == u.ms


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: Normal(0.0, -1.0), r"Normal: parameter 'std' expects a value >= 0, got -1.0"),
        (lambda: Normal(0 * u.mV, -1 * u.mV), r"Normal: parameter 'std'.*-1 mV"),
        (lambda: Normal(0.0, torch.tensor([1.0, -1.0])), r"Normal: parameter 'std'"),
        (lambda: Uniform(1.0, 1.0), r"Uniform: parameter 'low' expects a value < high=1.0"),
        (lambda: Uniform(2 * u.mV, 1 * u.mV), r"Uniform: parameter 'low'.*1 mV.*2 mV"),
        (lambda: Uniform(1 * u.V, 10 * u.mV), r"Uniform: parameter 'low'"),
        (
            lambda: TruncatedNormal(0.0, 0.0),
            r"TruncatedNormal: parameter 'std' expects a value > 0",
        ),
        (lambda: TruncatedNormal(0.0, 1.0, 1.0, -1.0), r"TruncatedNormal: parameter 'low'"),
        (lambda: TruncatedNormal(0.0, 1.0, low=3.0), r"TruncatedNormal: parameter 'low'"),
        (lambda: KaimingNormal(mode="fan"), r"KaimingNormal: parameter 'mode' expects one of"),
        (lambda: VarianceScaling(distribution="cauchy"), r"'distribution' expects one of"),
        (lambda: XavierUniform(scale=0.0), r"XavierUniform: parameter 'scale' expects a value > 0"),
        (lambda: Orthogonal(scale=-1.0), r"Orthogonal: parameter 'scale'"),
    ],
)
def test_bad_arguments(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_bad_mode_message_shows_expected_and_given():
    with pytest.raises(ValueError) as info:
        KaimingUniform(mode="fan_middle")
    msg = str(info.value)
    assert "'fan_in'" in msg and "'fan_out'" in msg and "'fan_avg'" in msg and "'fan_middle'" in msg


@pytest.mark.parametrize(
    "make", [lambda: Normal("a"), lambda: Constant(None), lambda: Uniform(0, 1j)]
)
def test_non_numeric_arguments(make):
    with pytest.raises(TypeError):
        make()


# --------------------------------------------------------------------------- repr, ==, pickle
def test_repr():
    assert repr(Constant(-65.0 * u.mV)) == "Constant(value=-65.0 mV)"
    assert repr(Normal(-55 * u.mV, 5 * u.mV)) == "Normal(mean=-55 mV, std=5 mV)"
    assert repr(Normal()) == "Normal(mean=0.0, std=1.0)"
    assert repr(Uniform(0, 1 * u.V)) == "Uniform(low=0, high=1 V)"
    assert repr(KaimingNormal()) == "KaimingNormal(scale=2.0, mode='fan_in')"
    assert repr(KaimingNormal(unit=u.nS)) == "KaimingNormal(scale=2.0, mode='fan_in', unit=nS)"
    assert repr(XavierUniform()) == "XavierUniform(scale=1.0, mode='fan_avg')"
    assert (
        repr(VarianceScaling(1.0, "fan_out", "uniform"))
        == "VarianceScaling(scale=1.0, mode='fan_out', distribution='uniform')"
    )
    assert repr(Constant(torch.zeros(3))) == "Constant(value=tensor(shape=(3,)))"
    assert repr(Orthogonal()) == "Orthogonal(scale=1.0)"
    assert repr(ZeroInit()) == "ZeroInit()"


def test_equality_and_hash():
    assert Normal(-55 * u.mV, 5 * u.mV) == Normal(-55 * u.mV, 5 * u.mV)
    assert Normal(1, 2) == Normal(1.0, 2.0)
    assert hash(Normal(1, 2)) == hash(Normal(1.0, 2.0))
    assert Normal(-55 * u.mV, 5 * u.mV) != Normal(-55 * u.mV, 6 * u.mV)
    assert Normal(-55 * u.mV, 5 * u.mV) != Normal(-55, 5)
    assert Normal() != TruncatedNormal()
    assert KaimingNormal() != KaimingUniform()
    assert KaimingNormal() != VarianceScaling(2.0, "fan_in", "normal")
    assert Constant(torch.ones(2)) == Constant(torch.ones(2))
    assert Constant(torch.ones(2)) != Constant(torch.zeros(2))
    assert len({Normal(), Normal(), Uniform()}) == 2
    assert Normal() != "Normal()"


@pytest.mark.parametrize(
    "init",
    [
        Constant(-65.0 * u.mV),
        Constant(torch.arange(4.0)),
        Constant(np.arange(4.0) * u.mV),
        Normal(-55 * u.mV, 5 * u.mV),
        Uniform(0 * u.mV, 1 * u.V),
        TruncatedNormal(-60 * u.mV, 5 * u.mV, high=-50 * u.mV),
        KaimingNormal(unit=u.nS),
        XavierNormal(scale=0.5, mode="fan_in", unit=2 * u.pA),
        VarianceScaling(1.0, "fan_out", "uniform"),
        Orthogonal(2.0),
        ZeroInit("mV"),
    ],
    ids=repr,
)
def test_pickle_and_copy(init):
    for clone in (pickle.loads(pickle.dumps(init)), copy.deepcopy(init), copy.copy(init)):
        assert type(clone) is type(init)
        assert clone == init
        assert repr(clone) == repr(init)
        a = init((6, 4), generator=gen(5))
        b = clone((6, 4), generator=gen(5))
        if is_quantity(a):
            # The restored quantity lives in torchbrain's registry and mixes with u.
            assert b.units == a.units
            assert torch.equal(to_tensor(b, b.units), a.magnitude)
            _ = b + Quantity(torch.zeros(1), b.units)
        else:
            assert torch.equal(a, b)


# --------------------------------------------------------------------------- custom subclass
def test_custom_subclass():
    class Arange(Initializer):
        _random = False

        def _sample(self, shape, dtype, device, generator):
            return torch.arange(math.prod(shape), dtype=dtype, device=device).reshape(shape)

    assert torch.equal(Arange()((2, 2)), torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    assert repr(Arange()) == "Arange()"


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        Initializer()(3)


# --------------------------------------------------------------------------- param()
def test_param_initializer():
    out = param(Normal(), (3, 4), generator=gen())
    assert out.shape == (3, 4)
    assert torch.equal(out, Normal()((3, 4), generator=gen()))
    q = param(Constant(-65 * u.mV), 5, dtype=torch.float64)
    assert q.units == u.mV and q.magnitude.dtype == torch.float64 and q.magnitude.shape == (5,)


def test_param_scalars_stay_scalar():
    s = param(2.5, (3, 4))
    assert isinstance(s, torch.Tensor) and s.ndim == 0 and s.item() == 2.5
    assert s.dtype == torch.get_default_dtype()
    q = param(-65 * u.mV, (3, 4))
    assert is_quantity(q) and q.units == u.mV and q.magnitude.ndim == 0
    assert to_tensor(q, "mV").item() == -65.0
    assert param(np.float64(1.0), 3).ndim == 0
    assert param(torch.tensor(1.0), 3).ndim == 0


def test_param_arrays_must_broadcast():
    t = param(np.array([1.0, 2.0, 3.0]), (4, 3))
    assert isinstance(t, torch.Tensor) and t.shape == (3,)
    assert param([1.0, 2.0, 3.0], (4, 3)).shape == (3,)
    assert param(torch.ones(4, 1), (4, 3)).shape == (4, 1)
    q = param(np.ones(3) * u.ms, (2, 3))
    assert q.units == u.ms and isinstance(q.magnitude, torch.Tensor)
    with pytest.raises(ValueError, match="broadcast"):
        param(np.ones(4), (4, 3))
    with pytest.raises(ValueError, match=r"LIF: parameter 'tau'.*broadcast"):
        param(torch.ones(2, 3), (3,), owner="LIF", name="tau")


def test_param_tensor_keeps_graph_and_device():
    t = torch.ones(3, requires_grad=True)
    out = param(t, 3, dtype=torch.float64)
    assert out.dtype == torch.float64 and out.requires_grad
    out.sum().backward()
    assert torch.equal(t.grad, torch.ones(3))


def test_param_none():
    assert param(None, 3, allow_none=True) is None
    with pytest.raises(ValueError, match="None"):
        param(None, 3)


def test_param_callable_and_bad_types():
    out = param(lambda shape: torch.zeros(shape), (2, 3))
    assert out.shape == (2, 3)
    with pytest.raises(TypeError):
        param("abc", 3)
    with pytest.raises(TypeError):
        param(object(), 3)
