"""Other answers to `lstm_cell` and `run_packed`: realistic mistakes (each must lose points) and other
correct ways (each must get full marks).

Graded by tests/test_answers.py through the real autograder; the demo and the benchmark build
submissions from them. `cell` is the grade id of the solution cell the answer fills.
"""

from grader.course.answers import Answer

CELL = "run_packed"
LSTM_CELL = "lstm_cell"

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
    Answer("sorted_lengths_only", CELL, correct=False,
           why="packs with the default enforce_sorted=True and pads back to the longest sequence only: "
               "right for sorted lengths whose longest is T, nothing more",
           source='''
def run_packed(rnn, embedded, lengths):
    packed = pack_padded_sequence(embedded, lengths, batch_first=True)
    packed_outputs, h_n = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True)
    return outputs, h_n
'''),
    Answer("reapplies_unsorted_indices", CELL, correct=False,
           why="the classic bug: restores the batch order of h_n that the GRU has already restored",
           source='''
def run_packed(rnn, embedded, lengths):
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_outputs, h_n = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    if isinstance(h_n, tuple):
        return outputs, tuple(s[:, packed.unsorted_indices] for s in h_n)
    return outputs, h_n[:, packed.unsorted_indices]
'''),
    Answer("visible_tests_only", CELL, correct=False,
           why="exactly the visible tests' case, a one-layer unidirectional GRU: packs right, but rebuilds "
               "h_n as the output at each sequence's last real step (wrong for an LSTM's c_n, several "
               "layers and the backward direction)",
           source='''
def run_packed(rnn, embedded, lengths):
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_outputs, _ = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    last = outputs[torch.arange(outputs.size(0)), lengths.cpu() - 1]
    return outputs, last.unsqueeze(0)
'''),
    Answer("last_layer_state_only", CELL, correct=False,
           why="keeps only the last row of the final state, h_n[-1:] (the top layer's forward direction), "
               "as classification code often does: wrong for several layers and bidirectional layers",
           source='''
def run_packed(rnn, embedded, lengths):
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_outputs, state = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    if isinstance(state, tuple):
        return outputs, tuple(s[-1:] for s in state)
    return outputs, state[-1:]
'''),
    Answer("explicit_zero_state_one_layer", CELL, correct=False,
           why="passes an explicit zero initial state shaped for one layer and one direction, and a tensor "
               "where an LSTM wants the pair (h_0, c_0)",
           source='''
def run_packed(rnn, embedded, lengths):
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    h0 = torch.zeros(1, embedded.size(0), rnn.hidden_size, device=embedded.device)
    packed_outputs, h_n = rnn(packed, h0)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    return outputs, h_n
'''),
    Answer("sorts_by_hand_restores_h_not_c", CELL, correct=False,
           why="sorts by hand and restores the order of the outputs and h_n, but not of an LSTM's c_n",
           source='''
def run_packed(rnn, embedded, lengths):
    sorted_lengths, order = torch.sort(lengths, descending=True)
    restore = torch.argsort(order)
    packed = pack_padded_sequence(embedded[order], sorted_lengths.cpu(), batch_first=True)
    packed_outputs, state = rnn(packed)
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=embedded.size(1))
    if isinstance(state, tuple):
        state = (state[0][:, restore], state[1])
    else:
        state = state[:, restore]
    return outputs[restore], state
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

_LSTM_CELL = '''
def lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh):
    h, c = state
    gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_next = torch.sigmoid(o) * torch.tanh(c_next)
    return h_next, c_next
