"""MkDocs hooks of the documentation build (mkdocs.yml `hooks:`).

What they guarantee, so that `mkdocs build --strict` fails instead of publishing a wrong site:

- figures: every figure comes from a code block run during this build (matplotlib, Agg),
  saved by `jaxmdp_docs.figure` and copied here into `site/figures/`; an image file committed
  under `docs/` fails the build, and so does a page whose `<img>` points to a missing figure.
- API reference: generated from the public names, `jaxmdp.__all__`, `jaxmdp.models.__all__`,
  `jaxmdp.bellman.__all__` and `jaxmdp.plot.__all__`. The pages under `docs/api/` group them
  with `::: name` entries; a public name no page lists is appended where the marker
  `<!-- jaxmdp-api: ungrouped -->` stands (so the reference is never incomplete; the build
  log names it, to be grouped), and an entry that is not a public name fails the build.
- isolation: each page starts with JAX's default float32 (a page that enables float64 does not
  change the next one); figure names are unique across pages; console blocks run `jaxmdp ...`
  in a scratch folder (their option `workdir="JAXMDP_DOCS_WORKDIR"` is replaced by its path),
  with the `jaxmdp` command installed beside the interpreter that runs the build.
- docstring examples: the `>>>` lines of every public docstring run too (each docstring in a
  fresh namespace with `np`, `jnp`, `jax`, `jaxmdp` and `models`), so an example shown in the
  API reference cannot silently break. `NOT_RUNNABLE` lists the ones that cannot run as
  written (fragments); the build log names them, and an entry that has become runnable, or
  that no longer exists, fails the build so that the list only shrinks.
- timing: the build log names the slowest pages (the build should stay around a minute).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mkdocs.exceptions import PluginError

sys.path.insert(0, os.path.dirname(__file__))
import jaxmdp_docs  # noqa: E402  (the helpers the code blocks import)

sys.path.remove(os.path.dirname(__file__))
sys.modules["jaxmdp_docs"] = jaxmdp_docs

log = logging.getLogger("mkdocs.hooks.jaxmdp")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".pdf"}
API_DIR = "api/"
# `::: name` (mkdocstrings) or, for constants griffe cannot see (tuple assignments), a table
# announced by `<!-- jaxmdp-api: constant name -->`.
ENTRY = re.compile(r"^(?:::: *|<!-- jaxmdp-api: constant )([\w.]+)", flags=re.MULTILINE)
MODULES = {"jaxmdp", "jaxmdp.models", "jaxmdp.bellman", "jaxmdp.plot"}  # module docstrings
UNGROUPED = "<!-- jaxmdp-api: ungrouped -->"
_documented: set[str] = set()
_ungrouped: list[str] = []
_placed: list[str] = []
_started: dict[str, float] = {}
_timings: list[tuple[float, str]] = []
_tmp: list[tempfile.TemporaryDirectory] = []


def on_config(config, **kwargs):
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    for t in _tmp:  # `mkdocs serve` rebuilds: start each build afresh
        t.cleanup()
    _tmp.clear()
    _tmp.append(tempfile.TemporaryDirectory(prefix="jaxmdp-docs-figures-"))
    _tmp.append(tempfile.TemporaryDirectory(prefix="jaxmdp-docs-workdir-"))
    jaxmdp_docs.state.update(figure_dir=_tmp[0].name, workdir=_tmp[1].name, page_url="", made={})
    # Console blocks run `jaxmdp ...`: the command installed beside this interpreter.
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    _documented.clear()
    _placed.clear()
    _timings.clear()
    return config


def on_files(files, config, **kwargs):
    docs = Path(config.docs_dir).resolve()
    pasted = [
        f.src_uri
        for f in files
        if Path(f.src_uri).suffix.lower() in IMAGE_SUFFIXES
        and f.abs_src_path
        and Path(f.abs_src_path).resolve().is_relative_to(docs)
    ]
    if pasted:
        raise PluginError(
            f"image files under docs/ ({', '.join(sorted(pasted))}): every figure on the site "
            "must be drawn by a code block during the build (jaxmdp_docs.figure)"
        )
    return files


def on_nav(nav, config, files, **kwargs):
    for f in files.documentation_pages():
        if f.src_uri.startswith(API_DIR):
            _documented.update(ENTRY.findall(f.content_string))
    public = _public_names()
    extra = sorted(_documented - public - MODULES)
    if extra:
        raise PluginError(f"docs/api/ documents names that are not public: {extra}")
    _ungrouped[:] = sorted(public - _documented)
    if _ungrouped:
        log.info("public names not grouped in docs/api/ (listed under 'Other'): %s", _ungrouped)
    return nav


def on_page_markdown(markdown, page, config, files, **kwargs):
    import jax

    jax.config.update("jax_enable_x64", False)  # each page starts in JAX's default dtype
    jaxmdp_docs.state["page_url"] = page.url
    _started[page.file.src_uri] = time.perf_counter()
    markdown = markdown.replace(jaxmdp_docs.WORKDIR_TOKEN, jaxmdp_docs.state["workdir"])
    if UNGROUPED in markdown:
        section = "\n\n".join(f"::: {name}" for name in _ungrouped)
        markdown = markdown.replace(UNGROUPED, f"## Other\n\n{section}\n" if _ungrouped else "", 1)
        _placed.append(page.file.src_uri)
    return markdown


def on_page_content(html, page, config, files, **kwargs):
    took = time.perf_counter() - _started.pop(page.file.src_uri, time.perf_counter())
    _timings.append((took, page.file.src_uri))
    return html


def _public_names() -> set[str]:
    import jaxmdp
    import jaxmdp.plot

    names = {f"jaxmdp.{n}" for n in jaxmdp.__all__ if n not in {"bellman", "models"}}
    names |= {f"jaxmdp.models.{n}" for n in jaxmdp.models.__all__}
    names |= {f"jaxmdp.bellman.{n}" for n in jaxmdp.bellman.__all__}
    names |= {f"jaxmdp.plot.{n}" for n in jaxmdp.plot.__all__}
    return names


# Docstring examples that are fragments, not programs (they use names the docstring does not
# define). To be rewritten with the public docstrings; remove the entry when that is done.
NOT_RUNNABLE: dict[str, str] = {}


def _docstring_examples():
    """`{qualified name: code}` for the public objects whose docstrings hold `>>>` lines."""
    import inspect

    import jaxmdp.plot  # noqa: F401  (the modules `_public_names` reads, in sys.modules)

    found = {}
    for name in sorted(_public_names()):
        module, _, attr = name.rpartition(".")
        obj = getattr(sys.modules[module], attr)
        members = [(name, obj)]
        if inspect.isclass(obj):
            members += [(f"{name}.{k}", v) for k, v in vars(obj).items() if not k.startswith("_")]
        for qual, member in members:
            member = getattr(member, "fget", getattr(member, "__func__", member))
            if not (inspect.isfunction(member) or inspect.isclass(member)):
                continue  # constants and field defaults: their type's docstring is not ours
            doc = inspect.getdoc(member) or ""
            lines = [
                ln.strip()[4:]
                for ln in doc.splitlines()
                if ln.strip().startswith((">>> ", "... ")) or ln.strip() in (">>>", "...")
            ]
            if lines:
                found[qual] = "\n".join(lines)
    return found


def _run_docstring_examples():
    examples = _docstring_examples()
    stale = sorted(set(NOT_RUNNABLE) - set(examples))
    failed, ran, runnable_now = [], 0, []
    for qual, code in examples.items():
        namespace = {}
        exec(
            "import numpy as np, jax, jax.numpy as jnp, jaxmdp\nfrom jaxmdp import models",
            namespace,
        )
        try:
            exec(compile(code, f"<docstring example of {qual}>", "exec"), namespace)
        except Exception as error:  # noqa: BLE001 (reported below)
            if qual not in NOT_RUNNABLE:
                failed.append(f"{qual}: {type(error).__name__}: {error}")
            continue
        ran += 1
        if qual in NOT_RUNNABLE:
            runnable_now.append(qual)
    if failed or stale or runnable_now:
        problems = failed + [f"{q}: listed in NOT_RUNNABLE but has no example" for q in stale]
        problems += [f"{q}: runs now, remove it from NOT_RUNNABLE" for q in runnable_now]
        raise PluginError("public docstring examples: " + "; ".join(problems))
    for qual, why in NOT_RUNNABLE.items():
        log.info("docstring example of %s not run (a fragment: %s)", qual, why)
    return ran


def on_post_build(config, **kwargs):
    site = Path(config.site_dir)
    target = site / jaxmdp_docs.FIGURES
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(jaxmdp_docs.state["figure_dir"], target)

    missing_figures = []
    for page in site.rglob("*.html"):
        for src in re.findall(r'<img src="([^"]+)"', page.read_text(encoding="utf-8")):
            if jaxmdp_docs.FIGURES in src and not (page.parent / src).resolve().is_file():
                missing_figures.append(f"{page.relative_to(site)} -> {src}")
    if missing_figures:
        raise PluginError("figures referenced but not produced: " + "; ".join(missing_figures))

    if len(_placed) != 1:
        raise PluginError(f"the marker {UNGROUPED} must stand on exactly one page: {_placed}")
    ran = _run_docstring_examples()
    slowest = ", ".join(f"{uri} {t:.1f} s" for t, uri in sorted(_timings, reverse=True)[:5])
    log.info(
        "jaxmdp docs: %d figures drawn, %d public names documented, %d docstring examples "
        "run; slowest pages: %s",
        len(jaxmdp_docs.state["made"]),
        len(_documented) + len(_ungrouped),
        ran,
        slowest,
    )
