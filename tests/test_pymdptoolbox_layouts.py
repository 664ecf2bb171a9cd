"""`from_pymdptoolbox` reads every layout pymdptoolbox accepts.

Built from pymdptoolbox's own example models (`forest`, `small`, `rand` dense and sparse).
Each model is converted from every layout of P (an `[A, S, S]` array; lists, tuples and
object arrays of A dense or scipy.sparse matrices) and of R (`[S]`, `[S, A]` dense or
sparse, `[A, S, S]`, lists / object arrays of A dense or sparse matrices): every conversion
must equal the one from plain arrays, and pymdptoolbox's own policy iteration, run on each
layout it accepts, must agree with jaxmdp's solve of the converted MDP.
"""

import jax
import numpy as np
import pytest

import jaxmdp

pytest.importorskip("mdptoolbox")
sparse = pytest.importorskip("scipy.sparse")
import mdptoolbox.example  # noqa: E402
import mdptoolbox.mdp  # noqa: E402


def _object_array(items):
    out = np.empty(len(items), dtype=object)
    for i, m in enumerate(items):
        out[i] = m
    return out


def _models():
    """(name, P [A, S, S] dense, per-transition R [A, S, S] dense, discount)."""
    out = []
    P, R = mdptoolbox.example.forest(S=4)
    out.append(("forest", P, np.stack([np.repeat(R[:, a : a + 1], 4, 1) for a in range(2)]), 0.96))
    P, R = mdptoolbox.example.small()
    out.append(("small", P, np.stack([np.repeat(R[:, a : a + 1], 2, 1) for a in range(2)]), 0.9))
    np.random.seed(3)  # noqa: NPY002 (pymdptoolbox draws from the global RNG)
    P, R = mdptoolbox.example.rand(7, 3)  # dense: P [A, S, S], R [A, S, S]
    out.append(("rand", P, R, 0.9))
    np.random.seed(4)  # noqa: NPY002
    # Lists of A CSR matrices; forest's shape, so its solve reuses forest's program.
    P, R = mdptoolbox.example.rand(4, 2, is_sparse=True)
    out.append(("rand_sparse", np.stack([p.toarray() for p in P]),
                np.stack([r.toarray() for r in R]), 0.9))  # fmt: skip
    return out


MODELS = _models()


def _p_layouts(P):
    dense = [P[a] for a in range(P.shape[0])]
    csr = [sparse.csr_matrix(p) for p in dense]
    return {
        "array": P,
        "list": dense,
        "tuple": tuple(dense),
        "object": _object_array(dense),
        "list_csr": csr,
        "object_csr": _object_array(csr),
        "tuple_coo": tuple(sparse.coo_matrix(p) for p in dense),
    }


def _r_layouts(P, R):
    """Every reward layout, each with its meaning: r(s, a) expected over P."""
    A, S, _ = P.shape
    expected = np.einsum("ast,ast->sa", P, R)
    dense = [R[a] for a in range(A)]
    out = {
        "ass_array": (R, expected),
        "ass_list": (dense, expected),
        "ass_object": (_object_array(dense), expected),
        "ass_list_csr": ([sparse.csr_matrix(r) for r in dense], expected),
        "ass_object_csr": (_object_array([sparse.csr_matrix(r) for r in dense]), expected),
        "sa": (expected, expected),
        "sa_csr": (sparse.csr_matrix(expected), expected),
        "s": (expected[:, 0], np.repeat(expected[:, :1], A, 1)),
        "s_list": (list(expected[:, 0]), np.repeat(expected[:, :1], A, 1)),
    }
    return out


@pytest.mark.parametrize("name, P, R, discount", MODELS, ids=[m[0] for m in MODELS])
def test_every_layout_converts_to_the_same_mdp(name, P, R, discount):
    reference_T = np.transpose(P, (1, 0, 2))
    with jax.enable_x64(True):
        for p_name, p in _p_layouts(P).items():
            for r_name, (r, expected) in _r_layouts(P, R).items():
                mdp = jaxmdp.from_pymdptoolbox(p, r, discount)
                where = f"{name}: P as {p_name}, R as {r_name}"
                assert mdp.transitions.dtype == np.float64, where
                # scipy.sparse matrices stay sparse (successor lists), dense ones dense
                sparse_in = p_name.endswith(("csr", "coo"))
                assert isinstance(mdp.transitions, jaxmdp.SparseTransitions) == sparse_in, where
                dense = np.asarray(jaxmdp.to_dense(mdp.transitions))
                np.testing.assert_array_equal(dense, reference_T, where)
                np.testing.assert_allclose(
                    np.asarray(mdp.rewards), expected, rtol=1e-13, atol=1e-15, err_msg=where
                )
                assert float(mdp.discount) == discount


@pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning")  # pymdptoolbox's
@pytest.mark.parametrize("name, P, R, discount", MODELS, ids=[m[0] for m in MODELS])
def test_values_match_pymdptoolbox_on_each_layout_it_accepts(name, P, R, discount):
    with jax.enable_x64(True):
        mdp = jaxmdp.from_pymdptoolbox(P, R, discount)
        sol = jaxmdp.check(jaxmdp.solve(mdp, jaxmdp.PolicyIteration()))
    values, policy = np.asarray(sol.values), np.asarray(sol.policy)
    checked = 0
    for p_name, p in _p_layouts(P).items():
        for r_name, (r, _) in _r_layouts(P, R).items():
            if r_name.startswith("s") and not r_name.startswith("sa"):
                continue  # a different MDP (per-state rewards): covered by the conversion test
            try:
                ref = mdptoolbox.mdp.PolicyIteration(p, r, discount)
                ref.run()
            except (NotImplementedError, ValueError, TypeError, AttributeError):
                continue  # a layout pymdptoolbox itself refuses (e.g. a sparse [S, A] R)
            checked += 1
            np.testing.assert_allclose(
                values, ref.V, rtol=1e-9, atol=1e-9, err_msg=f"{name}: {p_name}, {r_name}"
            )
            assert tuple(policy) == tuple(ref.policy), (name, p_name, r_name)
    assert checked >= 20, checked  # pymdptoolbox accepts most layouts; make sure they ran


def test_per_state_rewards_match_pymdptoolbox():
    P, R = mdptoolbox.example.forest(S=4)  # the shape of MODELS' forest: the same program
    reward = R[:, 1]  # a per-state reward vector
    ref = mdptoolbox.mdp.PolicyIteration(P, reward, 0.9)
    ref.run()
    with jax.enable_x64(True):
        sol = jaxmdp.solve(jaxmdp.from_pymdptoolbox(list(P), reward, 0.9), jaxmdp.PolicyIteration())
    np.testing.assert_allclose(np.asarray(sol.values), ref.V, rtol=1e-10)


def test_sparse_rewards_where_transitions_are_impossible_are_ignored():
    # R[a][s, s'] = +inf where p(s' | s, a) = 0 must not become NaN (0 * inf).
    P = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [0.0, 1.0]]])
    R = [
        sparse.csr_matrix(np.array([[1.0, np.inf], [np.inf, 2.0]])),
        np.array([[3.0, 5.0], [np.inf, 0.0]]),
    ]
    with jax.enable_x64(True):
        mdp = jaxmdp.from_pymdptoolbox(P, R, 0.9)
    np.testing.assert_array_equal(np.asarray(mdp.rewards), [[1.0, 4.0], [2.0, 0.0]])


def test_bad_layouts_name_the_argument():
    P, R = mdptoolbox.example.small()
    with pytest.raises(ValueError, match=r"transitions P must be an \[A, S, S\]"):
        jaxmdp.from_pymdptoolbox(P[0], R, 0.9)
    with pytest.raises(ValueError, match=r"transitions P must be"):
        jaxmdp.from_pymdptoolbox(sparse.csr_matrix(P[0]), R, 0.9)
    with pytest.raises(ValueError, match=r"P\[1\] must be \[S, S\] = \(2, 2\)"):
        jaxmdp.from_pymdptoolbox([P[0], np.eye(3)], R, 0.9)
    with pytest.raises(ValueError, match=r"rewards R must be \[S\] = \(2,\)"):
        jaxmdp.from_pymdptoolbox(P, np.ones(3), 0.9)
    with pytest.raises(ValueError, match=r"R\[1\] must be \[S, S\]"):
        jaxmdp.from_pymdptoolbox(P, [np.ones((2, 2)), np.ones((3, 3))], 0.9)
    with pytest.raises(jaxmdp.InvalidMDPError, match="complex"):
        jaxmdp.from_pymdptoolbox(P, R + 1j, 0.9)
    with pytest.raises(jaxmdp.InvalidMDPError, match="discount"):
        jaxmdp.from_pymdptoolbox(P, R, 1.5)
