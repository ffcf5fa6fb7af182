"""Driving a student's JupyterLab in Chromium, for tests/test_browser.py.

The actions go through the page as a student's would (clicks, keys, text typed into the editor, menus,
the Validate button); what a cell shows is read back from the page: its prompt and its outputs as
JupyterLab's notebook model holds them (`window.jupyterapp`, exposed for tests with
`--LabApp.expose_app_in_browser`), and its images from the DOM.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from helpers import free_port

from grader.course.lab import lab_command, student_env

VIEWPORT = {"width": 1280, "height": 900}


@dataclass
class Lab:
    """A running JupyterLab: its URL, root folder and log."""

    url: str
    root: Path
    log: Path

    def tree(self, relpath: str) -> str:
        """The notebook's URL; `?reset` starts from an empty workspace, not the tabs an earlier page left."""
        return f"{self.url}/lab/tree/{relpath}?reset"


@contextmanager
def running_lab(root: Path, home: Path, startup_timeout: float = 90):
    """JupyterLab as `python -m grader lab` starts it, on `root`, until the block ends.

    `home` holds JupyterLab's user settings and workspaces, so the test neither reads nor writes the
    user's own.
    """
    port = free_port()
    log = home / "jupyterlab.log"
    env = student_env()
    env["JUPYTERLAB_SETTINGS_DIR"] = str(home / "user-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(home / "workspaces")
    env.pop("NBGRADER_EXECUTION", None)
    cmd = lab_command(root, port, open_browser=False, extra=[
        "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
        "--LabApp.expose_app_in_browser=True"])
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not answer on {url} in {startup_timeout:.0f} s:\n"
                                       f"{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield Lab(url, root, log)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM the server's process group (the server shuts its kernels down), SIGKILL if it hangs.

    Kernels run in sessions of their own; one the server failed to stop exits with its parent
    (ipykernel watches JPY_PARENT_PID).
    """
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(grace)
    except ProcessLookupError:
        pass



# --- one notebook in JupyterLab -------------------------------------------------------------

_CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.map((cell) => {
    const m = cell.model;
    const outputs = [];
    if (m.type === 'code') {
      for (let j = 0; j < m.outputs.length; j++) {
        const o = m.outputs.get(j).toJSON();
        outputs.push({type: o.output_type, ename: o.ename || '', evalue: o.evalue || '',
                      traceback: o.traceback || [],
                      mimes: Object.keys(o.data || {}), name: o.name || ''});
      }
    }
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    return {type: m.type, source: m.sharedModel.getSource(),
            grade_id: ((m.getMetadata('nbgrader') || {}).grade_id) || '',
            execution_count: m.type === 'code' ? m.executionCount : null,
            state: m.type === 'code' ? m.executionState : 'idle',
            prompt: prompt ? prompt.textContent.trim() : '',
            outputs: outputs,
            output_text: (cell.node.querySelector('.jp-OutputArea') || {textContent: ''}).textContent};
  });
}"""

_IMAGES_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets.flatMap((cell, i) =>
    Array.from(cell.node.querySelectorAll('.jp-OutputArea-output img')).map((img) => ({
      cell: i, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight})))"""


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def raised_at(traceback: list[str]) -> str:
    """` (line N: <code>)` for the cell's own frame of a traceback: the line a reader looks at."""
    for frame in traceback:
        frame = ANSI.sub("", frame)
        head = re.match(r"Cell In\[\d+\], line (\d+)", frame)
        arrow = re.search(r"^-+> *\d+ (.*)$", frame, re.M)
        if head and arrow:
            return f" (line {head.group(1)}: {arrow.group(1).strip()})"
    return ""


@dataclass
class Cell:
    """What the page shows of one cell, read back after running it."""

    index: int
    type: str
    source: str
    grade_id: str
    execution_count: int | None
    state: str
    prompt: str
    outputs: list[dict]
    output_text: str

    @property
    def errors(self) -> list[str]:
        """`ename: evalue` of each error output, and the line of this cell that raised it."""
        return [f"{o['ename']}: {o['evalue']}".rstrip(": ") + raised_at(o["traceback"])
                for o in self.outputs if o["type"] == "error"]

    @property
    def image_outputs(self) -> int:
        return sum(1 for o in self.outputs if any(m.startswith("image/") for m in o["mimes"]))


class NotebookPage:
    """One notebook open in JupyterLab, in a Chromium page."""

    def __init__(self, page, lab: Lab, relpath: str):
        self.page, self.lab, self.relpath = page, lab, relpath

    # reading

    def cells(self) -> list[Cell]:
        return [Cell(i, **c) for i, c in enumerate(self.page.evaluate(_CELLS_JS))]

    def cell_node(self, index: int):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)

    def shown_text(self, index: int, timeout: float = 10) -> str:
        """The text of a cell's outputs as the page renders it, once scrolled into view.

        (JupyterLab skips rendering cells out of view, and their innerText reads empty until they
        are drawn.)
        """
        area = self.cell_node(index).locator(".jp-Cell-outputArea")
        area.scroll_into_view_if_needed()
        try:
            area.evaluate("(el, ms) => new Promise((resolve, reject) => {"
                          "  const t0 = Date.now();"
                          "  const poll = () => el.innerText.trim() ? resolve() :"
                          "    Date.now() - t0 > ms ? reject(new Error('empty')) : requestAnimationFrame(poll);"
                          "  poll(); })", timeout * 1000)
        except Exception:
            pass
        return area.inner_text()

    def images(self) -> list[dict]:
        return self.page.evaluate(_IMAGES_JS)

    def kernel_status(self) -> str:
        return self.page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayStatus")

    # opening

    def open(self, timeout: float = 60) -> float:
        """Open the notebook at /lab/tree/<relpath>; wait for its cells, the Validate button and an idle kernel.

        Returns the seconds it took.
        """
        start = time.monotonic()
        self.page.goto(self.lab.tree(self.relpath))
        self.page.wait_for_function(
            """(path) => {
              const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
              return w && w.context && w.context.path === path && w.context.isReady
                && w.content.widgets.length > 0 && w.node.querySelector('.validate-button');
            }""", arg=self.relpath, timeout=timeout * 1000)
        self.wait_for_kernel_idle(timeout - (time.monotonic() - start))
        return time.monotonic() - start

    def wait_for_kernel_idle(self, timeout: float = 60) -> None:
        self.page.wait_for_function(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayStatus === 'idle'",
            timeout=max(timeout, 1) * 1000)

    # acting as a student

    def select_cell(self, index: int) -> None:
        """Click a cell's input prompt (selects it without entering the editor), then Escape: command mode."""
        node = self.cell_node(index)
        node.scroll_into_view_if_needed()
        node.locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Escape")
        self.page.wait_for_function(
            "(i) => window.jupyterapp.shell.currentWidget.content.activeCellIndex === i", arg=index)

    def run_one_by_one(self, cell_timeout: float = 300) -> list[Cell]:
        """Select the first cell and press Shift+Enter once per cell, waiting for each run to finish."""
        count = len(self.cells())
        self.select_cell(0)
        for i in range(count):
            self.page.wait_for_function(
                "(i) => window.jupyterapp.shell.currentWidget.content.activeCellIndex === i", arg=i)
            self.page.keyboard.press("Shift+Enter")
            self.wait_for_cell(i, cell_timeout)
        return self.cells()

    def wait_for_cell(self, index: int, timeout: float) -> None:
        """A code cell has run when its prompt shows an execution count and the kernel is idle again."""
        self.page.wait_for_function(
            """(i) => {
              const panel = window.jupyterapp.shell.currentWidget;
              const m = panel.content.widgets[i].model;
              if (m.type !== 'code') return true;
              return m.executionCount !== null && m.executionState === 'idle'
                && panel.sessionContext.kernelDisplayStatus === 'idle';
            }""", arg=index, timeout=timeout * 1000, polling=200)

    def type_into(self, index: int, text: str) -> None:
        """Click into a cell's editor (a rendered markdown cell's after a double click), select everything, and
        put `text` in its place.

        `keyboard.insert_text` sends the text as one input event, as a paste would, so CodeMirror's
        auto-indent and bracket closing (which act on typed Enter and bracket keys) leave it as it is.
        """
        node = self.cell_node(index)
        node.scroll_into_view_if_needed()
        if "jp-mod-rendered" in (node.get_attribute("class") or ""):  # a rendered markdown cell: open its editor
            node.locator(".jp-MarkdownOutput").dblclick()
        editor = node.locator(".jp-InputArea-editor .cm-content")
        editor.scroll_into_view_if_needed()
        editor.click()
        self.page.keyboard.press("ControlOrMeta+a")
        self.page.keyboard.insert_text(text)
        self.page.keyboard.press("Escape")

    def menu(self, *labels: str) -> None:
        """Click through the menu bar: menu("Run", "Run All Cells")."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(labels[0])}$")).click()
        for label in labels[1:]:
            self.page.locator(".lm-Menu:not(.lm-MenuBar) .lm-Menu-itemLabel",
                              has_text=re.compile(f"^{re.escape(label)}$")).first.click()

    def restart_and_run_all(self, timeout: float = 600) -> list[Cell]:
        """Kernel > Restart Kernel and Run All Cells…, confirm, and wait until every code cell has run.

        For a notebook not yet run in this page (the wait reads execution counts).
        """
        code = [c.index for c in self.cells() if c.type == "code"]
        assert all(c.execution_count is None for c in self.cells() if c.type == "code"), "cells already run"
        self.menu("Kernel", "Restart Kernel and Run All Cells…")
        self.page.locator(".jp-Dialog .jp-mod-accept").click()
        self.page.wait_for_function(
            """(code) => {
              const panel = window.jupyterapp.shell.currentWidget;
              const ms = code.map((i) => panel.content.widgets[i].model);
              const done = ms.every((m) => m.executionCount !== null && m.executionState === 'idle');
              const stopped = ms.some((m) => m.outputs.toJSON().some((o) => o.output_type === 'error'))
                && ms.every((m) => m.executionState === 'idle');
              return (done || stopped) && panel.sessionContext.kernelDisplayStatus === 'idle';
            }""", arg=code, timeout=timeout * 1000, polling=500)
        return self.cells()

    def validate(self, timeout: float = 300) -> tuple[str, str, float]:
        """Press the toolbar's Validate button; return the dialog's title, its text and the seconds it took."""
        start = time.monotonic()
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .validate-button").click()
        dialog = self.page.locator(".jp-Dialog")
        dialog.wait_for(timeout=timeout * 1000)
        took = time.monotonic() - start
        title = dialog.locator(".jp-Dialog-header").inner_text()
        body = dialog.locator(".jp-Dialog-body").inner_text()
        return title, body, took

    def close_dialog(self) -> None:
        self.page.locator(".jp-Dialog .jp-mod-accept").click()
        self.page.locator(".jp-Dialog").wait_for(state="detached")

    def shut_down_kernel(self) -> None:
        """Kernel > Shut Down Kernel: frees the CPU for the next notebook."""
        self.menu("Kernel", "Shut Down Kernel")
        self.page.wait_for_function(
            "() => !window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel")


def copy_notebooks(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest
