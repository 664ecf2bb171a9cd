"""One sweep run by every process of a JAX job (the same script in every process).

On a cluster, start it the usual JAX way, e.g. under SLURM (JAX finds the job itself):

    srun --ntasks=4 python examples/cluster_sweep.py --distributed --out sweep

or by hand, here two processes on one machine (CPU: gloo collectives):

    JOB="--coordinator 127.0.0.1:12345 --num-processes 2"
    python examples/cluster_sweep.py $JOB --process-id 0 --out sweep &
    python examples/cluster_sweep.py $JOB --process-id 1

Without these options it is an ordinary one-process run. Every process computes its share of
the members on its own devices and receives the whole result; process 0 writes the files.
The test suite runs this file as a job of two processes and compares with one process
(`tests/test_distributed.py`).
"""

import argparse

import jax

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--distributed", action="store_true", help="join the job JAX detects")
parser.add_argument("--coordinator", help="HOST:PORT of process 0")
parser.add_argument("--num-processes", type=int)
parser.add_argument("--process-id", type=int)
parser.add_argument("--out", help="write OUT.npz and OUT.csv (process 0)")
args = parser.parse_args()
if args.distributed or args.coordinator:  # before anything else touches JAX
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes
    jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)

import numpy as np  # noqa: E402

import jaxmdp  # noqa: E402
from jaxmdp import models  # noqa: E402


def lecture(step_reward, discount):
    return models.gridworld(step_reward=step_reward, slip=0.2, discount=discount)


result = jaxmdp.sweep(
    lecture,
    jaxmdp.PolicyIteration(),
    step_reward=np.linspace(-2, 0, 41),
    discount=np.linspace(0.9, 1.0, 3),
)
if jax.process_index() == 0:  # every process holds the same result; one writes it
    if args.out:
        result.save(args.out)
    _, policies = result.distinct_policies()
    print(
        f"{result.size} MDPs on {result.num_devices} device(s) of {jax.process_count()} "
        f"process(es): {len(policies)} distinct optimal policies, all solved: "
        f"{bool(result.ok.all())}"
    )
