import numpy as np
import pytest
import torch

from torchbrain import u
from torchbrain.units import (
    UnitError,
    as_quantity,
    format_quantity,
    to_canonical,
    to_tensor,
)


@pytest.mark.parametrize(
    "value, unit, expected",
    [
        (10 * u.ms, "ms", 10.0),
        (1 * u.second, "ms", 1000.0),
        (-65 * u.mV, "mV", -65.0),
        (0.6 * u.mS, "nS", 6e5),
        (6 * u.nS, "nS", 6.0),
        (20 * u.mA, "pA", 2e10),
        (200 * u.pF, "pF", 200.0),
        (1 * u.ohm, "gigaohm", 1e-9),
        (100 * u.megaohm, "gigaohm", 0.1),
        (10 * u.Hz, "1/ms", 0.01),
        (3.0, "ms", 3.0),
    ],
)
def test_to_canonical_converts_exactly(value, unit, expected):
    assert to_canonical(value, unit) == expected


def test_canonical_system_is_consistent():
    # nS * mV = pA, GΩ * pA = mV, GΩ * pF = ms, pA / pF = mV / ms: no factor inside equations.
    assert (1 * u.nS * u.mV).to("pA").magnitude == pytest.approx(1.0)
    assert (1 * u.gigaohm * u.pA).to("mV").magnitude == pytest.approx(1.0)
    assert (1 * u.gigaohm * u.pF).to("ms").magnitude == pytest.approx(1.0)
    assert (1 * u.pA / u.pF).to("mV/ms").magnitude == pytest.approx(1.0)


def test_wrong_dimension_names_owner_parameter_and_both_dimensions():
    with pytest.raises(UnitError) as err:
        to_canonical(10 * u.mV, "ms", owner="LIF", name="tau")
    msg = str(err.value)
    assert "LIF" in msg and "'tau'" in msg and "ms" in msg and "mV" in msg
    assert "a time" in msg and "a voltage" in msg


def test_string_is_rejected():
    with pytest.raises(UnitError, match="string"):
        to_canonical("10 ms", "ms", owner="LIF", name="tau")


def test_to_tensor_arrays_and_tensors():
    t = to_tensor(np.array([1.0, 2.0]) * u.second, "ms", dtype=torch.float64)
    assert t.dtype == torch.float64 and t.tolist() == [1000.0, 2000.0]
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = to_tensor(x, "mV")
    assert y.requires_grad  # plain tensors keep their graph
    q = to_tensor(torch.tensor([1.0, 2.0]) * u.volt, "mV")
    assert q.tolist() == [1000.0, 2000.0]
    with pytest.raises(UnitError, match="object"):
        to_tensor(object(), "mV", owner="X", name="p")


def test_quantity_view_and_format():
    q = as_quantity(torch.tensor(10.0), "ms")
    assert q == 10 * u.ms
    assert format_quantity(torch.tensor(10.0), "ms") == "10 ms"
    assert "shape=(3,)" in format_quantity(torch.zeros(3), "mV")
