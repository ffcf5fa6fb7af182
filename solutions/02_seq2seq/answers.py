"""Other answers to the seq2seq exercises: realistic mistakes (each must lose points) and other correct ways.

Graded by tests/test_answers.py through the real autograder; the demo and the benchmark build
submissions from them. `cell` is the grade id of the solution cell the answer fills; the source is the
whole cell (for `Seq2Seq`, the whole class).
"""

from grader.course.answers import Answer

# A correct Seq2Seq, pieced together by the wrong variants below with one part changed.
_INIT = '''
class Seq2Seq(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, pad_idx=0):
        super().__init__()
        self.pad_idx = pad_idx
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.encoder = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.decoder = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)
'''
_ENCODE = '''
    def encode(self, src, src_lengths):
        packed = pack_padded_sequence(self.embedding(src), src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.encoder(packed)
        return hidden
'''
_DECODE_STEP = '''
    def decode_step(self, prev_tokens, hidden):
        output, hidden = self.decoder(self.embedding(prev_tokens).unsqueeze(1), hidden)
        return self.out(output.squeeze(1)), hidden
'''
_FORWARD = '''
    def forward(self, src, src_lengths, decoder_inputs):
        outputs, _ = self.decoder(self.embedding(decoder_inputs), self.encode(src, src_lengths))
        return self.out(outputs)
'''


def _model(init=_INIT, encode=_ENCODE, decode_step=_DECODE_STEP, forward=_FORWARD) -> str:
    return init.strip("\n") + "\n" + encode.rstrip() + "\n" + decode_step.rstrip() + "\n" + forward.rstrip() + "\n"


