"""Plots: grid-world values and policies, a sweep's phase diagram, convergence of a solve.

Needs matplotlib (the `plot` extra: `pip install "jaxmdp-solver[plot]"`), imported only when a
function here is called. Every function draws into axes you pass (`ax=`, e.g. one panel of
your own `plt.subplots` figure) or, without `ax`, into a new `matplotlib.figure.Figure` made
directly (no `pyplot`, no GUI backend, so it renders headless). It returns what it drew into:
the `Axes` (`policies`: an array of them); `ax.figure` is the figure. `path=` saves that
figure (PNG, or any format matplotlib knows from the suffix), written to a temporary name and
renamed into place, so a reader never sees half a file.

Values are labelled at the precision their solve certified: a value within `error_bound` of 0
shows as 0, and no digit finer than the bound is printed (the arrays are not changed).
"""

from jaxmdp.plot._common import _certified_text as _certified_text
from jaxmdp.plot._convergence import convergence as convergence
from jaxmdp.plot._grid import gridworld as gridworld
from jaxmdp.plot._grid import policies as policies
from jaxmdp.plot._phase import phase_diagram as phase_diagram

__all__ = ("convergence", "gridworld", "phase_diagram", "policies")
