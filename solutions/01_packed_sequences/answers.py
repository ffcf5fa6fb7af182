"""Other answers to `run_packed`: realistic mistakes (each must lose points) and other correct ways.

Graded by tests/test_answers.py through the real autograder; the demo and the benchmark build
submissions from them. `cell` is the grade id of the solution cell the answer fills.
"""

from grader.answers import Answer

CELL = "run_packed"

ANSWERS = [
    Answer("forgets_enforce_sorted", CELL, correct=False,
           why="pack_padded_sequence defaults to enforce_sorted=True: fails on lengths in any order",
           source='''
def run_packed(rnn, embedded, lengths):
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True)
    packed_outputs, h_n = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    return outputs, h_n
'''),
    Answer("sorts_but_never_restores", CELL, correct=False,
           why="sorts the batch by length for packing and returns results in the sorted order",
           source='''
def run_packed(rnn, embedded, lengths):
    sorted_lengths, order = torch.sort(lengths, descending=True)
    packed = pack_padded_sequence(embedded[order], sorted_lengths.cpu(), batch_first=True)
    packed_outputs, h_n = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    return outputs, h_n
'''),
    Answer("restores_outputs_not_state", CELL, correct=False,
           why="puts the outputs back in batch order but leaves h_n sorted by length",
           source='''
def run_packed(rnn, embedded, lengths):
    sorted_lengths, order = torch.sort(lengths, descending=True)
    packed = pack_padded_sequence(embedded[order], sorted_lengths.cpu(), batch_first=True)
    packed_outputs, h_n = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    return outputs[torch.argsort(order)], h_n
'''),
    Answer("pads_to_longest_only", CELL, correct=False,
           why="no total_length: the outputs are as wide as the longest sequence, not T",
           source='''
def run_packed(rnn, embedded, lengths):
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_outputs, h_n = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True)
    return outputs, h_n
'''),
    Answer("masks_instead_of_packing", CELL, correct=False,
           why="runs over the padding and zeroes the padded outputs: h_n is the state after the padding",
           source='''
def run_packed(rnn, embedded, lengths):
    outputs, h_n = rnn(embedded)
    mask = torch.arange(embedded.size(1), device=embedded.device)[None, :] < lengths.to(embedded.device)[:, None]
    return outputs * mask.unsqueeze(-1), h_n
'''),
    Answer("gathers_last_output", CELL, correct=False,
           why="takes h_n from the top layer's output at each last step: right for a one-layer "
               "unidirectional GRU, wrong for several layers, the backward direction, and an LSTM's c_n",
           source='''
def run_packed(rnn, embedded, lengths):
    outputs, _ = rnn(embedded)
    mask = torch.arange(embedded.size(1), device=embedded.device)[None, :] < lengths.to(embedded.device)[:, None]
    outputs = outputs * mask.unsqueeze(-1)
    last = outputs[torch.arange(outputs.size(0)), lengths - 1]
    return outputs, last.unsqueeze(0)
'''),
    Answer("forgets_batch_first_when_unpacking", CELL, correct=False,
           why="pad_packed_sequence without batch_first=True returns [T, B, H]",
           source='''
def run_packed(rnn, embedded, lengths):
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_outputs, h_n = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, total_length=embedded.size(1))
    return outputs, h_n
'''),
    Answer("drops_lstm_cell_state", CELL, correct=False,
           why="returns only h_n for an LSTM, dropping c_n",
           source='''
def run_packed(rnn, embedded, lengths):
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_outputs, state = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    h_n = state[0] if isinstance(state, tuple) else state
    return outputs, h_n
'''),
    Answer("zeroes_padding_in_place", CELL, correct=False,
           why="cleans the padded inputs in place, modifying the caller's tensor",
           source='''
def run_packed(rnn, embedded, lengths):
    mask = torch.arange(embedded.size(1))[None, :] >= lengths.cpu()[:, None]
    embedded.masked_fill_(mask.unsqueeze(-1).to(embedded.device), 0.0)
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_outputs, h_n = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    return outputs, h_n
'''),
    Answer("visible_tests_only", CELL, correct=False,
           why="sorted lengths, one-layer GRU, max length == T: exactly what the visible tests try, nothing more",
           source='''
def run_packed(rnn, embedded, lengths):
    packed = pack_padded_sequence(embedded, lengths, batch_first=True)
    packed_outputs, h_n = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True)
    return outputs, h_n
'''),
    Answer("sorts_and_restores_by_hand", CELL, correct=True,
           why="sorts by hand, packs with enforce_sorted=True, unsorts outputs and every state tensor",
           source='''
def run_packed(rnn, embedded, lengths):
    sorted_lengths, order = torch.sort(lengths, descending=True)
    restore = torch.argsort(order)
    packed = pack_padded_sequence(embedded[order], sorted_lengths.cpu(), batch_first=True, enforce_sorted=True)
    packed_outputs, state = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    if isinstance(state, tuple):
        state = tuple(s[:, restore.to(s.device)] for s in state)
    else:
        state = state[:, restore.to(state.device)]
    return outputs[restore.to(outputs.device)], state
'''),
    Answer("pads_width_by_hand", CELL, correct=True,
           why="lengths as a Python list, and the missing columns added with F.pad instead of total_length",
           source='''
import torch.nn.functional as F

def run_packed(rnn, embedded, lengths):
    packed = pack_padded_sequence(embedded, lengths.tolist(), batch_first=True, enforce_sorted=False)
    packed_outputs, h_n = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True)
    missing = embedded.size(1) - outputs.size(1)
    return F.pad(outputs, (0, 0, 0, missing)), h_n
'''),
]
