"""Gradients of the optimal start value of the 4x3 gridworld w.r.t. step reward and discount.

`jaxmdp.solve` is differentiable (implicit function theorem at the fixed point, no unrolling
of the solver's loop), so `jax.grad` of any function of `solution.values` just works, batched
and jitted. Here:

  - dV*(start) / d(step reward): the expected number of ordinary moves before the episode
    ends (at discount 1), or their expected discounted count (discount < 1);
  - dV*(start) / d(discount), checked against finite differences (one-sided at discount 1,
    the largest legal discount);
  - a sweep of 9 step rewards in one call: the derivative jumps where the optimal policy
    changes (V* is piecewise linear in the step reward).

Run: python examples/reward_gradients.py   (a few seconds on a CPU)
"""

import jax

jax.config.update("jax_enable_x64", True)  # float64: clean finite-difference checks

import jax.numpy as jnp  # noqa: E402

import jaxmdp  # noqa: E402
import jaxmdp.models  # noqa: E402

GRID = jaxmdp.models.GridLayout(jaxmdp.models.RUSSELL_NORVIG_4X3)
START = GRID.start_state
SOLVER = jaxmdp.ValueIteration(tol=1e-10)


@jax.jit
def start_value(step_reward, discount):
    mdp = jaxmdp.models.gridworld(GRID, step_reward=step_reward, slip=0.2, discount=discount)
    return jaxmdp.solve(mdp, SOLVER).values[START]


d_step = jax.jit(jax.grad(start_value, argnums=0))
d_discount = jax.jit(jax.grad(start_value, argnums=1))


def main():
    step = jnp.asarray(-0.04)
    print("4x3 gridworld, slip 0.2, step reward -0.04, start state", START)
    print(
        f"{'discount':>8} {'V*(start)':>10} {'dV/dstep':>10} {'(FD)':>10} "
        f"{'dV/dgamma':>10} {'(FD)':>10}"
    )
    h = 1e-5
    for g in (0.9, 0.99, 1.0):
        g = jnp.asarray(g)
        fd_step = (start_value(step + h, g) - start_value(step - h, g)) / (2 * h)
        if g < 1:
            fd_g = (start_value(step, g + h) - start_value(step, g - h)) / (2 * h)
        else:  # one-sided (second order): the discount cannot exceed 1
            fd_g = (
                3 * start_value(step, g)
                - 4 * start_value(step, g - h)
                + start_value(step, g - 2 * h)
            ) / (2 * h)
        print(
            f"{float(g):8.2f} {float(start_value(step, g)):10.5f} "
            f"{float(d_step(step, g)):10.5f} {float(fd_step):10.5f} "
            f"{float(d_discount(step, g)):10.5f} {float(fd_g):10.5f}"
        )

    # One compiled call for a whole sweep: vmap of the gradient over step rewards.
    steps = jnp.linspace(-0.8, -0.01, 9)
    sweep = jax.jit(jax.vmap(jax.value_and_grad(start_value), in_axes=(0, None)))
    values, grads = sweep(steps, jnp.asarray(1.0))
    print("\ndiscount 1: dV*(start)/d(step reward) = expected number of ordinary moves")
    for s, v, dv in zip(steps, values, grads, strict=True):
        print(
            f"  step reward {float(s):6.3f}   V*(start) {float(v):8.4f}   "
            f"expected moves {float(dv):6.3f}"
        )


if __name__ == "__main__":
    main()
