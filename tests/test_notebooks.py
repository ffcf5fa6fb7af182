"""Each source notebook runs top to bottom as a student would run it, and its model really learns."""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor, wait

import nbformat
import pytest

from devtools.notebook_time import run_in_full
from grader.course import layout

pytestmark = pytest.mark.slow
LONGEST = ("pos_tagging", "attention")  # the notebooks that take longest in full: they start first

# What each notebook must print when run in full (not in grading mode): `name: value` lines, each
# checked against a bound. These are the numbers its prose relies on.
BOUNDS: dict[str, list[tuple[str, str, float]]] = {
    "packed_sequences": [
        # "gradients vanish ... at rates of the same order": every cell loses an order of magnitude or more per 10 steps
        *[(f"gradient decay per 10 steps (orders of magnitude), {cell}", ">=", 1.0) for cell in ("RNN", "GRU", "LSTM")],
        # "in this run its curve even stops about 80 steps back"
        ("steps back at which the RNN's gradient norm reads 0 in float32", ">=", 75),
        ("steps back at which the RNN's gradient norm reads 0 in float32", "<=", 90),
        ("spectral radius of W_hh at PyTorch's default initialisation", "<=", 1.0),
        ("orders of magnitude the gradient grows back to the first step, spectral radius 3", ">=", 3.0),
        ("gradient norm after clipping", "<=", 1.0),
        ("cosine between the gradient before and after clipping", ">=", 0.9999),
        # "about two thirds of the recurrent steps read padding"
        ("share of steps spent on padding, random batches", ">=", 0.55),
        ("share of steps spent on padding, random batches", "<=", 0.8),
        # "the packed pass takes roughly the share of real steps of the padded time, plus a little bookkeeping"
        ("share of real steps in this batch", "<=", 0.4),
        ("packed time as a share of padded time", "<=", 0.7),
    ],
    "seq2seq": [
        ("exact-match accuracy", ">=", 0.95),
        ("share of the length-3 strings held out", ">=", 0.25),  # "more than a quarter"
        # "every length it was trained on is reversed almost always right"
        *[(f"test exact match, {n} digits", ">=", 0.9) for n in range(3, 9)],
        ("exact match on 9-digit strings (longer than any in training)", ">=", 0.5),  # "most of the 9-digit strings"
        # "writes about as many digits as the source has"
        ("digits written for 9-digit sources, on average", ">=", 8.5),
        ("digits written for 10-digit sources, on average", ">=", 9.0),
        ("digits written for 10-digit sources, on average", "<=", 9.9),  # "fewer digits than the source has"
        # "most of the wrong 9-digit outputs hold the right digits in another order; some have a wrong digit;
        # a digit too few or too many is rare at 9 digits"
        ("wrong 9-digit outputs with the right digits in another order", ">=", 0.5),
        ("wrong 9-digit outputs with the right length, some digit wrong", ">=", 0.1),
        ("wrong 9-digit outputs with a digit too few or too many", "<=", 0.2),
    ],
    "bilstm_tagger": [
        ("bidirectional token accuracy", ">=", 0.98),
        ("unidirectional token accuracy", ">=", 0.55),  # "levels off at about two thirds"
        ("unidirectional token accuracy", "<=", 0.75),
        ("bidirectional left-context accuracy", ">=", 0.95),  # "both taggers are close to perfect"
        ("unidirectional left-context accuracy", ">=", 0.95),
        ("unidirectional right-context accuracy", "<=", 0.45),  # "near chance"
        ("sequences shared between the splits", "<=", 5),  # "the splits share next to no sequence"
    ],
    "attention": [
        ("attention exact-match accuracy", ">=", 0.95),
        ("attention exact match at its worst length", ">=", 0.95),  # "95% or more at every length"
        # "nearly every 4-digit string is right, about half of the 7-digit ones, hardly any at 10 digits and
        # next to none from 13 on"
        ("no-attention exact match on 4-digit strings", ">=", 0.85),
        ("no-attention exact match on 7-digit strings", ">=", 0.35),
        ("no-attention exact match on 7-digit strings", "<=", 0.65),
        ("no-attention exact match on 10-digit strings", "<=", 0.15),
        ("no-attention exact match on 13- to 16-digit strings", "<=", 0.02),
        # "about three times in four the first two, ... few of them have even the first five right; about half
        # of them are of the wrong length"
        ("share of them with the first two digits right", ">=", 0.6),
        ("share of them with the first two digits right", "<=", 0.9),
        ("share of them with the first five digits right", "<=", 0.4),
        ("share of them of the wrong length", ">=", 0.35),
        ("share of them of the wrong length", "<=", 0.7),
        # "ends more than an order of magnitude higher"
        ("orders of magnitude between the two final losses", ">=", 1.0),
        # "about half the weight is on the digit being written and about a fifth on each of its neighbours"
        ("mean weight on the source digit being written", ">=", 0.35),
        ("mean weight on the source digit being written", "<=", 0.65),
        *[(f"mean weight on the digit {side} it in the source", op, bound)
          for side in ("before", "after") for op, bound in ((">=", 0.1), ("<=", 0.3))],
        # "its weight collects on the last digit of the source, about half of it on average"
        ("mean weight of the EOS step on the last source digit", ">=", 0.35),
        ("mean weight of the EOS step on the last source digit", "<=", 0.7),
        # "a training step of the Bahdanau model costs a multiple of the baseline's, the Luong-style step clearly
        # less than the Bahdanau step, and greedy decoding takes a multiple of the time with attention"
        ("Bahdanau training step over the baseline's", ">=", 1.5),
        ("Luong-style training step over the Bahdanau step", "<=", 0.85),
        ("greedy decoding with attention over without", ">=", 1.5),
    ],
    "pos_tagging": [
        ("share of test words unseen in training, split by document", ">=", 0.10),  # "more than one test word in ten"
        # "about one in six" words of the test split are <unk>; "about one in ten" of the training split are seen once
        ("share of test words not in the vocabulary", ">=", 0.13),
        ("share of test words not in the vocabulary", "<=", 0.22),
        ("share of training words seen only once", ">=", 0.07),
        ("share of training words seen only once", "<=", 0.13),
        ("share of padding, random batches", ">=", 0.65),  # "about three quarters"
        ("share of padding, random batches", "<=", 0.85),
        ("share of padding, bucketed batches", "<=", 0.1),  # "less than a tenth"
        # the targets: Z >= 0.87 here, Z >= X + 0.03 and C >= A + 0.10 in GAPS
        ("char BiLSTM accuracy", ">=", 0.87),
        # "right about nine times in ten" on seen words; the lookup "about a third" on unseen words, the word
        # BiLSTM "wrong on about half", the char BiLSTM "about seven in ten"
        *[(f"seen-word accuracy, {name}", op, bound) for name in ("baseline", "word") for op, bound in ((">=", 0.86), ("<=", 0.94))],
        ("unseen-word accuracy, baseline", ">=", 0.25),
        ("unseen-word accuracy, baseline", "<=", 0.42),
        ("unseen-word accuracy, word", ">=", 0.4),
        ("unseen-word accuracy, word", "<=", 0.6),
        ("unseen-word accuracy, char", ">=", 0.62),
        ("unseen-word accuracy, char", "<=", 0.8),
        # the unseen words hold "about half of the lookup's" errors "and still about a third of the char BiLSTM's"
        ("share of the errors on unseen words, baseline", ">=", 0.4),
        ("share of the errors on unseen words, baseline", "<=", 0.6),
        ("share of the errors on unseen words, char", ">=", 0.25),
        ("share of the errors on unseen words, char", "<=", 0.45),
        # "more than half of them confuse two of NOUN, PROPN, ADJ, VERB and ADV"; NOUN-PROPN "among the largest cells"
        ("share of the char BiLSTM's errors between two of NOUN, PROPN, ADJ, VERB and ADV", ">=", 0.5),
        ("share of the char BiLSTM's errors between NOUN and PROPN", ">=", 0.1),
    ],
}

