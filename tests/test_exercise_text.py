"""The released notebooks explain what to build and its traps; they do not hand over the code that solves it.

For each exercise, a list of *solving fragments*: pieces of code that are the answer, or the one
argument that makes it work. None may appear in the released notebook of that exercise (markdown,
given code, visible tests). Each fragment is real: it occurs in the reference solution of its exercise
or in a correct answer of the notebook's catalogue. The control checks the wording the notebooks had
before the exercises were rewritten: there the check finds what it is meant to find.
"""

from __future__ import annotations

import nbformat
import pytest

from grader.course import answers, layout

# notebook -> exercise -> fragments. Notebook 4 gives assignment 2's `Seq2Seq` and `sequence_loss` as code
# (it needs a working encoder-decoder), so packing itself is no fragment of its exercises; what is new in
# notebook 4 (the width of the padded outputs, the previous state as the query, the decoder's input) is.
FRAGMENTS: dict[str, dict[str, list[str]]] = {
    "packed_sequences": {
        "lstm_cell": ["@ weight_ih.T", "chunk(4, dim=1)", "torch.sigmoid(f) * c"],
        "run_packed": ["enforce_sorted", "total_length", "lengths.detach().cpu()"],
    },
    "seq2seq": {
        "make_decoder_inputs": ["torch.full_like(targets", "torch.cat([bos, targets[:, :-1]]",
                                "F.pad(targets[:, :-1], (1, 0)"],
        "Seq2Seq": ["enforce_sorted", "src_lengths.cpu()", "self.embedding(prev_tokens).unsqueeze(1)",
                    "self.decoder(self.embedding(decoder_inputs)"],
        "sequence_loss": ["ignore_index", "logits.reshape(-1, logits.size(-1))"],
        "greedy_decode": ["prev_tokens = logits.argmax(dim=-1)", "torch.full((src.size(0),), bos_idx",
                          "torch.stack(generated, dim=1)"],
    },
    "bilstm_tagger": {
        "BiLSTMTagger": ["enforce_sorted", "total_length", "lengths.detach().cpu()", "bidirectional=True",
                         "nn.Linear(2 * hidden_dim, num_tags)"],
        "token_accuracy": ["(logits.argmax(dim=-1) == targets) & mask", "correct.sum().float() / mask.sum()"],
        "masked_cross_entropy": ["logits[mask]", "targets[mask]"],
    },
    "attention": {
        "masked_softmax": ['masked_fill(~mask, float("-inf"))', "weights.masked_fill(~mask, 0.0)"],
        "AdditiveAttention": ["self.query_proj(query).unsqueeze(1)", "torch.bmm(weights.unsqueeze(1), keys)",
                              "self.v(hidden).squeeze(-1)"],
        "AttentionSeq2Seq": ["total_length", "hidden[-1]", "torch.cat([self.embedding(prev_tokens), context]",
                             "nn.GRU(embed_dim + hidden_dim"],
    },
    "pos_tagging": {
        "build_vocab": ["(-counts[word], word)", "enumerate(kept, start=2)", "n >= min_freq"],
        "encode": ["vocab.get(word.lower(), 1)", "tag_vocab[tag] for tag in tags"],
        "bucket_batches": ["random.Random(seed).shuffle(batches)", "key=lambda i: lengths[i]"],
        "collate": ["padding_value=-100", "pad_sequence(ids, batch_first=True"],
        "CharCNN": ["(chars == self.pad_idx)", "masked_fill(padding, 0.0).amax(dim=2)", ".transpose(1, 2)"],
    },
}

# The notebooks' wording before the exercises were rewritten: each excerpt handed over a solving fragment.
BEFORE = {
    ("packed_sequences", "run_packed"): [
        "Packing needs the batch sorted by decreasing length. It can sort for you\n  (`enforce_sorted=False`) "
        "and remembers the permutation",
        "`pad_packed_sequence` pads back only to the longest sequence in the batch unless you ask\n  for a "
        "`total_length`.",
        "packed = pack_padded_sequence(demo, demo_lengths, batch_first=True, enforce_sorted=False)",
    ],
    ("seq2seq", "Seq2Seq"): ["so pack the batch as in assignment 1:\n  `pack_padded_sequence(embedded, "
                             "src_lengths.cpu(), batch_first=True, enforce_sorted=False)`."],
    ("seq2seq", "sequence_loss"): ["and\nits `ignore_index` argument leaves out the positions where the target "
                                   "equals it."],
    ("bilstm_tagger", "BiLSTMTagger"): ["`pack_padded_sequence` wants `lengths` on the CPU, in any\n  order if "
                                        "you say `enforce_sorted=False`;"],
    ("attention", "masked_softmax"): ['`scores.masked_fill(~mask, float("-inf"))` does\n  it without touching '
                                      '`scores`.'],
    ("attention", "AdditiveAttention"): ["`torch.bmm(weights.unsqueeze(1), keys)` is the batched\nweighted sum"],
    ("attention", "AttentionSeq2Seq"): [
        "which `pad_packed_sequence(outputs, batch_first=True,\n  total_length=src.size(1))` turns back into "
        "`[B, S, H]`",
        "with the state from *before* this step as the query\n  (`hidden[-1]`, `[B, H]`)",
        "outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src.size(1))",
    ],
}

NOTEBOOKS = {nb.name: nb for nb in layout.available()}
CASES = [(NOTEBOOKS[name], exercise) for name, exercises in FRAGMENTS.items() if name in NOTEBOOKS
         for exercise in exercises]


def released_text(notebook: layout.Notebook) -> str:
    """Everything a student reads in the released notebook: markdown, given code and visible tests."""
    return "\n".join(cell.source for cell in nbformat.read(notebook.released, as_version=4).cells)


def handed_over(text: str, fragments: list[str]) -> list[str]:
    """The fragments that occur in `text`, ignoring how lines are wrapped."""
    flat = " ".join(text.split())
    return [f for f in fragments if " ".join(f.split()) in flat]


def test_every_exercise_has_fragments():
    for notebook in NOTEBOOKS.values():
        assert set(FRAGMENTS.get(notebook.name, {})) == set(notebook.exercises), notebook.key


@pytest.mark.parametrize("notebook,exercise", CASES, ids=[f"{nb.name}-{e}" for nb, e in CASES])
def test_fragments_solve_the_exercise(notebook, exercise):
    """Control: each fragment is in the reference solution of its exercise or in a correct catalogued answer."""
    solved = [answers.reference(notebook)[exercise]]
    solved += [a.source for a in answers.catalogue(notebook) if a.correct and a.cell == exercise]
    for fragment in FRAGMENTS[notebook.name][exercise]:
        assert any(handed_over(source, [fragment]) for source in solved), f"{exercise}: {fragment!r} solves nothing"


@pytest.mark.parametrize("notebook,exercise", CASES, ids=[f"{nb.name}-{e}" for nb, e in CASES])
def test_release_does_not_hand_over_the_solution(notebook, exercise):
    assert handed_over(released_text(notebook), FRAGMENTS[notebook.name][exercise]) == []


@pytest.mark.parametrize("key", list(BEFORE), ids=["-".join(k) for k in BEFORE])
def test_the_check_finds_the_wording_it_replaced(key):
    """Control: the wording the notebooks had before handed these exercises over, and the check says so."""
    name, exercise = key
    for excerpt in BEFORE[key]:
        assert handed_over(excerpt, FRAGMENTS[name][exercise]), excerpt
