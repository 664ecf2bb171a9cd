"""Griffe extension for the API pages: `x[i][j]` in a docstring is indexing, not a link.

Markdown reads `P[a][s, s']` as a reference-style link to the target `s, s'`, which the strict
build then reports as a broken cross-reference. The library's docstrings use no reference-
style links, so outside code spans every `][` is escaped to `]\\[` (rendered unchanged).
Loaded by mkdocs.yml (`mkdocstrings` handler option `extensions`).
"""

from __future__ import annotations

import re

import griffe

_CODE_OR_INDEX = re.compile(r"(`+)(?:.|\n)*?\1|\]\[")


def _escape(text: str) -> str:
    return _CODE_OR_INDEX.sub(lambda m: m.group(0) if m.group(1) else "]\\[", text)


class IndexingNotLinks(griffe.Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None and "][" in obj.docstring.value:
            obj.docstring.value = _escape(obj.docstring.value)
