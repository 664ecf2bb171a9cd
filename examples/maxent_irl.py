"""Maximum-entropy inverse RL: recover a gridworld's reward from demonstrations.

An expert acts in a 5x5 gridworld with the soft-optimal (maximum-entropy) policy
pi(a | s) = softmax(Q_tau(s, .) / tau) of a hidden reward: +1 for entering the goal cell
(top right), -1 for entering a lava cell. We observe only its trajectories and fit one
reward per cell, theta, by gradient descent on the negative log-likelihood of the observed
actions under the soft-optimal policy of theta (Ziebart et al. 2008/2010):

    loss(theta) = - mean_{(s, a) in demos} log pi_theta(a | s) + lam ||theta||^2.

The gradient goes through the soft Bellman fixed point: the soft Q comes from
`jaxmdp.solve(mdp, jaxmdp.SoftValueIteration(...))`, differentiated by the implicit function
theorem (no unrolled loop). Evaluation uses `jaxmdp.solve`: the greedy policy of the learned
reward is compared with the expert's optimal policy, and its value under the TRUE reward
(`jaxmdp.bellman.evaluate_policy`) with the optimal value.

Run: python examples/maxent_irl.py   (a few seconds on a CPU)
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxmdp
import jaxmdp.models

# An open 5x5 grid (no terminal cells: all rewards come from `cell_rewards`).
LAYOUT = jaxmdp.models.GridLayout(["....."] * 4 + ["S...."])
GOAL, LAVA = (0, 4), ((2, 1), (2, 2), (2, 3))  # (row, col), row 0 at the top
TAU, DISCOUNT, SLIP = 0.1, 0.9, 0.1
NUM_DEMOS, HORIZON = 200, 15
STEPS, LEARNING_RATE, L2 = 200, 0.05, 1e-3


def true_cell_rewards():
    theta = np.zeros(LAYOUT.shape, dtype=np.float32)
    theta[GOAL] = 1.0
    for cell in LAVA:
        theta[cell] = -1.0
    return jnp.asarray(theta)


def make_mdp(cell_rewards):
    return jaxmdp.models.gridworld(
        LAYOUT, step_reward=0.0, slip=SLIP, discount=DISCOUNT, cell_rewards=cell_rewards
    )


SOFT_SOLVER = jaxmdp.SoftValueIteration(temperature=TAU, tol=1e-6)


def soft_q(mdp):
    return jaxmdp.solve(mdp, SOFT_SOLVER).q_values


def log_policy(cell_rewards):
    """`[S, A]` log pi_theta(a | s) of the soft-optimal policy."""
    return jax.nn.log_softmax(soft_q(make_mdp(cell_rewards)) / TAU, axis=-1)


@jax.jit
def demonstrations(key):
    """Expert trajectories from uniformly random start states; returns `[S, A]` counts."""
    expert = jnp.exp(log_policy(true_cell_rewards()))
    start = jnp.full(LAYOUT.num_states, 1.0 / LAYOUT.num_states)
    traj = jaxmdp.rollouts(key, make_mdp(true_cell_rewards()), expert, start, HORIZON, NUM_DEMOS)
    s, a = traj.states[:, :-1].ravel(), traj.actions.ravel()
    return jnp.zeros((LAYOUT.num_states, 4)).at[s, a].add(1.0)


@jax.jit
def fit(counts):
    """Adam on the negative log-likelihood; returns the learned cell rewards and losses."""

    def loss(theta):
        nll = -jnp.sum(counts * log_policy(theta)) / jnp.sum(counts)
        return nll + L2 * jnp.sum(theta**2)

    def step(carry, i):
        theta, m, v = carry
        value, g = jax.value_and_grad(loss)(theta)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        m_hat, v_hat = m / (1 - 0.9 ** (i + 1)), v / (1 - 0.999 ** (i + 1))
        theta = theta - LEARNING_RATE * m_hat / (jnp.sqrt(v_hat) + 1e-8)
        return (theta, m, v), value

    zeros = jnp.zeros(LAYOUT.shape)
    (theta, _, _), losses = lax.scan(step, (zeros, zeros, zeros), jnp.arange(STEPS))
    return theta, losses


def main():
    print("soft value iteration: jaxmdp.SoftValueIteration via jaxmdp.solve (implicit gradients)")
    counts = demonstrations(jax.random.PRNGKey(0))
    theta, losses = fit(counts)
    print(
        f"{NUM_DEMOS} demonstrations of {HORIZON} steps; negative log-likelihood "
        f"{float(losses[0]):.3f} -> {float(losses[-1]):.3f} in {STEPS} Adam steps"
    )

    truth = true_cell_rewards()
    print("\ntrue cell rewards:")
    print(jaxmdp.models.render_values(LAYOUT, truth.ravel(), precision=2))
    print("learned cell rewards:")
    print(jaxmdp.models.render_values(LAYOUT, theta.ravel(), precision=2))
    corr = np.corrcoef(np.asarray(truth).ravel(), np.asarray(theta).ravel())[0, 1]
    print(f"correlation with the true rewards: {corr:.3f}")

    true_mdp, learned_mdp = make_mdp(truth), make_mdp(theta)
    solver = jaxmdp.PolicyIteration()
    optimal = jaxmdp.solve(true_mdp, solver)
    learned = jaxmdp.solve(learned_mdp, solver)
    agree = float(jnp.mean(learned.policy == optimal.policy))
    achieved = jaxmdp.bellman.evaluate_policy(true_mdp, learned.policy, undiscounted=False)
    start = LAYOUT.start_state
    print("\noptimal policy (true reward):      learned reward's optimal policy:")
    for a, b in zip(
        jaxmdp.models.render_policy(LAYOUT, optimal.policy).splitlines(),
        jaxmdp.models.render_policy(LAYOUT, learned.policy).splitlines(),
        strict=True,
    ):
        print(f"  {a:32s}  {b}")
    print(
        f"same action in {agree:.0%} of the states; true value from the start: "
        f"{float(achieved[start]):.3f} (optimal {float(optimal.values[start]):.3f})"
    )


if __name__ == "__main__":
    main()
