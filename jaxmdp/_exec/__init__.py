"""The execution layer: how `jaxmdp.solve` runs a batch (private).

- `plan.py`: `Facts` (static facts of a call) -> `Plan` (which strategy, its parameters);
  a pure function, with `force(backend)` to make any backend's plan on this machine.
- `member.py`: one member's loop (init / step / status / result, status codes, gradients
  hook). Imports no strategy.
- one module per strategy: `vmap.py`, `tiles.py` (CPU cache tiles), `threads.py` (host
  threads), `ladder.py` (compaction), `shared_vi.py` (value iteration on shared
  transitions; its data layout in `shared_layout.py`), `sharding.py` (devices). They
  import the member loop, `layout.py` and the plan's constants, never each other.
- `dispatch.py`: runs a plan; the only importer of the strategies.

Import order (no cycles): layout <- plan <- member <- strategies <- dispatch <- jaxmdp._solve.
"""