'''


def _lstm_cell(old: str, new: str) -> str:
    """The reference-like lstm_cell above with one line changed."""
    assert old in _LSTM_CELL, old
    return _LSTM_CELL.replace(old, new)


ANSWERS += [
    # ------------------------------------------------------------------ lstm_cell: mistakes
    Answer("gate_order_ifog", LSTM_CELL, correct=False,
           why="splits the gates in the order input, forget, output, candidate (as many papers write the "
               "equations), not PyTorch's input, forget, candidate, output",
           source=_lstm_cell("i, f, g, o = gates.chunk(4, dim=1)", "i, f, o, g = gates.chunk(4, dim=1)")),
    Answer("sigmoid_on_candidate", LSTM_CELL, correct=False,
           why="a sigmoid where the cell candidate needs a tanh: the cell can only ever grow",
           source=_lstm_cell("torch.sigmoid(i) * torch.tanh(g)", "torch.sigmoid(i) * torch.sigmoid(g)")),
    Answer("no_tanh_on_new_cell", LSTM_CELL, correct=False,
           why="h = o * c: the new cell state reaches h without its tanh",
           source=_lstm_cell("h_next = torch.sigmoid(o) * torch.tanh(c_next)", "h_next = torch.sigmoid(o) * c_next")),
    Answer("drops_bias_hh", LSTM_CELL, correct=False,
           why="adds bias_ih only: PyTorch's cells have two biases, and both count",
           source=_lstm_cell("x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh", "x @ weight_ih.T + bias_ih + h @ weight_hh.T")),
    Answer("tanh_on_old_cell", LSTM_CELL, correct=False,
           why="h from the previous cell state: o * tanh(c) instead of o * tanh(c_next)",
           source=_lstm_cell("h_next = torch.sigmoid(o) * torch.tanh(c_next)", "h_next = torch.sigmoid(o) * torch.tanh(c)")),
    Answer("returns_c_then_h", LSTM_CELL, correct=False,
           why="returns the pair in the order (c, h)",
           source=_lstm_cell("return h_next, c_next", "return c_next, h_next")),
    Answer("coupled_forget_and_input", LSTM_CELL, correct=False,
           why="c = f * c + (1 - f) * g: couples the input gate to the forget gate, as a GRU does; "
               "nn.LSTMCell has a separate input gate",
           source=_lstm_cell("torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)",
                             "torch.sigmoid(f) * c + (1 - torch.sigmoid(f)) * torch.tanh(g)")),
    Answer("weights_not_transposed", LSTM_CELL, correct=False,
           why="x @ weight_ih without the transpose: PyTorch stores weights as [out, in]",
           source=_lstm_cell("x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh", "x @ weight_ih + bias_ih + h @ weight_hh + bias_hh")),
    Answer("chunks_along_batch", LSTM_CELL, correct=False,
           why="gates.chunk(4) splits along dimension 0, the batch, not the gates",
           source=_lstm_cell("i, f, g, o = gates.chunk(4, dim=1)", "i, f, g, o = gates.chunk(4)")),
    Answer("updates_cell_in_place", LSTM_CELL, correct=False,
           why="updates the caller's c in place (c.mul_(f).add_(i * g)): right values, but the caller's state "
               "changes, and autograd refuses in-place changes to a tensor that needs a gradient",
           source='''
def lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh):
    h, c = state
    gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c.mul_(torch.sigmoid(f)).add_(torch.sigmoid(i) * torch.tanh(g))
    return torch.sigmoid(o) * torch.tanh(c), c
'''),
    Answer("computes_with_data", LSTM_CELL, correct=False,
           why="multiplies by weight_ih.data and weight_hh.data (an old PyTorch habit): right values, but no "
               "gradient reaches the weights",
           source=_lstm_cell("x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh",
                             "x @ weight_ih.data.T + bias_ih + h @ weight_hh.data.T + bias_hh")),
    # ------------------------------------------------------------------ lstm_cell: other correct ways
    Answer("linear_then_split_by_size", LSTM_CELL, correct=True,
           why="F.linear for each product, the gates sliced by hand with H = h.size(1)",
           source='''
def lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh):
    h, c = state
    H = h.size(1)
    gates = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)
    i = torch.sigmoid(gates[:, :H])
    f = torch.sigmoid(gates[:, H : 2 * H])
    g = torch.tanh(gates[:, 2 * H : 3 * H])
    o = torch.sigmoid(gates[:, 3 * H :])
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next
'''),
    Answer("one_product_on_concatenation", LSTM_CELL, correct=True,
           why="one matrix product of [x, h] with [weight_ih, weight_hh], gates split with torch.split",
           source='''
def lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh):
    h, c = state
    weight = torch.cat([weight_ih, weight_hh], dim=1)
    gates = torch.addmm(bias_ih + bias_hh, torch.cat([x, h], dim=1), weight.t())
    i, f, g, o = torch.split(gates, h.size(1), dim=1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_next), c_next
'''),
]
