"""Other answers to `build_vocab`, `encode`, `bucket_batches`, `collate` and `CharCNN`: realistic mistakes
(each must lose points on its own exercise) and other correct ways (each must get full marks).

Graded by tests/test_answers.py through the real autograder; the demo and the benchmark build
submissions from them. `cell` is the grade id of the solution cell the answer fills, and `source`
is that cell's whole content.
"""

from grader.course.answers import Answer

VOCAB, ENCODE, BUCKETS, COLLATE, CHARS = "build_vocab", "encode", "bucket_batches", "collate", "CharCNN"


def vocab(body: str) -> str:
    """A whole `build_vocab` cell around the given body (4-space indented)."""
    return "def build_vocab(sentences, min_freq=2):\n" + body.strip("\n") + "\n"


def encoder(body: str) -> str:
    """A whole `encode` cell around the given body."""
    return "def encode(batch, vocab, tag_vocab):\n" + body.strip("\n") + "\n"


def bucketer(body: str, before: str = "") -> str:
    """A whole `bucket_batches` cell around the given body."""
    return before + "def bucket_batches(lengths, batch_size, seed):\n" + body.strip("\n") + "\n"


def collater(body: str, before: str = "") -> str:
    """A whole `collate` cell around the given body."""
    return before + "def collate(examples, pad_idx=0):\n" + body.strip("\n") + "\n"


def char_cnn(forward: str, init: str = "") -> str:
    """A whole `CharCNN` cell: the two layers the spec names (plus `init`), and the given forward body."""
    return '''
class CharCNN(nn.Module):
    def __init__(self, num_chars, char_dim, out_dim, kernel_size=3, pad_idx=0):
        super().__init__()
        self.pad_idx = pad_idx
''' + (init.strip("\n") or '''
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=pad_idx)
        self.conv = nn.Conv1d(char_dim, out_dim, kernel_size, padding=kernel_size // 2)''') + '''

    def forward(self, chars):
''' + forward.strip("\n") + "\n"


# The counting most build_vocab answers share, and the sorted cut most bucket_batches answers share.
COUNTS = "    counts = Counter(w.lower() for s in sentences for w in s)\n"
CUT = '''
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
'''
# The convolution every CharCNN answer starts with: [N, out_dim, L] after the ReLU, and the padding mask.
SCORES = '''
        scores = F.relu(self.conv(self.embedding(chars).transpose(1, 2)))
        real = (chars != self.pad_idx).unsqueeze(1)
'''

