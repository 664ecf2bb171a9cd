"""Memory of validation and construction stays a small multiple of one block.

Host allocations are measured with `tracemalloc` (NumPy reports its buffers to it). The
batched random_mdp's memory is tested in test_models_random.py (XLA's buffer assignment).
"""

import tracemalloc

import numpy as np
import pytest

import jaxmdp

CHUNK = 256 * 1024


def _peak(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.fixture
def small_chunks(monkeypatch):
    # The one internal knob the tests touch: 256 KiB blocks instead of 64 MiB, so that a
    # few MiB of data already span many blocks.
    monkeypatch.setattr("jaxmdp._validate._CHUNK_BYTES", CHUNK)


def _data(S, A, dtype):
    rng = np.random.default_rng(0)
    P = rng.random((S, A, S)).astype(dtype)
    P /= P.sum(-1, keepdims=True)
    return P, rng.normal(size=(S, A)).astype(dtype)


def test_validation_reads_the_data_in_blocks(small_chunks):
    S, A = 512, 4
    P, R = _data(S, A, np.float64)  # 8 MiB of transitions, 32 blocks of 256 KiB
    small = 16 * S * A * 8  # row sums and masks of the [S, A] size
    mdp = jaxmdp.MDP(P, R, np.float64(0.9))
    _, peak = _peak(lambda: jaxmdp.validate_mdp(mdp))
    assert peak < 3 * CHUNK + small, peak
    assert P.nbytes > 4 * (3 * CHUNK + small)  # a copy of the data would break the bound
    # A bad entry in the last block is still found and named.
    P[S - 1, A - 1, 0] = -1.0
    with pytest.raises(jaxmdp.InvalidMDPError, match=f"state {S - 1}, action {A - 1}"):
        jaxmdp.validate_mdp(mdp)


def test_make_mdp_copies_host_data_once(small_chunks):
    S, A = 512, 4
    P, R = _data(S, A, np.float32)  # already the stored dtype: no host copy at all
    mdp, peak = _peak(lambda: jaxmdp.make_mdp(P, R, 0.9))
    assert mdp.transitions.dtype == np.float32
    assert peak < 3 * CHUNK + 16 * S * A * 8, peak
    # Per-transition rewards are reduced in blocks of states as well.
    Rsas = np.ones((S, A, S), np.float32)
    mdp, peak = _peak(lambda: jaxmdp.make_mdp(P, Rsas, 0.9, rewards_per="transition"))
    np.testing.assert_allclose(np.asarray(mdp.rewards), 1.0, rtol=1e-5)
    assert peak < 4 * CHUNK + 64 * S * A * 8, peak
