"""BENCHMARKS.md: the machine a benchmark ran on, and the marked sections that each tool keeps there."""

from __future__ import annotations

import platform
import re
from pathlib import Path


def machine() -> str:
    """The CPU model, as /proc/cpuinfo names it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- section: {name} -->", f"<!-- end: {name} -->"


def sections(text: str) -> dict[str, str]:
    """The marked sections of BENCHMARKS.md, each with its markers, by name."""
    found = re.finditer(r"<!-- section: (?P<name>[\w-]+) -->\n.*?<!-- end: (?P=name) -->\n?", text, re.S)
    return {m["name"]: m[0] for m in found}


def write_section(path: Path, name: str, body: str) -> None:
    """Put `body` into the section `name` of the file at `path` (appended when the file has none yet)."""
    begin, end = _markers(name)
    block = f"{begin}\n{body.strip()}\n{end}\n"
    text = path.read_text() if path.exists() else ""
    old = sections(text).get(name)
    path.write_text(text.replace(old, block) if old else text.rstrip("\n") + ("\n\n" if text else "") + block)