# Gaps a notebook's point rests on: (lower metric, higher metric, by at least), both printed in full runs.
# A negative gap bounds how far the first may exceed the second ("the two fall together").
GAPS: dict[str, list[tuple[str, str, float]]] = {
    "packed_sequences": [
        # "the plain RNN's rate is the fastest"
        ("gradient decay per 10 steps (orders of magnitude), GRU", "gradient decay per 10 steps (orders of magnitude), RNN", 0.0),
        ("gradient decay per 10 steps (orders of magnitude), LSTM", "gradient decay per 10 steps (orders of magnitude), RNN", 0.0),
        # "the last curve loses about half as many orders of magnitude per 10 steps as the plain LSTM"
        ("gradient decay per 10 steps (orders of magnitude), LSTM with forget bias 1",
         "gradient decay per 10 steps (orders of magnitude), LSTM", 0.8),
    ],
    "seq2seq": [
        # "the training and validation losses fall together, with no gap opening between them"
        ("final validation loss", "final training loss (mean of the last 20 batches)", -0.02),
        # "while the model is still learning, the free-running token accuracy trails the teacher-forced one ... it closes"
        ("validation token accuracy at step 100, free running", "validation token accuracy at step 100, teacher forced", 0.03),
        ("validation token accuracy at the end, teacher forced", "validation token accuracy at the end, free running", -0.01),
        # "the misses gather at the longest strings"
        ("test exact match, 8 digits", "test exact match, 3 digits", 0.02),
        # "accuracy falls quickly past the longest strings it was trained on ... far fewer of the 10-digit ones"
        ("exact match on 9-digit strings (longer than any in training)", "test exact match, 8 digits", 0.1),
        ("exact match on 10-digit strings (longer than any in training)",
         "exact match on 9-digit strings (longer than any in training)", 0.2),
        # "a digit too few or too many is rare at 9 digits, but at 10 it is about as common as a reordering"
        ("wrong 9-digit outputs with a digit too few or too many", "wrong 10-digit outputs with a digit too few or too many", 0.15),
        ("wrong 10-digit outputs with the right digits in another order", "wrong 10-digit outputs with a digit too few or too many", -0.1),
        ("wrong 10-digit outputs with a digit too few or too many", "wrong 10-digit outputs with the right digits in another order", -0.1),
    ],
    "bilstm_tagger": [
        # A left-to-right tagger misses what only the right context decides: 15 points or more.
        ("unidirectional right-context accuracy", "bidirectional right-context accuracy", 0.15),
        # "its loss stays high"
        ("bidirectional training loss, mean of the last 20 steps", "left-to-right training loss, mean of the last 20 steps", 0.3),
        # "the two thirds that its validation curve levelled off at ... the test split agrees with the validation split"
        ("unidirectional validation token accuracy at the end of training", "unidirectional token accuracy", -0.03),
        ("unidirectional token accuracy", "unidirectional validation token accuracy at the end of training", -0.03),
    ],
    # Without attention the fixed-size state loses long strings: 30 points or more below attention.
    "attention": [
        ("no-attention exact-match accuracy", "attention exact-match accuracy", 0.30),
        # "the two models start alike"
        ("training loss over the first 10 steps, no attention", "training loss over the first 10 steps, attention", -0.3),
        ("training loss over the first 10 steps, attention", "training loss over the first 10 steps, no attention", -0.3),
        # "already puts its largest weight on it"
        *[(f"mean weight on the digit {side} it in the source", "mean weight on the source digit being written", 0.1)
          for side in ("before", "after")],
        # "several times the share an even spread would give"
        ("mean weight an even spread would give each digit", "mean weight of the EOS step on the last source digit", 0.2),
    ],
    "pos_tagging": [
        # "had we split sentence by sentence, fewer would be new"
        ("share of test words unseen in training, split by sentence",
         "share of test words unseen in training, split by document", 0.005),
        # the stream's first rows come "after a small fraction of the time" the whole corpus took
        ("seconds to the first rows of the stream", "seconds to read and store the whole corpus (section 2)", 0.0),
        # the targets: Z >= X + 0.03, C >= A + 0.10
        ("baseline accuracy", "char BiLSTM accuracy", 0.03),
        ("unseen-word accuracy, baseline", "unseen-word accuracy, char", 0.10),
        # the BiLSTM "beats the word-by-word lookup by a few points at most"
        ("baseline accuracy", "word BiLSTM accuracy", 0.0),
        ("word BiLSTM accuracy", "baseline accuracy", -0.04),
        # characters "add several points overall, and far more on the unseen words"; seen words "gain a little too"
        ("word BiLSTM accuracy", "char BiLSTM accuracy", 0.02),
        ("unseen-word accuracy, word", "unseen-word accuracy, char", 0.1),
        ("seen-word accuracy, word", "seen-word accuracy, char", 0.005),
        # by frequency: the networks beat the lookup on words seen 20 times or more, the lookup is ahead on words
        # seen once to four times, and on unseen words the char BiLSTM is far ahead of both
        *[("accuracy on test words " + seen + ", baseline", "accuracy on test words " + seen + ", " + model, 0.0)
          for seen in ("seen 20-99 times", "seen 100+ times") for model in ("word", "char")],
        *[("accuracy on test words " + seen + ", " + model, "accuracy on test words " + seen + ", baseline", 0.0)
          for seen in ("seen once", "seen 2-4 times") for model in ("word", "char")],
        *[("accuracy on test words unseen, " + model, "accuracy on test words unseen, char", 0.1) for model in ("baseline", "word")],
        ("share of the errors on unseen words, char", "share of the errors on unseen words, baseline", 0.05),
        # "the characters did reduce that confusion"
        ("NOUN-PROPN confusions, char", "NOUN-PROPN confusions, word", 1),
    ],
}


