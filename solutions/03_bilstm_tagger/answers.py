"""Other answers to `BiLSTMTagger`, `token_accuracy` and `masked_cross_entropy`: realistic mistakes
(each must lose points on its own exercise) and other correct ways (each must get full marks).

Graded by tests/test_answers.py through the real autograder; the demo and the benchmark build
submissions from them. `cell` is the grade id of the solution cell the answer fills, and `source`
is that cell's whole content.
"""

from grader.course.answers import Answer

TAGGER, ACCURACY, LOSS = "BiLSTMTagger", "token_accuracy", "masked_cross_entropy"


def tagger(init: str, forward: str, before: str = "") -> str:
    """A whole `BiLSTMTagger` cell: the class statement around the given bodies (8-space indented)."""
    return before + '''
class BiLSTMTagger(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, num_tags, dropout=0.1, pad_idx=0):
        super().__init__()
''' + init.strip("\n") + '''

    def forward(self, tokens, lengths):
''' + forward.strip("\n") + "\n"


# The layers most answers share.
LAYERS = '''
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.classify = nn.Linear(2 * hidden_dim, num_tags)
'''

ANSWERS = [
    # ---------------------------------------------------------------- BiLSTMTagger: mistakes
    Answer("unidirectional", TAGGER, correct=False,
           why="a left-to-right LSTM: the logits never see the right context",
           source=tagger('''
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.classify = nn.Linear(hidden_dim, num_tags)
''', '''
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=tokens.size(1))
        return self.classify(self.dropout(outputs))
''')),
    Answer("reverses_backward_half", TAGGER, correct=False,
           why="believes the backward half of the outputs is stored back to front and flips it in time: "
               "each position gets another position's right context (padding, for short sequences)",
           source=tagger(LAYERS, '''
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=tokens.size(1))
        forward_half, backward_half = outputs.chunk(2, dim=-1)
        outputs = torch.cat([forward_half, backward_half.flip(1)], dim=-1)
        return self.classify(self.dropout(outputs))
''')),
    Answer("flips_the_padded_batch", TAGGER, correct=False,
           why="a hand-made backward direction: a second LSTM over torch.flip(tokens), which puts the "
               "padding first, so every real position depends on the padding",
           source=tagger('''
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.dropout = nn.Dropout(dropout)
        self.forward_lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.backward_lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.classify = nn.Linear(2 * hidden_dim, num_tags)
''', '''
        embedded = self.dropout(self.embedding(tokens))
        forward_out, _ = self.forward_lstm(embedded)
        backward_out, _ = self.backward_lstm(embedded.flip(1))
        outputs = torch.cat([forward_out, backward_out.flip(1)], dim=-1)
        return self.classify(self.dropout(outputs))
''')),
    Answer("uses_only_h_n", TAGGER, correct=False,
           why="classifies every position from the final states h_n (a sentence summary): all positions get the same logits",
           source=tagger(LAYERS, '''
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        summary = torch.cat([h_n[-2], h_n[-1]], dim=-1)
        logits = self.classify(self.dropout(summary))
        return logits.unsqueeze(1).expand(-1, tokens.size(1), -1)
''')),
    Answer("no_packing", TAGGER, correct=False,
           why="runs the bidirectional LSTM over the padded batch: the backward direction reads the padding first",
           source=tagger(LAYERS, '''
        outputs, _ = self.lstm(self.dropout(self.embedding(tokens)))
        return self.classify(self.dropout(outputs))
''')),
    Answer("sorts_lengths_not_batch", TAGGER, correct=False,
           why="sorts the lengths for enforce_sorted=True but not the rows: sequences get each other's lengths",
           source=tagger(LAYERS, '''
        embedded = self.dropout(self.embedding(tokens))
        sorted_lengths, _ = torch.sort(lengths, descending=True)
        packed = pack_padded_sequence(embedded, sorted_lengths.cpu(), batch_first=True)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=tokens.size(1))
        return self.classify(self.dropout(outputs))
''')),
    Answer("pads_to_longest_only", TAGGER, correct=False,
           why="pad_packed_sequence without total_length: logits as wide as the longest sequence, not T",
           source=tagger(LAYERS, '''
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True)
        return self.classify(self.dropout(outputs))
''')),
    Answer("dropout_always_on", TAGGER, correct=False,
           why="F.dropout(..., training=True): dropout stays on in eval(), so predictions are random",
           source=tagger('''
        self.p = dropout
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.classify = nn.Linear(2 * hidden_dim, num_tags)
''', '''
        embedded = F.dropout(self.embedding(tokens), self.p, training=True)
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=tokens.size(1))
        return self.classify(F.dropout(outputs, self.p, training=True))
''')),
    Answer("dropout_inside_one_layer_lstm", TAGGER, correct=False,
           why="passes dropout to a one-layer nn.LSTM, where it does nothing (PyTorch warns): the model has no dropout",
           source=tagger('''
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True, bidirectional=True, dropout=dropout)
        self.classify = nn.Linear(2 * hidden_dim, num_tags)
''', '''
        packed = pack_padded_sequence(self.embedding(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=tokens.size(1))
        return self.classify(outputs)
''')),
    Answer("sorted_full_width_no_dropout", TAGGER, correct=False,
           why="lengths sorted and the longest as long as T, no dropout: right for such batches only",
           source=tagger('''
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.classify = nn.Linear(2 * hidden_dim, num_tags)
''', '''
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True)
        return self.classify(outputs)
''')),
    Answer("visible_tests_only", TAGGER, correct=False,
           why="packed, full width, in any order, but ignores the dropout argument: exactly what the visible "
               "tests try (eval() mode only), nothing more",
           source=tagger('''
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.classify = nn.Linear(2 * hidden_dim, num_tags)
''', '''
        packed = pack_padded_sequence(self.embedding(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=tokens.size(1))
        return self.classify(outputs)
''')),
    Answer("lengths_from_nonzero_tokens", TAGGER, correct=False,
           why="ignores `lengths` and counts the tokens that are not PAD: wrong when the padding holds "
               "anything else",
           source=tagger(LAYERS, '''
        lengths = (tokens != 0).sum(dim=1)
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=tokens.size(1))
        return self.classify(self.dropout(outputs))
''')),
    Answer("cleans_padding_in_place", TAGGER, correct=False,
           why="writes PAD over the caller's tokens after each sequence's end (masked_fill_): the right logits, "
               "but the caller's batch changes",
           source=tagger(LAYERS, '''
        mask = torch.arange(tokens.size(1), device=tokens.device)[None, :] < lengths.to(tokens.device)[:, None]
        tokens.masked_fill_(~mask, 0)
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=tokens.size(1))
        return self.classify(self.dropout(outputs))
''')),
    # ---------------------------------------------------------------- BiLSTMTagger: other correct ways
    Answer("two_layer_lstm", TAGGER, correct=True,
           why="two stacked bidirectional layers with dropout between them, and a dropout module around them",
           source=tagger('''
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, num_layers=2, dropout=dropout, batch_first=True, bidirectional=True)
        self.classify = nn.Linear(2 * hidden_dim, num_tags)
''', '''
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=tokens.size(1))
        return self.classify(self.dropout(outputs))
''')),
    Answer("sorts_by_hand", TAGGER, correct=True,
           why="sorts the batch by length itself, packs with enforce_sorted=True, unsorts the outputs, "
               "and pads the width with F.pad instead of total_length",
           source=tagger('''
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.drop = nn.Dropout(p=dropout)
        self.bilstm = nn.LSTM(input_size=embed_dim, hidden_size=hidden_dim, bidirectional=True)
        self.out = nn.Linear(2 * hidden_dim, num_tags)
''', '''
        B, T = tokens.shape
        sorted_lengths, order = torch.sort(lengths, descending=True)
        restore = torch.argsort(order)
        embedded = self.drop(self.embedding(tokens[order.to(tokens.device)]))
        packed = pack_padded_sequence(embedded.transpose(0, 1), sorted_lengths.tolist())  # time-major
        outputs, _ = pad_packed_sequence(self.bilstm(packed)[0])
        outputs = F.pad(outputs, (0, 0, 0, 0, 0, T - outputs.size(0))).transpose(0, 1)
        return self.out(self.drop(outputs[restore.to(outputs.device)]))
''')),
    # ---------------------------------------------------------------- token_accuracy
    Answer("accuracy_over_all_positions", ACCURACY, correct=False,
           why="ignores the mask: padding positions count (and padding tag 0 is often 'right')",
           source='''
def token_accuracy(logits, targets, mask):
    return (logits.argmax(dim=-1) == targets).float().mean()
'''),
    Answer("accuracy_mask_from_targets", ACCURACY, correct=False,
           why="builds its own mask from targets != 0, treating tag 0 as padding",
           source='''
def token_accuracy(logits, targets, mask):
    real = targets != 0
    return (logits.argmax(dim=-1) == targets)[real].float().mean()
'''),
    Answer("accuracy_divides_by_all_positions", ACCURACY, correct=False,
           why="counts the correct masked positions but divides by B * T",
           source='''
def token_accuracy(logits, targets, mask):
    correct = (logits.argmax(dim=-1) == targets) & mask
    return correct.sum() / targets.numel()
'''),
    Answer("accuracy_returns_python_float", ACCURACY, correct=False,
           why="returns a Python float (.item()) instead of a 0-dim tensor",
           source='''
def token_accuracy(logits, targets, mask):
    correct = (logits.argmax(dim=-1) == targets) & mask
    return correct.sum().item() / mask.sum().item()
'''),
    Answer("accuracy_by_boolean_indexing", ACCURACY, correct=True,
           why="selects the masked positions first, then averages",
           source='''
def token_accuracy(logits, targets, mask):
    predictions = logits.argmax(dim=-1)[mask]
    return (predictions == targets[mask]).float().mean()
'''),
    # ---------------------------------------------------------------- masked_cross_entropy
    Answer("loss_ignore_index_zero", LOSS, correct=False,
           why="cross_entropy with ignore_index=0 instead of the mask: tag 0 is a real tag, and it is skipped",
           source='''
def masked_cross_entropy(logits, targets, mask):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=0)
'''),
    Answer("loss_over_all_positions", LOSS, correct=False,
           why="ignores the mask: the padding's targets are learned too",
           source='''
def masked_cross_entropy(logits, targets, mask):
    return F.cross_entropy(logits.transpose(1, 2), targets)
'''),
    Answer("loss_mean_over_whole_batch", LOSS, correct=False,
           why="zeroes the padding's losses, then takes the mean over all B * T positions",
           source='''
def masked_cross_entropy(logits, targets, mask):
    losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return (losses * mask).mean()
'''),
    Answer("loss_summed", LOSS, correct=False,
           why="the sum over the masked positions, not the mean",
           source='''
def masked_cross_entropy(logits, targets, mask):
    return F.cross_entropy(logits[mask], targets[mask], reduction="sum")
'''),
    Answer("loss_loses_the_gradient", LOSS, correct=False,
           why="computes the right number, but rebuilds it with torch.tensor(...item()): nothing to backpropagate",
           source='''
def masked_cross_entropy(logits, targets, mask):
    loss = F.cross_entropy(logits[mask], targets[mask])
    return torch.tensor(loss.item())
'''),
    Answer("loss_marks_padding_in_place", LOSS, correct=False,
           why="writes -100 into the caller's targets outside the mask, for ignore_index: the right value, "
               "but the targets the caller scores next have changed",
           source='''
def masked_cross_entropy(logits, targets, mask):
    targets[~mask] = -100
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
'''),
    Answer("hand_written_masked_loss", LOSS, correct=True,
           why="log_softmax and gather at every position, then a mean weighted by the mask",
           source='''
def masked_cross_entropy(logits, targets, mask):
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    weights = mask.to(picked.dtype)
    return -(picked * weights).sum() / weights.sum()
'''),
    Answer("loss_reduction_none", LOSS, correct=True,
           why="per-position losses with reduction='none', the padding selected away by the mask",
           source='''
def masked_cross_entropy(logits, targets, mask):
    losses = F.cross_entropy(logits.permute(0, 2, 1), targets, reduction="none")
    return losses[mask].mean()
'''),
]
