import asyncio
import threading
import time

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


def _small_lif_net():
    class Net(tb.Module):
        def __init__(self):
            super().__init__()
            self.pop = tb.LIFRef(20, tau=10 * u.ms, V_th=-50 * u.mV, V_rest=-65 * u.mV,
                                 V_reset=-65 * u.mV, tau_ref=2 * u.ms, R=1.0,
                                 V_initializer=tb.init.Constant(-65 * u.mV))

        def forward(self):
            self.pop(20.0)
            return self.pop.get_spike()

    return tb.init_all_states(Net())


def test_eager_threads_while_another_thread_compiles():
    # torch.compiler.is_compiling() is a process-wide flag: while the runner below compiles,
    # readers in other threads must still see their own eager context, as quantities converted.
    done = threading.Event()
    errors: list[BaseException] = []
    bad_reads: list = []
    reads = [0]

    def reader(dt):
        try:
            while not done.is_set():
                with environ.context(dt=dt * u.ms, t=1 * u.ms):
                    value = environ.get_dt_value()
                    t = environ.get("t")
                    if not (type(value) is float and value == dt and t == 1.0):
                        bad_reads.append((value, t))
                    reads[0] += 1
                if environ.all():
                    bad_reads.append(environ.all())
                time.sleep(1e-4)  # leave the compiling thread most of the GIL
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    def compiler():
        try:
            torch._dynamo.reset()
            with environ.context(dt=0.1 * u.ms):
                runner = tb.NetworkRunner(_small_lif_net(), chunk=2)
                spikes = runner.run(20)
                eager = tb.NetworkRunner(_small_lif_net(), chunk=2, compile=False).run(20)
            assert torch.equal(spikes, eager)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)
        finally:
            done.set()

    threads = [threading.Thread(target=reader, args=(dt,)) for dt in (0.05, 0.2)]
    threads.append(threading.Thread(target=compiler))
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not errors, errors
    assert reads[0] > 0
    assert not bad_reads, bad_reads[:5]


def test_one_context_object_entered_by_several_threads_and_tasks():
    shared = environ.context(dt=0.3)
    barrier = threading.Barrier(3)
    seen = []

    def worker(i):
        with environ.context(t=float(i)):
            with shared:
                barrier.wait()
                seen.append((environ.get_dt_value(), environ.get("t")))
            seen.append(("after", environ.all()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(x for x in seen if x[0] != "after") == [(0.3, 0.0), (0.3, 1.0), (0.3, 2.0)]
    assert sorted(x[1]["t"] for x in seen if x[0] == "after") == [0.0, 1.0, 2.0]
    assert all("dt" not in x[1] for x in seen if x[0] == "after")

    async def task(i):
        with shared:
            await asyncio.sleep(0.01 * (3 - i))
            first = environ.get_dt_value()
        return first, environ.all()

    async def main():
        return await asyncio.gather(*(task(i) for i in range(3)))

    assert asyncio.run(main()) == [(0.3, {})] * 3


def test_compiled_step_reads_the_context_of_its_own_call():
    @torch.compile(fullgraph=True)
    def scaled(x):
        with environ.context(t=2.0):
            return x * environ.get_dt_value() + environ.get("t")

    for dt in (0.1, 0.5):
        with environ.context(dt=dt):
            environ.sync_for_compiled_call()
            assert torch.allclose(scaled(torch.ones(3)), torch.full((3,), dt + 2.0))
            assert environ.all() == {"dt": dt}