NAME = r"[A-Za-z][\w ,'()\-+]*"  # a metric's name: words, digits and punctuation
LABELLED = re.compile(r"([A-Za-z][\w\-+]*) (-?\d+(?:\.\d+)?)")  # one value of a line of several: `word 0.85`


def printed_metrics(nb: nbformat.NotebookNode) -> dict[str, float]:
    """Every `name: 0.xx` line the notebook printed (a name, a number), and every line of labelled values,
    `name: a 0.xx, b 0.yy, ...`, as `name, a`, `name, b`, ..."""
    found = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                for name, value in re.findall(rf"^({NAME}): (-?\d+(?:\.\d+)?)\s*$", out["text"], re.M):
                    found[name] = float(value)
                for name, values in re.findall(rf"^({NAME}): (\S.*?)\s*$", out["text"], re.M):
                    parts = values.split(", ")
                    if len(parts) > 1 and all(LABELLED.fullmatch(p) for p in parts):
                        found.update({f"{name}, {label}": float(v) for label, v in map(str.split, parts)})
    return found


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory) -> dict[str, Future]:
    """Every notebook run in full, two at a time: each trains on one thread, so two cores halve the wait.

    The longest goes first, so the others share the second core while it runs.
    """
    notebooks = sorted(layout.available(), key=lambda nb: nb.name not in LONGEST)
    with ThreadPoolExecutor(2) as pool:  # each run in full, as a student runs it (not in grading mode)
        runs = {nb.name: pool.submit(run_in_full, nb.source, tmp_path_factory.mktemp(nb.name)) for nb in notebooks}
        wait(runs.values())
    return runs


@pytest.fixture(params=layout.available(), ids=lambda nb: nb.name)
def executed(request, full_runs):
    nb = request.param
    source, seconds = full_runs[nb.name].result()
    return nb, source, seconds


def test_runs_top_to_bottom_without_errors(executed):
    nb, source, seconds = executed
    errors = [(c.metadata.get("nbgrader", {}).get("grade_id"), o.get("ename"))
              for c in source.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    stderr = [c.metadata.get("nbgrader", {}).get("grade_id") for c in source.cells
              for o in c.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert stderr == [], "cells wrote to stderr (a warning in a test cell scores 0)"
    print(f"{nb.key}: ran in {seconds:.1f} s")


def test_draws_its_figures(executed):
    _, source, _ = executed
    images = [o for c in source.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 2


def test_prints_what_the_course_promises(executed):
    nb, source, _ = executed
    metrics = printed_metrics(source)
    for name, op, bound in BOUNDS[nb.name]:
        assert name in metrics, f"{nb.key} did not print `{name}: 0.xx`"
        value = metrics[name]
        assert value >= bound if op == ">=" else value <= bound, f"{name}: {value} (needs {op} {bound})"


def test_shows_the_gaps_it_explains(executed):
    nb, source, _ = executed
    metrics = printed_metrics(source)
    for lower, higher, gap in GAPS.get(nb.name, []):
        assert lower in metrics and higher in metrics, f"{nb.key} did not print `{lower}` and `{higher}`"
        assert metrics[lower] <= metrics[higher] - gap, (
            f"{lower} {metrics[lower]} is not {gap:g} below {higher} {metrics[higher]}")