ANSWERS = [
    # ---------------------------------------------------------------- build_vocab: mistakes
    Answer("counts_as_written", VOCAB, correct=False,
           why="counts words as written: 'The' and 'the' are two words, and capitalised words stay in the vocabulary",
           source=vocab('''
    counts = Counter(w for s in sentences for w in s)
    kept = sorted((w for w in counts if counts[w] >= min_freq), key=lambda w: (-counts[w], w))
    return {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(kept)}}
''')),
    Answer("most_common_order", VOCAB, correct=False,
           why="trusts Counter.most_common(): words with equal counts come in the order first met, not alphabetically",
           source=vocab(COUNTS + '''
    vocab = {"<pad>": 0, "<unk>": 1}
    for w, n in counts.most_common():
        if n >= min_freq:
            vocab[w] = len(vocab)
    return vocab
''')),
    Answer("ties_reversed", VOCAB, correct=False,
           why="sorts (count, word) pairs with reverse=True: the counts come out right, the ties in reverse alphabetical order",
           source=vocab(COUNTS + '''
    pairs = sorted(((n, w) for w, n in counts.items() if n >= min_freq), reverse=True)
    return {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, (n, w) in enumerate(pairs)}}
''')),
    Answer("min_freq_exclusive", VOCAB, correct=False,
           why="keeps words seen more than min_freq times: a word seen exactly min_freq times is left out",
           source=vocab(COUNTS + '''
    kept = sorted((w for w in counts if counts[w] > min_freq), key=lambda w: (-counts[w], w))
    return {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(kept)}}
''')),
    Answer("ids_not_offset", VOCAB, correct=False,
           why="numbers the words from 0 and then sets <pad> and <unk>: the two most frequent words share their ids",
           source=vocab(COUNTS + '''
    kept = sorted((w for w in counts if counts[w] >= min_freq), key=lambda w: (-counts[w], w))
    vocab = {w: i for i, w in enumerate(kept)}
    vocab["<pad>"] = 0
    vocab["<unk>"] = 1
    return vocab
''')),
    Answer("specials_swapped", VOCAB, correct=False,
           why="<unk> 0 and <pad> 1: unknown words would be read as padding",
           source=vocab(COUNTS + '''
    kept = sorted((w for w in counts if counts[w] >= min_freq), key=lambda w: (-counts[w], w))
    return {"<unk>": 0, "<pad>": 1, **{w: i + 2 for i, w in enumerate(kept)}}
''')),
    Answer("lowercases_after_counting", VOCAB, correct=False,
           why="counts the words as written and lowercases the kept ones: 'The' and 'the' are counted apart, "
               "so a word whose spellings each stay under min_freq is lost",
           source=vocab('''
    counts = Counter(w for s in sentences for w in s)
    kept = sorted((w for w in counts if counts[w] >= min_freq), key=lambda w: (-counts[w], w))
    vocab = {"<pad>": 0, "<unk>": 1}
    for w in kept:
        vocab.setdefault(w.lower(), len(vocab))
    return vocab
''')),
    Answer("default_min_freq_one", VOCAB, correct=False,
           why="defaults to min_freq=1: called without min_freq, every word seen once is kept",
           source='''
def build_vocab(sentences, min_freq=1):
    counts = Counter(w.lower() for s in sentences for w in s)
    kept = sorted((w for w in counts if counts[w] >= min_freq), key=lambda w: (-counts[w], w))
    return {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(kept)}}
'''),
    # ---------------------------------------------------------------- build_vocab: other correct ways
    Answer("dict_and_stable_sorts", VOCAB, correct=True,
           why="counts in a plain dict; sorts alphabetically, then by count with reverse=True: sorting is stable, "
               "so the ties keep their alphabetical order",
           source=vocab('''
    counts = {}
    for sentence in sentences:
        for word in sentence:
            word = word.lower()
            counts[word] = counts.get(word, 0) + 1
    words = sorted(w for w in counts if counts[w] >= min_freq)
    words = sorted(words, key=counts.get, reverse=True)
    vocab = {"<pad>": 0, "<unk>": 1}
    for word in words:
        vocab[word] = len(vocab)
    return vocab
''')),
    Answer("counter_items_key", VOCAB, correct=True,
           why="Counter.update per sentence, then one sort of the (word, count) pairs on (-count, word)",
           source=vocab('''
    counts = Counter()
    for sentence in sentences:
        counts.update(word.lower() for word in sentence)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    words = ["<pad>", "<unk>"] + [word for word, n in ranked if n >= min_freq]
    return {word: i for i, word in enumerate(words)}
''')),

    # ---------------------------------------------------------------- encode: mistakes
    Answer("looks_up_as_written", ENCODE, correct=False,
           why="looks words up as written: every capitalised word becomes <unk>",
           source=encoder('''
    return {"input_ids": [[vocab.get(w, 1) for w in s] for s in batch["tokens"]],
            "tag_ids": [[tag_vocab[t] for t in tags] for tags in batch["upos"]],
            "length": [len(s) for s in batch["tokens"]]}
''')),
    Answer("unknown_as_padding", ENCODE, correct=False,
           why="gives unknown words id 0, the padding id, instead of <unk>'s 1",
           source=encoder('''
    return {"input_ids": [[vocab.get(w.lower(), 0) for w in s] for s in batch["tokens"]],
            "tag_ids": [[tag_vocab[t] for t in tags] for tags in batch["upos"]],
            "length": [len(s) for s in batch["tokens"]]}
''')),
    Answer("indexes_the_vocabulary", ENCODE, correct=False,
           why="vocab[word]: a KeyError on the first word that is not in the vocabulary",
           source=encoder('''
    return {"input_ids": [[vocab[w.lower()] for w in s] for s in batch["tokens"]],
            "tag_ids": [[tag_vocab[t] for t in tags] for tags in batch["upos"]],
            "length": [len(s) for s in batch["tokens"]]}
''')),
    Answer("one_flat_list", ENCODE, correct=False,
           why="concatenates the batch's sentences into one list of ids: map needs one entry per sentence",
           source=encoder('''
    ids = [vocab.get(w.lower(), 1) for s in batch["tokens"] for w in s]
    tags = [tag_vocab[t] for ts in batch["upos"] for t in ts]
    return {"input_ids": ids, "tag_ids": tags, "length": [len(s) for s in batch["tokens"]]}
''')),
    Answer("tensors", ENCODE, correct=False,
           why="returns a tensor per sentence: the spec asks for plain lists of ints",
           source=encoder('''
    return {"input_ids": [torch.tensor([vocab.get(w.lower(), 1) for w in s]) for s in batch["tokens"]],
            "tag_ids": [torch.tensor([tag_vocab[t] for t in tags]) for tags in batch["upos"]],
            "length": [len(s) for s in batch["tokens"]]}
''')),
    Answer("returns_the_batch", ENCODE, correct=False,
           why="lowercases the batch's words in place and returns the batch with the new columns added: the "
               "dataset's words would lose their capitals, and the batch is modified",
           source=encoder('''
    batch["tokens"] = [[w.lower() for w in s] for s in batch["tokens"]]
    batch["input_ids"] = [[vocab.get(w, 1) for w in s] for s in batch["tokens"]]
    batch["tag_ids"] = [[tag_vocab[t] for t in tags] for tags in batch["upos"]]
    batch["length"] = [len(s) for s in batch["tokens"]]
    return batch
''')),
    Answer("unknown_gets_new_id", ENCODE, correct=False,
           why="gives unknown words len(vocab), an id the embedding table does not have",
           source=encoder('''
    return {"input_ids": [[vocab.get(w.lower(), len(vocab)) for w in s] for s in batch["tokens"]],
            "tag_ids": [[tag_vocab[t] for t in tags] for tags in batch["upos"]],
            "length": [len(s) for s in batch["tokens"]]}
''')),
    # ---------------------------------------------------------------- encode: other correct ways
    Answer("loops", ENCODE, correct=True,
           why="plain loops and appends, <unk> looked up by name",
           source=encoder('''
    out = {"input_ids": [], "tag_ids": [], "length": []}
    for words, tags in zip(batch["tokens"], batch["upos"]):
        out["input_ids"].append([vocab.get(word.lower(), vocab["<unk>"]) for word in words])
        out["tag_ids"].append([tag_vocab[tag] for tag in tags])
        out["length"].append(len(words))
    return out
''')),

    # ---------------------------------------------------------------- bucket_batches: mistakes
    Answer("no_shuffle", BUCKETS, correct=False,
           why="sorted batches, never shuffled: training sees the short sentences first and the long ones last",
           source=bucketer(CUT + "    return batches\n")),
    Answer("global_random", BUCKETS, correct=False,
           why="random.shuffle uses Python's global generator: the seed is ignored and each call gives another order",
           source=bucketer(CUT + "    random.shuffle(batches)\n    return batches\n")),
    Answer("seed_ignored", BUCKETS, correct=False,
           why="shuffles with random.Random(0) whatever the seed: every epoch sees the batches in the same order",
           source=bucketer(CUT + "    random.Random(0).shuffle(batches)\n    return batches\n")),
    Answer("torch_global_randperm", BUCKETS, correct=False,
           why="orders the batches by torch.randperm without a generator: torch's global generator, not the seed",
           source=bucketer(CUT + "    return [batches[i] for i in torch.randperm(len(batches)).tolist()]\n")),
    Answer("drops_last", BUCKETS, correct=False,
           why="cuts only full batches: the sentences of the last, shorter batch are never seen",
           source=bucketer('''
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    random.Random(seed).shuffle(batches)
    return batches
''')),
    Answer("random_batches", BUCKETS, correct=False,
           why="shuffles the sentences and cuts them into batches without sorting: as much padding as random batches",
           source=bucketer('''
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
''')),
    Answer("one_bucket_per_length", BUCKETS, correct=False,
           why="groups sentences of exactly equal length and cuts each group: every group leaves its own short batch",
           source=bucketer('''
    groups = {}
    for i, n in enumerate(lengths):
        groups.setdefault(n, []).append(i)
    batches = [g[i : i + batch_size] for n in sorted(groups) for g in [groups[n]] for i in range(0, len(g), batch_size)]
    random.Random(seed).shuffle(batches)
    return batches
''')),
    Answer("numpy_indices", BUCKETS, correct=False,
           why="sorts with numpy's argsort and returns its numpy integers, not Python ints",
           source=bucketer('''
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches = [list(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
    random.Random(seed).shuffle(batches)
    return batches
''', before="import numpy as np\n\n")),
    Answer("shuffles_inside_batches", BUCKETS, correct=False,
           why="shuffles the sentences inside each batch instead of the order of the batches",
           source=bucketer(CUT + '''
    rng = random.Random(seed)
    for batch in batches:
        rng.shuffle(batch)
    return batches
''')),
    # ---------------------------------------------------------------- bucket_batches: other correct ways
    Answer("random_tie_break", BUCKETS, correct=True,
           why="shuffles the indices first, then sorts them by length (stable): sentences of equal length meet "
               "in a seeded random order; the same generator then shuffles the batches",
           source=bucketer('''
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    order.sort(key=lambda i: lengths[i])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches
''')),
    Answer("longest_first", BUCKETS, correct=True,
           why="sorts by decreasing length (the short batch then holds the shortest sentences) and draws the "
               "order of the batches with rng.sample",
           source=bucketer('''
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return random.Random(seed).sample(batches, len(batches))
''')),
    Answer("numpy_then_int", BUCKETS, correct=True,
           why="numpy's stable argsort, converted to Python ints",
           source=bucketer('''
    order = [int(i) for i in np.argsort(np.asarray(lengths), kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    random.Random(seed).shuffle(batches)
    return batches
''', before="import numpy as np\n\n")),

    # ---------------------------------------------------------------- collate: mistakes
    Answer("tags_padded_with_zero", COLLATE, correct=False,
           why="pads the tags with 0, a real tag (ADJ): the loss would count padding as adjectives",
           source=collater('''
    ids = [torch.as_tensor(e["input_ids"]) for e in examples]
    tags = [torch.as_tensor(e["tag_ids"]) for e in examples]
    return (nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=pad_idx), torch.tensor([len(i) for i in ids]),
            nn.utils.rnn.pad_sequence(tags, batch_first=True))
''')),
    Answer("tags_padded_with_pad_idx", COLLATE, correct=False,
           why="pads the tags with pad_idx like the words: a word id is not a tag, and tag 0 is real",
           source=collater('''
    ids = [torch.as_tensor(e["input_ids"]) for e in examples]
    tags = [torch.as_tensor(e["tag_ids"]) for e in examples]
    return (nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=pad_idx), torch.tensor([len(i) for i in ids]),
            nn.utils.rnn.pad_sequence(tags, batch_first=True, padding_value=pad_idx))
''')),
    Answer("sorts_by_length", COLLATE, correct=False,
           why="sorts the examples longest first, as enforce_sorted=True would want: rows no longer match the batch's indices",
           source=collater('''
    examples = sorted(examples, key=lambda e: len(e["input_ids"]), reverse=True)
    ids = [torch.as_tensor(e["input_ids"]) for e in examples]
    tags = [torch.as_tensor(e["tag_ids"]) for e in examples]
    return (nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=pad_idx), torch.tensor([len(i) for i in ids]),
            nn.utils.rnn.pad_sequence(tags, batch_first=True, padding_value=-100))
''')),
    Answer("pads_words_with_zero", COLLATE, correct=False,
           why="pads the words with 0 whatever pad_idx says",
           source=collater('''
    ids = [torch.as_tensor(e["input_ids"]) for e in examples]
    tags = [torch.as_tensor(e["tag_ids"]) for e in examples]
    return (nn.utils.rnn.pad_sequence(ids, batch_first=True), torch.tensor([len(i) for i in ids]),
            nn.utils.rnn.pad_sequence(tags, batch_first=True, padding_value=-100))
''')),
    Answer("lists_only", COLLATE, correct=False,
           why="pads by list concatenation: right for lists, but a tensor plus a list adds elementwise (or fails)",
           source=collater('''
    width = max(len(e["input_ids"]) for e in examples)
    tokens = torch.tensor([e["input_ids"] + [pad_idx] * (width - len(e["input_ids"])) for e in examples])
    tags = torch.tensor([e["tag_ids"] + [-100] * (width - len(e["tag_ids"])) for e in examples])
    return tokens, torch.tensor([len(e["input_ids"]) for e in examples]), tags
''')),
    Answer("time_major", COLLATE, correct=False,
           why="pad_sequence without batch_first=True: tokens and tags come out [T, B]",
           source=collater('''
    ids = [torch.as_tensor(e["input_ids"]) for e in examples]
    tags = [torch.as_tensor(e["tag_ids"]) for e in examples]
    return (nn.utils.rnn.pad_sequence(ids, padding_value=pad_idx), torch.tensor([len(i) for i in ids]),
            nn.utils.rnn.pad_sequence(tags, padding_value=-100))
''')),
    Answer("lengths_as_a_list", COLLATE, correct=False,
           why="returns the lengths as a Python list, not an int64 tensor",
           source=collater('''
    ids = [torch.as_tensor(e["input_ids"]) for e in examples]
    tags = [torch.as_tensor(e["tag_ids"]) for e in examples]
    return (nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=pad_idx), [len(i) for i in ids],
            nn.utils.rnn.pad_sequence(tags, batch_first=True, padding_value=-100))
''')),
    Answer("lengths_count_nonzero", COLLATE, correct=False,
           why="counts each row's non-zero ids as its length: wrong when pad_idx is not 0, or a real id is 0",
           source=collater('''
    ids = [torch.as_tensor(e["input_ids"]) for e in examples]
    tags = [torch.as_tensor(e["tag_ids"]) for e in examples]
    tokens = nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=pad_idx)
    return tokens, (tokens != 0).sum(dim=1), nn.utils.rnn.pad_sequence(tags, batch_first=True, padding_value=-100)
''')),
    # ---------------------------------------------------------------- collate: other correct ways
    Answer("full_and_fill", COLLATE, correct=True,
           why="allocates the rectangles with torch.full and copies each example into its row",
           source=collater('''
    width = max(len(e["input_ids"]) for e in examples)
    tokens = torch.full((len(examples), width), pad_idx, dtype=torch.long)
    tags = torch.full((len(examples), width), -100, dtype=torch.long)
    lengths = torch.zeros(len(examples), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        tokens[row, :n] = torch.as_tensor(e["input_ids"])
        tags[row, :n] = torch.as_tensor(e["tag_ids"])
        lengths[row] = n
    return tokens, lengths, tags
''')),
    Answer("pad_each_then_stack", COLLATE, correct=True,
           why="F.pad on each example to the longest length, then torch.stack",
           source=collater('''
    ids = [torch.as_tensor(e["input_ids"], dtype=torch.long) for e in examples]
    tags = [torch.as_tensor(e["tag_ids"], dtype=torch.long) for e in examples]
    width = max(len(i) for i in ids)
    tokens = torch.stack([F.pad(i, (0, width - len(i)), value=pad_idx) for i in ids])
    padded_tags = torch.stack([F.pad(t, (0, width - len(t)), value=-100) for t in tags])
    return tokens, torch.tensor([len(i) for i in ids], dtype=torch.long), padded_tags
''')),

    # ---------------------------------------------------------------- CharCNN: mistakes
    Answer("max_over_padding", CHARS, correct=False,
           why="takes the maximum over every position, padding included: a word's features depend on its batch",
           source=char_cnn('''
        return F.relu(self.conv(self.embedding(chars).transpose(1, 2))).amax(dim=2)
''')),
    Answer("no_relu", CHARS, correct=False,
           why="leaves out the ReLU: the maximum of raw scores, negative ones included",
           source=char_cnn('''
        scores = self.conv(self.embedding(chars).transpose(1, 2))
        real = (chars != self.pad_idx).unsqueeze(1)
        return scores.masked_fill(~real, 0.0).amax(dim=2)
''')),
    Answer("mean_over_characters", CHARS, correct=False,
           why="averages over the real characters instead of taking the maximum",
           source=char_cnn(SCORES + '''
        total = (scores * real).sum(dim=2)
        return total / real.sum(dim=2).clamp(min=1)
''')),
    Answer("no_padding_idx", CHARS, correct=False,
           why="an embedding without padding_idx: the padding character gets a trained vector, which the "
               "convolution reads at the edges of every word followed by padding",
           source=char_cnn(SCORES + '''
        return scores.masked_fill(~real, 0.0).amax(dim=2)
''', init='''
        self.embedding = nn.Embedding(num_chars, char_dim)
        self.conv = nn.Conv1d(char_dim, out_dim, kernel_size, padding=kernel_size // 2)''')),
    Answer("minus_inf_for_empty_words", CHARS, correct=False,
           why="fills the padding with -inf before the maximum: right for words, -inf for a row of padding only",
           source=char_cnn(SCORES + '''
        return scores.masked_fill(~real, float("-inf")).amax(dim=2)
''')),
    Answer("conv_without_padding", CHARS, correct=False,
           why="nn.Conv1d without padding: fewer outputs than characters, and the first and last characters "
               "are never at the centre of a window",
           source=char_cnn('''
        scores = F.relu(self.conv(self.embedding(chars).transpose(1, 2)))
        real = (chars != self.pad_idx)[:, : scores.size(2)].unsqueeze(1)
        return scores.masked_fill(~real, 0.0).amax(dim=2)
''', init='''
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=pad_idx)
        self.conv = nn.Conv1d(char_dim, out_dim, kernel_size)''')),
    Answer("max_over_filters", CHARS, correct=False,
           why="takes the maximum over the wrong dimension (the filters): one value per character, not per filter",
           source=char_cnn(SCORES + '''
        return scores.masked_fill(~real, 0.0).amax(dim=1)
''')),
    Answer("extra_projection", CHARS, correct=False,
           why="adds a linear layer after the pooling: not the two layers the spec asks for, and other features",
           source=char_cnn(SCORES + '''
        return self.project(scores.masked_fill(~real, 0.0).amax(dim=2))
''', init='''
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=pad_idx)
        self.conv = nn.Conv1d(char_dim, out_dim, kernel_size, padding=kernel_size // 2)
        self.project = nn.Linear(out_dim, out_dim)''')),
    Answer("visible_tests_only", CHARS, correct=False,
           why="masks the characters equal to 0 with -inf: right for pad_idx=0 and words with characters, exactly "
               "what the visible tests try, nothing more",
           source=char_cnn('''
        scores = F.relu(self.conv(self.embedding(chars).transpose(1, 2)))
        return scores.masked_fill((chars == 0).unsqueeze(1), float("-inf")).amax(dim=2)
''')),
    # ---------------------------------------------------------------- CharCNN: other correct ways
    Answer("relu_after_max", CHARS, correct=True,
           why="the maximum of the raw scores over the real characters (-inf elsewhere, with torch.where), then the "
               "ReLU: the same numbers, since ReLU is increasing, and ReLU(-inf) = 0 for a row of padding",
           source='''
class CharCNN(nn.Module):
    def __init__(self, num_chars, char_dim, out_dim, kernel_size=3, pad_idx=0):
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=pad_idx)
        self.conv = nn.Conv1d(char_dim, out_dim, kernel_size, padding=kernel_size // 2)
        self.pad = pad_idx

    def forward(self, chars):
        x = self.conv(self.embedding(chars).permute(0, 2, 1))  # N, filters, L
        padding = (chars == self.pad)[:, None, :]
        best = torch.where(padding, torch.full_like(x, float("-inf")), x).max(dim=-1).values
        return torch.relu(best)
'''),
    Answer("multiply_by_mask", CHARS, correct=True,
           why="multiplies the ReLU outputs by the mask (zeros at padding) and takes max(...).values",
           source=char_cnn(SCORES + '''
        return (scores * real).max(dim=2).values
''')),
    Answer("word_by_word", CHARS, correct=True,
           why="a loop over the words, convolving each one's real characters alone; zeros for an empty row",
           source=char_cnn('''
        rows = []
        for word in chars:
            real = word[word != self.pad_idx]
            if len(real) == 0:
                rows.append(torch.zeros(self.conv.out_channels))
                continue
            scores = F.relu(self.conv(self.embedding(real).T.unsqueeze(0)))
            rows.append(scores[0].max(dim=1).values)
        return torch.stack(rows)
''')),
]
