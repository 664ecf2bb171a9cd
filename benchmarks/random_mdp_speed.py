"""Speed and memory of batched random MDPs: `jax.vmap(lambda k: random_mdp(k, S, A))(keys)`.

One process, one run, three samplers drawing the same output (B x S x A Dirichlet rows of
length S, plus uniform rewards):

- `numpy`: `Generator.dirichlet` (float64, cast to float32), the reference speed;
- `jaxmdp`: `models.random_mdp` under `jax.vmap` and `jax.jit` (compile timed apart);
- `jax.random.dirichlet`: the same batch drawn with JAX's own sampler (what random_mdp used
  before; on fewer keys, `--old-keys`, because it is orders of magnitude slower).

Times are the minimum of `--repeats` runs after one warm-up. Memory: XLA's buffer
assignment of the compiled program (temporaries and output), and the peak resident memory
(VmHWM, reset through /proc/self/clear_refs) above the resident memory before the run.

Run: `python -m benchmarks.random_mdp_speed [--keys 1024 --states 64 --actions 8] [--out F.md]`.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmdp import models


def _vm_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _peak_mib(fn) -> float | None:
    """Peak resident memory of `fn()` above the resident memory before it (Linux only)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        return None
    before = _vm_kib("VmRSS")
    fn()
    peak = _vm_kib("VmHWM")
    return None if before is None or peak is None else (peak - before) / 1024


def _best(fn, repeats: int) -> float:
    fn()  # warm-up (compilation, page faults)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _numpy(B, S, A, concentration, rng):
    P = rng.dirichlet(np.full(S, concentration), size=(B, S, A)).astype(np.float32)
    R = rng.random((B, S, A), dtype=np.float32)
    return P, R


def _jax_dirichlet(keys, S, A, concentration):
    def one(key):
        kp, kr = jax.random.split(key)
        P = jax.random.dirichlet(kp, jnp.full(S, concentration), (S, A))
        return P, jax.random.uniform(kr, (S, A))

    return jax.jit(jax.vmap(one))(keys)


def run(B: int, S: int, A: int, concentrations, repeats: int, old_keys: int) -> list[str]:
    lines = [
        f"B = {B} MDPs of S = {S}, A = {A} (output {B * S * A * S * 4 / 2**20:.0f} MiB of "
        f"float32 transitions), {jax.devices()[0].device_kind}, jax {jax.__version__}; "
        f"min of {repeats} runs after a warm-up, all in this one process.",
        "",
        "| concentration | sampler | keys | compile s | run s | x NumPy | XLA temp / output "
        "| peak RSS MiB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    keys = jax.random.split(jax.random.key(0), B)
    rng = np.random.default_rng(0)
    for c in concentrations:
        t_np = _best(lambda c=c: _numpy(B, S, A, c, rng), repeats)
        peak = _peak_mib(lambda c=c: _numpy(B, S, A, c, rng))
        lines.append(f"| {c:g} | numpy dirichlet | {B} | - | {t_np:.3f} | 1.0 | - | {peak:.0f} |")

        build = jax.jit(jax.vmap(lambda k, c=c: models.random_mdp(k, S, A, concentration=c)))
        t = time.perf_counter()
        compiled = build.lower(keys).compile()
        t_compile = time.perf_counter() - t
        stats = compiled.memory_analysis()
        ratio = (
            f"{stats.temp_size_in_bytes / stats.output_size_in_bytes:.1f}"
            if stats is not None
            else "-"
        )
        t_jax = _best(lambda f=compiled: jax.block_until_ready(f(keys)), repeats)
        peak = _peak_mib(lambda f=compiled: jax.block_until_ready(f(keys)))
        lines.append(
            f"| {c:g} | jaxmdp random_mdp | {B} | {t_compile:.2f} | {t_jax:.3f} | "
            f"{t_jax / t_np:.1f} | {ratio} | {peak:.0f} |"
        )

        few = keys[:old_keys]
        t_np_few = _best(lambda c=c: _numpy(old_keys, S, A, c, rng), repeats)
        t = time.perf_counter()
        jax.block_until_ready(_jax_dirichlet(few, S, A, c))
        t_first = time.perf_counter() - t
        t_old = _best(lambda c=c, few=few: jax.block_until_ready(_jax_dirichlet(few, S, A, c)), 1)
        lines.append(
            f"| {c:g} | jax.random.dirichlet | {old_keys} | {max(t_first - t_old, 0):.2f} | "
            f"{t_old:.3f} | {t_old / t_np_few:.1f} | - | - |"
        )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1024)
    parser.add_argument("--states", type=int, default=64)
    parser.add_argument("--actions", type=int, default=8)
    parser.add_argument("--concentrations", default="1,0.5")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old-keys", type=int, default=64)
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    concentrations = [float(c) for c in args.concentrations.split(",")]
    lines = run(args.keys, args.states, args.actions, concentrations, args.repeats, args.old_keys)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
