"""`jaxmdp sweep` in every process of a job: joining JAX's distributed runtime.

A job is started the usual JAX way: the same command in every process, which joins the job
with `jax.distributed.initialize` before anything else touches JAX. `--distributed` lets JAX
find the job itself (SLURM, Open MPI, Cloud TPU, Kubernetes, or `JAX_COORDINATOR_ADDRESS`
with its cluster's process numbering); `--coordinator HOST:PORT --num-processes N
--process-id I` name it explicitly (e.g. a launcher of your own, or two terminals on one
machine). CPU processes talk through gloo collectives.

The sweep is then one sweep over every process's devices (`jaxmdp.sweep`); process 0 alone
checks and writes the output folder and prints; the others print nothing and exit with the
same status when the sweep is done.
"""

from __future__ import annotations

from jaxmdp.cli._args import CliError


def wanted(args) -> bool:
    """Whether the command joins a job (any of the options given)."""
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in explicit) and any(v is None for v in explicit):
        raise CliError(
            "--coordinator, --num-processes and --process-id go together (or use "
            "--distributed to let JAX find the job)"
        )
    if args.process_id is not None and args.process_id >= args.num_processes:
        raise CliError(
            f"--process-id must be below --num-processes ({args.num_processes}); "
            f"got {args.process_id}"
        )
    return bool(args.distributed or args.coordinator is not None)


def initialize(args) -> None:
    """Joins the job the arguments name (no-op without the options). Call before JAX runs
    anything (its backends are created at the first computation)."""
    if not wanted(args):
        return
    import jax

    if jax.distributed.is_initialized():  # the caller's own process already joined
        return
    # JAX's default since 0.5.1; set explicitly for the older versions we support.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
        )
    except ValueError as e:  # auto-detection found no job
        raise CliError(
            f"--distributed: JAX found no job to join ({e}); outside SLURM, Open MPI, Cloud "
            "TPU or Kubernetes give --coordinator HOST:PORT --num-processes N --process-id I"
        ) from None


def is_lead() -> bool:
    """Process 0 of the job (or the only process)."""
    import jax

    return jax.process_index() == 0
