"""Helpers for the documentation's executed code blocks, and the state of one build.

The pages' ```python exec="on"``` blocks (markdown-exec) call these from lines marked
`# markdown-exec: hide`, so readers see plain library code:

- `figure(obj, name, alt)` saves a matplotlib figure drawn by the block (Agg, PNG) into this
  build's figure folder and returns the `<img>` tag to print; `hooks.py` copies the folder
  into the built site, under `figures/`, after the build.
- `include(path)` returns a committed file of the repository (e.g. a benchmark results
  table) as markdown with its headings moved down a level, so a page shows the file as it
  is in the repository rather than a copy of its numbers.

Not part of the library: this module lives in `docs/_hooks` (excluded from the site).
"""

from __future__ import annotations

import html
import posixpath
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (mkdocs.yml's folder)
FIGURES = "figures"  # folder of the built site that receives the figures

# Set by hooks.py: the folder figures are written to during the build, the URL of the page
# being rendered (figure links are relative to it), and the figures made so far (name -> page).
state: dict = {"figure_dir": None, "workdir": None, "page_url": "", "made": {}}
# Console blocks run in the scratch folder: the hook replaces this token in their options.
WORKDIR_TOKEN = "JAXMDP_DOCS_WORKDIR"


def workdir() -> Path:
    """The build's scratch folder, where the pages' console commands run."""
    if state["workdir"] is None:
        raise RuntimeError("jaxmdp_docs.workdir() runs inside the mkdocs build only")
    return Path(state["workdir"])


def _as_figure(obj):
    """The matplotlib Figure of a Figure, an Axes, or an array / list of Axes."""
    if hasattr(obj, "savefig"):
        return obj
    if hasattr(obj, "figure"):
        return obj.figure
    try:
        first = next(iter(getattr(obj, "flat", obj)))
    except (TypeError, StopIteration):
        raise TypeError(f"figure() needs a Figure or Axes; got {type(obj).__name__}") from None
    return _as_figure(first)


def _claim(name: str) -> Path:
    """The file `figures/<name>.png` of this build, reserved for the current page."""
    if state["figure_dir"] is None:
        raise RuntimeError("jaxmdp_docs figures are made inside the mkdocs build only")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ValueError(f"figure name {name!r}: lowercase letters, digits and '-' only")
    page = state["page_url"]
    if state["made"].get(name, page) != page:
        raise ValueError(f"figure name {name!r} is already used by page {state['made'][name]!r}")
    state["made"][name] = page
    return Path(state["figure_dir"]) / f"{name}.png"


def figure(obj, name: str, alt: str, *, width: int | None = None) -> str:
    """Save the figure drawn into `obj` as `figures/<name>.png`; return the tag to print."""
    path = _claim(name)
    _as_figure(obj).savefig(path, dpi=110, bbox_inches="tight")
    return _img(name, alt, width)


def image_file(path, name: str, alt: str, *, width: int | None = None) -> str:
    """Publish a PNG that a command run by the page wrote (e.g. `jaxmdp sweep`'s plots)."""
    source = Path(path)
    if source.suffix.lower() != ".png" or not source.is_file():
        raise FileNotFoundError(f"no PNG file at {source}: the command did not write it")
    shutil.copyfile(source, _claim(name))
    return _img(name, alt, width)


def _img(name: str, alt: str, width: int | None) -> str:
    page = state["page_url"]
    src = posixpath.relpath(f"{FIGURES}/{name}.png", start=page.rstrip("/") or ".")
    if page and not page.endswith("/"):  # a page written as a file (use_directory_urls off)
        src = posixpath.relpath(f"{FIGURES}/{name}.png", start=posixpath.dirname(page) or ".")
    style = f' style="max-width: {int(width)}px"' if width else ""
    return (
        f'<figure class="jaxmdp-figure"><img src="{src}" alt="{html.escape(alt)}"'
        f' loading="lazy"{style}></figure>'
    )


def include(path: str, *, shift: int = 1) -> str:
    """The repository file `path` (relative to the root) as markdown, headings `shift` down."""
    text = (ROOT / path).read_text(encoding="utf-8")
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,5} ", line):
            line = "#" * shift + line
        out.append(line)
    return "\n".join(out) + "\n"
