"""Other answers to the attention exercises: realistic mistakes (each must lose points) and other correct ways.

Graded by tests/test_answers.py through the real autograder; the demo and the benchmark build
submissions from them. `cell` is the grade id of the solution cell the answer fills; the source is the
whole cell (for a class, the whole class).
"""

from grader.course.answers import Answer, reference
from grader.course.layout import SERIES

# The reference solution, cut into its parts: each variant below changes one part and keeps the rest as the
# reference (and the released skeleton: signatures, docstrings) has it, as a student's answer would.
_REFERENCE = reference(next(nb for nb in SERIES if nb.assignment == "04_attention"))


def _parts(code: str) -> list[str]:
    """A class's source cut before each method after the first: [class, docstring and __init__, the next method, ...]."""
    head, *methods = code.split("\n\n    def ")
    first, rest = head + "\n\n    def " + methods[0], methods[1:]
    return [first.rstrip() + "\n"] + ["\n    def " + m.rstrip() + "\n" for m in rest]


_ATTENTION_INIT, _ATTENTION_FORWARD = _parts(_REFERENCE["AdditiveAttention"])


def _attention(init=_ATTENTION_INIT, forward=_ATTENTION_FORWARD) -> str:
    return init.strip("\n") + "\n" + forward.rstrip() + "\n"


_INIT, _ENCODE, _DECODE_STEP, _FORWARD = _parts(_REFERENCE["AttentionSeq2Seq"])


def _model(init=_INIT, encode=_ENCODE, decode_step=_DECODE_STEP, forward=_FORWARD) -> str:
    return init.strip("\n") + "\n" + encode.rstrip() + "\n" + decode_step.rstrip() + "\n" + forward.rstrip() + "\n"