ANSWERS = [
    # ------------------------------------------------------------------ make_decoder_inputs
    Answer("keeps_last_token", "make_decoder_inputs", correct=False,
           why="prepends BOS but forgets to drop the last column: [B, T + 1]",
           source='''
def make_decoder_inputs(targets, bos_idx):
    bos = torch.full((targets.size(0), 1), bos_idx, dtype=targets.dtype)
    return torch.cat([bos, targets], dim=1)
'''),
    Answer("shifts_the_wrong_way", "make_decoder_inputs", correct=False,
           why="shifts left: drops the first target and puts BOS at the end",
           source='''
def make_decoder_inputs(targets, bos_idx):
    bos = torch.full((targets.size(0), 1), bos_idx, dtype=targets.dtype)
    return torch.cat([targets[:, 1:], bos], dim=1)
'''),
    Answer("shifts_in_place", "make_decoder_inputs", correct=False,
           why="right values, but writes them into `targets`, so the loss then compares against the inputs",
           source='''
def make_decoder_inputs(targets, bos_idx):
    targets[:, 1:] = targets[:, :-1].clone()
    targets[:, 0] = bos_idx
    return targets
'''),
    Answer("float_bos_column", "make_decoder_inputs", correct=False,
           why="builds the BOS column with torch.ones * bos_idx: float, so the whole result is float",
           source='''
def make_decoder_inputs(targets, bos_idx):
    bos = torch.ones(targets.size(0), 1) * bos_idx
    return torch.cat([bos, targets[:, :-1]], dim=1)
'''),
    Answer("pads_left_with_bos", "make_decoder_inputs", correct=True,
           why="F.pad adds the BOS column on the left of targets[:, :-1]",
           source='''
def make_decoder_inputs(targets, bos_idx):
    return F.pad(targets[:, :-1], (1, 0), value=bos_idx)
'''),
    Answer("rolls_then_overwrites", "make_decoder_inputs", correct=True,
           why="torch.roll returns a new tensor; its wrapped-around first column is overwritten with BOS",
           source='''
def make_decoder_inputs(targets, bos_idx):
    inputs = torch.roll(targets, shifts=1, dims=1)
    inputs[:, 0] = bos_idx
    return inputs
'''),
    # ------------------------------------------------------------------ Seq2Seq
    Answer("encoder_reads_padding", "Seq2Seq", correct=False,
           why="no packing: the encoder runs over the PAD steps, so its state depends on the padding",
           source=_model(encode='''
    def encode(self, src, src_lengths):
        _, hidden = self.encoder(self.embedding(src))
        return hidden
''')),
    Answer("forward_from_zero_state", "Seq2Seq", correct=False,
           why="forward never passes the encoder's state to the decoder: it starts from zeros",
           source=_model(forward='''
    def forward(self, src, src_lengths, decoder_inputs):
        self.encode(src, src_lengths)
        outputs, _ = self.decoder(self.embedding(decoder_inputs))
        return self.out(outputs)
''')),
    Answer("forward_feeds_own_predictions", "Seq2Seq", correct=False,
           why="no teacher forcing: forward feeds back its own argmax and uses only the first decoder input",
           source=_model(forward='''
    def forward(self, src, src_lengths, decoder_inputs):
        hidden = self.encode(src, src_lengths)
        prev = decoder_inputs[:, 0]
        steps = []
        for _ in range(decoder_inputs.size(1)):
            logits, hidden = self.decode_step(prev, hidden)
            steps.append(logits)
            prev = logits.argmax(dim=-1)
        return torch.stack(steps, dim=1)
''')),
    Answer("decode_step_returns_probabilities", "Seq2Seq", correct=False,
           why="decode_step applies softmax, forward does not: the two disagree",
           source=_model(decode_step='''
    def decode_step(self, prev_tokens, hidden):
        output, hidden = self.decoder(self.embedding(prev_tokens).unsqueeze(1), hidden)
        return torch.softmax(self.out(output.squeeze(1)), dim=-1), hidden
''')),
    Answer("recurrent_layers_in_a_list", "Seq2Seq", correct=False,
           why="keeps the GRUs in a plain Python list: not registered, so not trained, saved or moved to the GPU",
           source='''
class Seq2Seq(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, pad_idx=0):
        super().__init__()
        self.pad_idx = pad_idx
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.rnns = [nn.GRU(embed_dim, hidden_dim, batch_first=True), nn.GRU(embed_dim, hidden_dim, batch_first=True)]
        self.out = nn.Linear(hidden_dim, vocab_size)

    def encode(self, src, src_lengths):
        packed = pack_padded_sequence(self.embedding(src), src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.rnns[0](packed)
        return hidden

    def decode_step(self, prev_tokens, hidden):
        output, hidden = self.rnns[1](self.embedding(prev_tokens).unsqueeze(1), hidden)
        return self.out(output.squeeze(1)), hidden

    def forward(self, src, src_lengths, decoder_inputs):
        outputs, _ = self.rnns[1](self.embedding(decoder_inputs), self.encode(src, src_lengths))
        return self.out(outputs)
'''),
    Answer("sorted_lengths_default_pad", "Seq2Seq", correct=False,
           why="packs with the default enforce_sorted=True and stores pad_idx = 0 whatever is passed: "
               "right for sorted lengths and the default pad_idx only",
           source=_model(init=_INIT.replace("self.pad_idx = pad_idx", "self.pad_idx = 0")
                         .replace("padding_idx=pad_idx", "padding_idx=0"),
                         encode='''
    def encode(self, src, src_lengths):
        _, hidden = self.encoder(pack_padded_sequence(self.embedding(src), src_lengths, batch_first=True))
        return hidden
''')),
    Answer("visible_tests_only", "Seq2Seq", correct=False,
           why="ignores the pad_idx argument and keeps 0, the default: exactly what the visible tests try, "
               "nothing more",
           source=_model(init=_INIT.replace("self.pad_idx = pad_idx", "self.pad_idx = 0")
                         .replace("padding_idx=pad_idx", "padding_idx=0"))),
    Answer("lengths_from_nonzero_tokens", "Seq2Seq", correct=False,
           why="ignores src_lengths and counts the tokens that are not 0: wrong as soon as pad_idx is not 0",
           source=_model(encode='''
    def encode(self, src, src_lengths):
        lengths = (src != 0).sum(dim=1)
        packed = pack_padded_sequence(self.embedding(src), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.encoder(packed)
        return hidden
''')),
    Answer("gru_cell_decoder", "Seq2Seq", correct=True,
           why="separate embeddings, an nn.GRUCell decoder and a Python loop in forward; states are [B, H]",
           source='''
class Seq2Seq(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, pad_idx=0):
        super().__init__()
        self.pad_idx = pad_idx
        self.src_embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.tgt_embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.encoder = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.cell = nn.GRUCell(embed_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def encode(self, src, src_lengths):
        packed = pack_padded_sequence(self.src_embedding(src), src_lengths.to("cpu"), batch_first=True,
                                      enforce_sorted=False)
        return self.encoder(packed)[1].squeeze(0)

    def decode_step(self, prev_tokens, hidden):
        hidden = self.cell(self.tgt_embedding(prev_tokens), hidden)
        return self.out(hidden), hidden

    def forward(self, src, src_lengths, decoder_inputs):
        hidden = self.encode(src, src_lengths)
        logits = []
        for t in range(decoder_inputs.size(1)):
            step_logits, hidden = self.decode_step(decoder_inputs[:, t], hidden)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)
'''),
    Answer("encodes_each_source_alone", "Seq2Seq", correct=True,
           why="no packing, but each source is cut to its length and encoded on its own: slow, and right",
           source=_model(encode='''
    def encode(self, src, src_lengths):
        states = []
        for i in range(src.size(0)):
            n = int(src_lengths[i])
            _, h = self.encoder(self.embedding(src[i : i + 1, :n]))
            states.append(h)
        return torch.cat(states, dim=1)
''')),
    # ------------------------------------------------------------------ sequence_loss
    Answer("averages_over_padding", "sequence_loss", correct=False,
           why="plain cross-entropy over every position, PAD included",
           source='''
def sequence_loss(logits, targets, pad_idx):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
'''),
    Answer("masked_mean_over_all_positions", "sequence_loss", correct=False,
           why="zeroes the PAD losses, then divides by all B * T positions instead of the real tokens",
           source='''
def sequence_loss(logits, targets, pad_idx):
    losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    mask = (targets != pad_idx).float()
    return (losses * mask).mean()
'''),
    Answer("mean_of_sequence_means", "sequence_loss", correct=False,
           why="averages within each sequence, then over sequences: short sequences weigh more per token",
           source='''
def sequence_loss(logits, targets, pad_idx):
    losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    mask = (targets != pad_idx).float()
    return ((losses * mask).sum(dim=1) / mask.sum(dim=1)).mean()
'''),
    Answer("ignore_index_hardcoded_zero", "sequence_loss", correct=False,
           why="ignore_index=0 out of habit instead of pad_idx",
           source='''
def sequence_loss(logits, targets, pad_idx):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=0)
'''),
    Answer("hand_written_masked_loss", "sequence_loss", correct=True,
           why="log_softmax, gather the target's log-probability, mask, divide by the number of real tokens",
           source='''
def sequence_loss(logits, targets, pad_idx):
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = targets != pad_idx
    return -(picked * mask).sum() / mask.sum()
'''),
    # ------------------------------------------------------------------ greedy_decode
    Answer("includes_bos", "greedy_decode", correct=False,
           why="returns the BOS column in front of the generated tokens",
           source='''
def greedy_decode(model, src, src_lengths, bos_idx, eos_idx, max_len):
    hidden = model.encode(src, src_lengths)
    prev = torch.full((src.size(0),), bos_idx, dtype=torch.long, device=src.device)
    tokens = [prev]
    for _ in range(max_len):
        logits, hidden = model.decode_step(prev, hidden)
        prev = logits.argmax(dim=-1)
        tokens.append(prev)
        if bool((torch.stack(tokens, dim=1) == eos_idx).any(dim=1).all()):
            break
    return torch.stack(tokens, dim=1)
'''),
    Answer("resets_hidden_each_step", "greedy_decode", correct=False,
           why="throws away the new hidden state: every step starts again from the encoder's state",
           source='''
def greedy_decode(model, src, src_lengths, bos_idx, eos_idx, max_len):
    hidden = model.encode(src, src_lengths)
    prev = torch.full((src.size(0),), bos_idx, dtype=torch.long, device=src.device)
    tokens = []
    for _ in range(max_len):
        logits, _ = model.decode_step(prev, hidden)
        prev = logits.argmax(dim=-1)
        tokens.append(prev)
    return torch.stack(tokens, dim=1)
'''),
    Answer("feeds_bos_every_step", "greedy_decode", correct=False,
           why="stores the argmax under a new name and keeps feeding BOS",
           source='''
def greedy_decode(model, src, src_lengths, bos_idx, eos_idx, max_len):
    hidden = model.encode(src, src_lengths)
    prev = torch.full((src.size(0),), bos_idx, dtype=torch.long, device=src.device)
    tokens = []
    for _ in range(max_len):
        logits, hidden = model.decode_step(prev, hidden)
        next_tokens = logits.argmax(dim=-1)
        tokens.append(next_tokens)
    return torch.stack(tokens, dim=1)
'''),
    Answer("one_step_too_many", "greedy_decode", correct=False,
           why="counts BOS as one of the max_len tokens and loops max_len + 1 times",
           source='''
def greedy_decode(model, src, src_lengths, bos_idx, eos_idx, max_len):
    hidden = model.encode(src, src_lengths)
    prev = torch.full((src.size(0),), bos_idx, dtype=torch.long, device=src.device)
    tokens = []
    for _ in range(max_len + 1):
        logits, hidden = model.decode_step(prev, hidden)
        prev = logits.argmax(dim=-1)
        tokens.append(prev)
        if bool((torch.stack(tokens, dim=1) == eos_idx).any(dim=1).all()):
            break
    return torch.stack(tokens, dim=1)
'''),
    Answer("stops_when_any_row_ends", "greedy_decode", correct=False,
           why="breaks as soon as one row produces EOS, cutting the others short",
           source='''
def greedy_decode(model, src, src_lengths, bos_idx, eos_idx, max_len):
    hidden = model.encode(src, src_lengths)
    prev = torch.full((src.size(0),), bos_idx, dtype=torch.long, device=src.device)
    tokens = []
    for _ in range(max_len):
        logits, hidden = model.decode_step(prev, hidden)
        prev = logits.argmax(dim=-1)
        tokens.append(prev)
        if bool((prev == eos_idx).any()):
            break
    return torch.stack(tokens, dim=1)
'''),
    Answer("uses_notebook_bos_eos", "greedy_decode", correct=False,
           why="starts from the notebook's BOS and stops on its EOS, ignoring bos_idx and eos_idx",
           source='''
def greedy_decode(model, src, src_lengths, bos_idx, eos_idx, max_len):
    hidden = model.encode(src, src_lengths)
    prev = torch.full((src.size(0),), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
    tokens = []
    for _ in range(max_len):
        logits, hidden = model.decode_step(prev, hidden)
        prev = logits.argmax(dim=-1)
        tokens.append(prev)
        done |= prev == EOS
        if bool(done.all()):
            break
    return torch.stack(tokens, dim=1)
'''),
    Answer("device_from_model_parameters", "greedy_decode", correct=False,
           why="asks the model for its parameters' device and puts it in eval mode: "
               "fails on anything that only has encode and decode_step",
           source='''
def greedy_decode(model, src, src_lengths, bos_idx, eos_idx, max_len):
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        hidden = model.encode(src.to(device), src_lengths)
        prev = torch.full((src.size(0),), bos_idx, dtype=torch.long, device=device)
        tokens = []
        for _ in range(max_len):
            logits, hidden = model.decode_step(prev, hidden)
            prev = logits.argmax(dim=-1)
            tokens.append(prev)
    return torch.stack(tokens, dim=1)
'''),
    Answer("pads_after_eos", "greedy_decode", correct=True,
           why="preallocates [B, max_len] of PAD, writes PAD after each row's EOS, stops once all rows ended",
           source='''
def greedy_decode(model, src, src_lengths, bos_idx, eos_idx, max_len):
    B = src.size(0)
    out = torch.zeros(B, max_len, dtype=torch.long, device=src.device)
    ended = torch.zeros(B, dtype=torch.bool, device=src.device)
    prev = torch.full((B,), bos_idx, dtype=torch.long, device=src.device)
    hidden = model.encode(src, src_lengths)
    steps = 0
    while steps < max_len and not bool(ended.all()):
        logits, hidden = model.decode_step(prev, hidden)
        prev = logits.argmax(dim=-1)
        out[:, steps] = torch.where(ended, torch.zeros_like(prev), prev)
        ended = ended | (prev == eos_idx)
        steps += 1
    return out[:, :steps]
'''),
]
