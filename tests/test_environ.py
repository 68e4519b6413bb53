import asyncio
import threading

import pytest
import torch

import torchbrain as tb
from torchbrain import environ, u


def test_context_nests_and_restores():
    with environ.context(dt=0.1 * u.ms):
        assert environ.get_dt() == 0.1 * u.ms
        assert environ.get_dt_value() == 0.1
        with environ.context(dt=0.5, t=3 * u.ms):
            assert environ.get_dt_value() == 0.5
            assert environ.get("t") == 3.0
        assert environ.get_dt_value() == 0.1
        with pytest.raises(KeyError, match="'t'"):
            environ.get("t")
    with pytest.raises(KeyError, match="dt"):
        environ.get_dt()


def test_exit_restores_after_exception():
    with pytest.raises(RuntimeError):
        with environ.context(dt=1.0):
            raise RuntimeError("boom")
    with pytest.raises(KeyError):
        environ.get_dt_value()


def test_bad_dt_values():
    with pytest.raises(ValueError, match="positive"):
        environ.context(dt=0.0)
    with pytest.raises(tb.UnitError, match="'dt'"):
        environ.context(dt=1 * u.mV)
    with pytest.raises(ValueError, match="scalar"):
        environ.context(dt=torch.ones(3))


def test_get_default_and_other_keys():
    assert environ.get("fit", default=False) is False
    with environ.context(fit=True):
        assert environ.get("fit") is True
        assert environ.all()["fit"] is True


def test_set_and_reset():
    try:
        environ.set(dt=0.25 * u.ms)
        assert environ.get_dt_value() == 0.25
    finally:
        environ.reset()
    with pytest.raises(KeyError):
        environ.get_dt_value()


def test_thread_safety():
    barrier = threading.Barrier(4)
    seen = {}

    def worker(i):
        with environ.context(dt=float(i + 1)):
            barrier.wait()
            seen[i] = environ.get_dt_value()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert seen == {i: float(i + 1) for i in range(4)}


def test_async_safety():
    async def task(dt):
        with environ.context(dt=dt):
            await asyncio.sleep(0.01)
            first = environ.get_dt_value()
            await asyncio.sleep(0.01)
            return first, environ.get_dt_value()

    async def main():
        return await asyncio.gather(*(task(float(d)) for d in (1, 2, 3)))

    results = asyncio.run(main())
    assert results == [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]