ANSWERS = [
    # ------------------------------------------------------------------ masked_softmax
    Answer("mask_after_softmax", "masked_softmax", correct=False,
           why="softmax over every position, then multiplied by the mask: zeros at padding, but rows sum to less than 1",
           source='''
def masked_softmax(scores, mask):
    return torch.softmax(scores, dim=-1) * mask
'''),
    Answer("mask_after_softmax_renormalised", "masked_softmax", correct=False,
           why="masks after the softmax and divides by the row sum: right while the padding's scores are small, "
               "0 / 0 = nan when they dominate (the real exponentials underflow first)",
           source='''
def masked_softmax(scores, mask):
    weights = torch.softmax(scores, dim=-1) * mask
    return weights / weights.sum(dim=-1, keepdim=True)
'''),
    Answer("adds_mask_times_inf", "masked_softmax", correct=False,
           why="reaches -inf by arithmetic: (~mask) * -inf is 0 * -inf = nan at every real position",
           source='''
def masked_softmax(scores, mask):
    return torch.softmax(scores + (~mask).float() * float("-inf"), dim=-1)
'''),
    Answer("softmax_over_the_batch", "masked_softmax", correct=False,
           why="the softmax runs over dim 0, the batch, instead of over the source positions",
           source='''
def masked_softmax(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=0)
'''),
    Answer("mask_polarity_flipped", "masked_softmax", correct=False,
           why="treats True as padding (nn.MultiheadAttention's key_padding_mask convention): keeps only the padding",
           source='''
def masked_softmax(scores, mask):
    return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
'''),
    Answer("zeroes_the_padding_scores", "masked_softmax", correct=False,
           why="multiplies the scores by the mask: a score of 0 still gets exp(0) = 1 of the weight",
           source='''
def masked_softmax(scores, mask):
    return torch.softmax(scores * mask, dim=-1)
'''),
    Answer("exp_without_the_max", "masked_softmax", correct=False,
           why="exp and divide by hand without subtracting the maximum: exp(1000) is inf, and inf / inf is nan",
           source='''
def masked_softmax(scores, mask):
    exps = torch.exp(scores) * mask
    return exps / exps.sum(dim=-1, keepdim=True)
'''),
    Answer("fills_the_scores_in_place", "masked_softmax", correct=False,
           why="right weights, but masked_fill_ writes -inf into the caller's scores",
           source='''
def masked_softmax(scores, mask):
    scores.masked_fill_(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)
'''),
    Answer("large_negative_fill", "masked_softmax", correct=True,
           why="masked_fill with -1e9 instead of -inf: exp(-1e9 - max) underflows to exactly 0.0",
           source='''
def masked_softmax(scores, mask):
    return F.softmax(scores.masked_fill(~mask, -1e9), dim=-1)
'''),
    Answer("where_then_softmax", "masked_softmax", correct=True,
           why="torch.where selects -inf at padding; the spec promises a real position in every row",
           source='''
def masked_softmax(scores, mask):
    return torch.where(mask, scores, torch.full_like(scores, float("-inf"))).softmax(dim=-1)
'''),
    Answer("adds_log_of_mask", "masked_softmax", correct=True,
           why="adds log(mask): log(1) = 0 at real positions and log(0) = -inf at padding, with no 0 * inf",
           source='''
def masked_softmax(scores, mask):
    return torch.softmax(scores + torch.log(mask.to(scores.dtype)), dim=-1)
'''),
    Answer("row_by_row", "masked_softmax", correct=True,
           why="a loop over the rows: the softmax of each row's real scores, written into zeros",
           source='''
def masked_softmax(scores, mask):
    weights = torch.zeros_like(scores)
    for b in range(scores.size(0)):
        weights[b, mask[b]] = torch.softmax(scores[b, mask[b]], dim=0)
    return weights
'''),
    # ------------------------------------------------------------------ AdditiveAttention
    Answer("ignores_the_mask", "AdditiveAttention", correct=False,
           why="a plain softmax over all the keys: padded positions get weight",
           source=_attention(forward='''
    def forward(self, query, keys, mask):
        scores = self.v(torch.tanh(self.query_proj(query).unsqueeze(1) + self.key_proj(keys))).squeeze(-1)
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights
''')),
    Answer("context_from_projected_keys", "AdditiveAttention", correct=False,
           why="averages key_proj(keys) instead of the keys: the context has attn_dim numbers, not key_dim",
           source=_attention(forward='''
    def forward(self, query, keys, mask):
        projected = self.key_proj(keys)
        scores = self.v(torch.tanh(self.query_proj(query).unsqueeze(1) + projected)).squeeze(-1)
        weights = masked_softmax(scores, mask)
        return torch.bmm(weights.unsqueeze(1), projected).squeeze(1), weights
''')),
    Answer("projections_with_bias", "AdditiveAttention", correct=False,
           why="nn.Linear's default bias=True: the layers have biases the spec leaves out",
           source=_attention(init='''
class AdditiveAttention(nn.Module):
    def __init__(self, query_dim, key_dim, attn_dim):
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim)
        self.key_proj = nn.Linear(key_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1)
''')),
    Answer("no_tanh", "AdditiveAttention", correct=False,
           why="leaves out the tanh: the score is linear, the query's share is the same for every key and "
               "cancels in the softmax",
           source=_attention(forward='''
    def forward(self, query, keys, mask):
        scores = self.v(self.query_proj(query).unsqueeze(1) + self.key_proj(keys)).squeeze(-1)
        weights = masked_softmax(scores, mask)
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights
''')),
    Answer("squeezes_every_dimension", "AdditiveAttention", correct=False,
           why="squeeze() without a dimension: with a single key the scores lose their source dimension too",
           source=_attention(forward='''
    def forward(self, query, keys, mask):
        scores = self.v(torch.tanh(self.query_proj(query).unsqueeze(1) + self.key_proj(keys))).squeeze()
        weights = masked_softmax(scores, mask)
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights
''')),
    Answer("one_linear_on_the_concatenation", "AdditiveAttention", correct=False,
           why="W [q; k] in one layer (the same function) but not the layers the spec names: query_proj and "
               "key_proj are missing",
           source='''
class AdditiveAttention(nn.Module):
    def __init__(self, query_dim, key_dim, attn_dim):
        super().__init__()
        self.proj = nn.Linear(query_dim + key_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, query, keys, mask):
        queries = query.unsqueeze(1).expand(-1, keys.size(1), -1)
        scores = self.v(torch.tanh(self.proj(torch.cat([queries, keys], dim=-1)))).squeeze(-1)
        weights = masked_softmax(scores, mask)
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights
'''),
    Answer("einsum", "AdditiveAttention", correct=True,
           why="the scores' last step and the weighted sum written with einsum",
           source=_attention(forward='''
    def forward(self, query, keys, mask):
        hidden = torch.tanh(self.query_proj(query)[:, None, :] + self.key_proj(keys))
        scores = torch.einsum("bsa,a->bs", hidden, self.v.weight[0])
        weights = masked_softmax(scores, mask)
        return torch.einsum("bs,bsd->bd", weights, keys), weights
''')),
    Answer("broadcast_sum_for_context", "AdditiveAttention", correct=True,
           why="the context as (weights[..., None] * keys).sum(1) instead of bmm; scores[..., 0] instead of squeeze",
           source=_attention(forward='''
    def forward(self, query, keys, mask):
        energy = torch.tanh(self.key_proj(keys) + self.query_proj(query).unsqueeze(1))
        weights = masked_softmax(self.v(energy)[..., 0], mask)
        context = (weights.unsqueeze(-1) * keys).sum(dim=1)
        return context, weights
''')),
    # ------------------------------------------------------------------ AttentionSeq2Seq
    Answer("attends_from_the_new_state", "AttentionSeq2Seq", correct=False,
           why="Luong's order inside Bahdanau's model: the GRU reads the token first and the new state is the "
               "query, so the weights depend on the token just read",
           source=_model(init=_INIT.replace("nn.GRU(embed_dim + hidden_dim, hidden_dim", "nn.GRU(embed_dim, hidden_dim")
                         .replace("nn.Linear(hidden_dim, vocab_size)", "nn.Linear(2 * hidden_dim, vocab_size)"),
                         decode_step='''
    def decode_step(self, prev_tokens, state, return_weights=False):
        hidden, encoder_outputs, mask = state
        output, hidden = self.decoder(self.embedding(prev_tokens).unsqueeze(1), hidden)
        context, weights = self.attention(hidden[-1], encoder_outputs, mask)
        logits = self.out(torch.cat([output.squeeze(1), context], dim=-1))
        state = (hidden, encoder_outputs, mask)
        return (logits, state, weights) if return_weights else (logits, state)
''')),
    Answer("decoder_ignores_the_context", "AttentionSeq2Seq", correct=False,
           why="the context only reaches the output layer: the decoder GRU reads the embedding alone",
           source=_model(init=_INIT.replace("nn.GRU(embed_dim + hidden_dim, hidden_dim", "nn.GRU(embed_dim, hidden_dim")
                         .replace("nn.Linear(hidden_dim, vocab_size)", "nn.Linear(2 * hidden_dim, vocab_size)"),
                         decode_step='''
    def decode_step(self, prev_tokens, state, return_weights=False):
        hidden, encoder_outputs, mask = state
        context, weights = self.attention(hidden[-1], encoder_outputs, mask)
        output, hidden = self.decoder(self.embedding(prev_tokens).unsqueeze(1), hidden)
        logits = self.out(torch.cat([output.squeeze(1), context], dim=-1))
        state = (hidden, encoder_outputs, mask)
        return (logits, state, weights) if return_weights else (logits, state)
''')),
    Answer("encoder_not_packed", "AttentionSeq2Seq", correct=False,
           why="no packing: the encoder runs over the PAD steps, its final state and outputs depend on the padding",
           source=_model(encode='''
    def encode(self, src, src_lengths):
        outputs, hidden = self.encoder(self.embedding(src))
        return hidden, outputs, src != self.pad_idx
''')),
    Answer("pads_outputs_with_pad_idx", "AttentionSeq2Seq", correct=False,
           why="pad_packed_sequence(..., padding_value=self.pad_idx): encoder outputs are pad_idx, not 0.0, at padding",
           source=_model(encode='''
    def encode(self, src, src_lengths):
        packed = pack_padded_sequence(self.embedding(src), src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, hidden = self.encoder(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, padding_value=self.pad_idx,
                                         total_length=src.size(1))
        return hidden, outputs, src != self.pad_idx
''')),
    Answer("no_total_length", "AttentionSeq2Seq", correct=False,
           why="pad_packed_sequence without total_length: the outputs are only as wide as the longest source, "
               "narrower than the mask when the whole batch ends in padding",
           source=_model(encode='''
    def encode(self, src, src_lengths):
        packed = pack_padded_sequence(self.embedding(src), src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, hidden = self.encoder(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True)
        return hidden, outputs, src != self.pad_idx
''')),
    Answer("mask_from_token_zero", "AttentionSeq2Seq", correct=False,
           why="the mask is src != 0 whatever pad_idx is",
           source=_model(encode=_ENCODE.replace("src != self.pad_idx", "src != 0"))),
    Answer("mask_forgotten", "AttentionSeq2Seq", correct=False,
           why="passes an all-True mask: the decoder attends to the padding",
           source=_model(encode=_ENCODE.replace("src != self.pad_idx", "torch.ones_like(src, dtype=torch.bool)"))),
    Answer("forward_attends_once", "AttentionSeq2Seq", correct=False,
           why="forward keeps assignment 2's one GRU call: one context, from the encoder's final state, for every "
               "step; decode_step attends at each step, so the two disagree",
           source=_model(forward='''
    def forward(self, src, src_lengths, decoder_inputs):
        hidden, encoder_outputs, mask = self.encode(src, src_lengths)
        context, _ = self.attention(hidden[-1], encoder_outputs, mask)
        embedded = self.embedding(decoder_inputs)
        contexts = context.unsqueeze(1).expand(-1, decoder_inputs.size(1), -1)
        outputs, _ = self.decoder(torch.cat([embedded, contexts], dim=-1), hidden)
        return self.out(outputs)
''')),
    Answer("encoder_outputs_kept_on_self", "AttentionSeq2Seq", correct=False,
           why="encode stores the encoder outputs and mask on self and decode_step reads them there: a second "
               "encode overwrites the first batch's",
           source=_model(encode='''
    def encode(self, src, src_lengths):
        packed = pack_padded_sequence(self.embedding(src), src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, hidden = self.encoder(packed)
        self.encoder_outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src.size(1))
        self.mask = src != self.pad_idx
        return hidden, self.encoder_outputs, self.mask
''', decode_step='''
    def decode_step(self, prev_tokens, state, return_weights=False):
        hidden = state[0]
        context, weights = self.attention(hidden[-1], self.encoder_outputs, self.mask)
        rnn_input = torch.cat([self.embedding(prev_tokens), context], dim=-1).unsqueeze(1)
        output, hidden = self.decoder(rnn_input, hidden)
        logits = self.out(output.squeeze(1))
        state = (hidden, self.encoder_outputs, self.mask)
        return (logits, state, weights) if return_weights else (logits, state)
''')),
    Answer("always_returns_weights", "AttentionSeq2Seq", correct=False,
           why="decode_step returns (logits, state, weights) whatever return_weights says: greedy_decode cannot "
               "unpack it",
           source=_model(decode_step='''
    def decode_step(self, prev_tokens, state, return_weights=False):
        hidden, encoder_outputs, mask = state
        context, weights = self.attention(hidden[-1], encoder_outputs, mask)
        rnn_input = torch.cat([self.embedding(prev_tokens), context], dim=-1).unsqueeze(1)
        output, hidden = self.decoder(rnn_input, hidden)
        return self.out(output.squeeze(1)), (hidden, encoder_outputs, mask), weights
''')),
    Answer("layers_in_a_dict", "AttentionSeq2Seq", correct=False,
           why="keeps the GRUs in a plain dict: not registered, so not trained, saved or moved to the GPU",
           source=_model(init='''
class AttentionSeq2Seq(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, pad_idx=0):
        super().__init__()
        self.pad_idx = pad_idx
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.rnns = {"encoder": nn.GRU(embed_dim, hidden_dim, batch_first=True),
                     "decoder": nn.GRU(embed_dim + hidden_dim, hidden_dim, batch_first=True)}
        self.attention = AdditiveAttention(hidden_dim, hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, vocab_size)
''', encode=_ENCODE.replace("self.encoder(", 'self.rnns["encoder"]('),
                         decode_step=_DECODE_STEP.replace("self.decoder(", 'self.rnns["decoder"]('))),
    Answer("visible_tests_only", "AttentionSeq2Seq", correct=False,
           why="packs with the default enforce_sorted=True and masks and embeds with 0 for padding whatever "
               "pad_idx is: exactly what the visible tests try (sorted lengths, the default pad_idx), nothing more",
           source=_model(init=_INIT.replace("padding_idx=pad_idx", "padding_idx=0"), encode='''
    def encode(self, src, src_lengths):
        packed = pack_padded_sequence(self.embedding(src), src_lengths, batch_first=True)
        outputs, hidden = self.encoder(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src.size(1))
        return hidden, outputs, src != 0
''')),
    Answer("gru_cell_decoder", "AttentionSeq2Seq", correct=True,
           why="an nn.GRUCell decoder and separate source and target embeddings; the state's hidden stays [1, B, H]",
           source='''
class AttentionSeq2Seq(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, pad_idx=0):
        super().__init__()
        self.pad_idx = pad_idx
        self.src_embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.tgt_embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.encoder = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.attention = AdditiveAttention(hidden_dim, hidden_dim, 32)
        self.cell = nn.GRUCell(embed_dim + hidden_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def encode(self, src, src_lengths):
        packed = pack_padded_sequence(self.src_embedding(src), src_lengths.to("cpu"), batch_first=True,
                                      enforce_sorted=False)
        outputs, hidden = self.encoder(packed)
        outputs = pad_packed_sequence(outputs, batch_first=True, total_length=src.shape[1])[0]
        return hidden, outputs, src.ne(self.pad_idx)

    def decode_step(self, prev_tokens, state, return_weights=False):
        hidden, encoder_outputs, mask = state
        context, weights = self.attention(hidden[0], encoder_outputs, mask)
        new_hidden = self.cell(torch.cat([self.tgt_embedding(prev_tokens), context], dim=1), hidden[0])
        logits = self.out(new_hidden)
        new_state = (new_hidden.unsqueeze(0), encoder_outputs, mask)
        if return_weights:
            return logits, new_state, weights
        return logits, new_state

    def forward(self, src, src_lengths, decoder_inputs):
        state = self.encode(src, src_lengths)
        logits = []
        for t in range(decoder_inputs.shape[1]):
            step_logits, state = self.decode_step(decoder_inputs[:, t], state)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)
'''),
    Answer("deep_output_layer", "AttentionSeq2Seq", correct=True,
           why="the output layer also reads the context and the previous token's embedding (Bahdanau's deep output, "
               "Luong's attentional vector); attention still comes from the previous state",
           source=_model(init=_INIT.replace("nn.Linear(hidden_dim, vocab_size)",
                                            "nn.Linear(2 * hidden_dim + embed_dim, vocab_size)"),
                         decode_step='''
    def decode_step(self, prev_tokens, state, return_weights=False):
        hidden, encoder_outputs, mask = state
        context, weights = self.attention(hidden[-1], encoder_outputs, mask)
        embedded = self.embedding(prev_tokens)
        output, hidden = self.decoder(torch.cat([embedded, context], dim=-1).unsqueeze(1), hidden)
        logits = self.out(torch.cat([output.squeeze(1), context, embedded], dim=-1))
        state = (hidden, encoder_outputs, mask)
        return (logits, state, weights) if return_weights else (logits, state)
''')),
    Answer("mask_from_lengths", "AttentionSeq2Seq", correct=True,
           why="builds the mask from the lengths (arange < length), which is src != pad_idx for padded batches",
           source=_model(encode='''
    def encode(self, src, src_lengths):
        packed = pack_padded_sequence(self.embedding(src), src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, hidden = self.encoder(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src.size(1))
        positions = torch.arange(src.size(1), device=src.device)
        return hidden, outputs, positions[None, :] < src_lengths.to(src.device)[:, None]
''')),
    Answer("keys_projected_once", "AttentionSeq2Seq", correct=True,
           why="forward projects the keys once per batch instead of once per step (the same numbers, faster), and "
               "calls the attention's layers itself",
           source=_model(forward='''
    def forward(self, src, src_lengths, decoder_inputs):
        hidden, encoder_outputs, mask = self.encode(src, src_lengths)
        projected_keys = self.attention.key_proj(encoder_outputs)
        steps = []
        for t in range(decoder_inputs.size(1)):
            query = self.attention.query_proj(hidden[-1]).unsqueeze(1)
            scores = self.attention.v(torch.tanh(query + projected_keys)).squeeze(-1)
            weights = masked_softmax(scores, mask)
            context = torch.bmm(weights.unsqueeze(1), encoder_outputs).squeeze(1)
            rnn_input = torch.cat([self.embedding(decoder_inputs[:, t]), context], dim=-1).unsqueeze(1)
            output, hidden = self.decoder(rnn_input, hidden)
            steps.append(self.out(output.squeeze(1)))
        return torch.stack(steps, dim=1)
''')),
]
