"""Which transitions form a model builder returns: the rule shared by every builder.

Builders whose models have few successors per (s, a) (grid worlds, Gymnasium's toy-text
tables) build successor lists and return them as they are (`jaxmdp.SparseTransitions`)
unless the model is small, where they return the dense `[S, A, S]` array with the same
numbers (`form="auto"`). Small means at most `DENSE_MAX_STATES` states: there the dense
`[S, A, S]` array is at most 16 KB per action in float32, the dense kernels are at least as
fast (benchmarks/sparse_form.py measures single solves in both forms, A/B in one process),
the dense form is the simplest to inspect and index, and everything that needs an explicit
matrix (discount-1 chain analysis, LU evaluation) applies without materialising one.
Builders whose input already is a form (QuantEcon's state-action pairs, scipy.sparse
matrices) keep it whatever the size.
"""

from __future__ import annotations

DENSE_MAX_STATES = 64
FORMS = ("auto", "dense", "sparse")


def check_form(form: str) -> str:
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}; got {form!r}.")
    return form


def wants_dense(form: str, num_states: int) -> bool:
    """Whether a builder returns dense transitions for `form` and `num_states`."""
    return check_form(form) == "dense" or (form == "auto" and num_states <= DENSE_MAX_STATES)
