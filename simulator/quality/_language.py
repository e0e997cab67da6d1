"""Language measures over a dataset: repetition, diversity, closings, persona lengths, grammar.

- **Repeated sentences**: the share of all sentences of one side that are copies of that
  side's 20 most frequent sentences.
- **distinct-n** on a matched sample: messages of each side are shuffled with a fixed
  seed and taken until both sides have the same number of tokens (8,000, or fewer when
  a side has less); distinct-n is unique n-grams over all n-grams (within messages).
- **Closings**: the share of dialogues whose last agent message is unlike any other's.
- **Grammar rules**: mechanical slips a reader notices at once (a/an before the wrong
  sound, a sentence starting in lower case, a lone lower-case "i", doubled words or
  punctuation, raw snake_case names or ISO timestamps), per 1,000 sentences.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field

from simulator.quality._text import sentences, word_tokens

__all__ = ["GRAMMAR_RULES", "LanguageStats", "grammar_hits", "measure_language"]

SAMPLE_TOKENS = 8000
_ARTICLE = re.compile(r"\b([Aa]n?) ([A-Za-z][\w'-]*)")
_SNAKE = re.compile(r"(?<![@\w./-])[a-z]+_[a-z_]*[a-z](?![\w@./-])")
_ISO_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_DOUBLE_PUNCT = re.compile(r"[.!?,;:] ?[.?,;:]|[,;:] ?!| [,.;:?!]")
_LOWER_I = re.compile(r"(?:^|[\s(])i(?=[\s,.!?'’])")

GRAMMAR_RULES = (
    "article",
    "lowercase_start",
    "lowercase_i",
    "doubled_word",
    "punctuation",
    "raw_name",
    "raw_timestamp",
)

_engine = None


def _article_for(word: str) -> str:
    global _engine
    if _engine is None:
        from simulator.offline._inflect import engine

        _engine = engine()
    return str(_engine.a(word)).split(" ", 1)[0].lower()


def grammar_hits(text: str) -> Counter[str]:
    """How often each rule of :data:`GRAMMAR_RULES` is broken in ``text``."""
    hits: Counter[str] = Counter()
    for m in _ARTICLE.finditer(text):
        word = m.group(2)
        if word.isupper() and len(word) > 1:  # acronyms are read letter by letter either way
            continue
        if _article_for(word) != m.group(1).lower():
            hits["article"] += 1
    for s in sentences(text):
        first = s.lstrip("\"'(—–- ")[:1]
        head = s.split(" ", 1)[0]
        if first.islower() and "@" not in head and not any(ch.isdigit() for ch in head) and "." not in head[:-1]:
            hits["lowercase_start"] += 1
    hits["lowercase_i"] += len(_LOWER_I.findall(text))
    words = word_tokens(text)
    hits["doubled_word"] += sum(
        1 for a, b in zip(words, words[1:], strict=False) if a == b and a.isalpha() and len(a) > 1
    )
    hits["punctuation"] += sum(1 for m in _DOUBLE_PUNCT.finditer(text) if m.group(0) not in {"...", " —"})
    hits["raw_name"] += len(_SNAKE.findall(text))
    hits["raw_timestamp"] += len(_ISO_STAMP.findall(text))
    return +hits


@dataclass(slots=True)
class LanguageStats:
    sentences: int = 0
    top20_share: float = 0.0
    top_sentences: list[tuple[str, int]] = field(default_factory=list)
    sample_tokens: int = 0
    distinct_1: float = 0.0
    distinct_2: float = 0.0
    grammar: dict[str, int] = field(default_factory=dict)
    grammar_per_1000: float = 0.0


def _distinct(messages: list[list[str]], n: int) -> float:
    grams: set[tuple[str, ...]] = set()
    total = 0
    for toks in messages:
        for i in range(len(toks) - n + 1):
            grams.add(tuple(toks[i : i + n]))
            total += 1
    return len(grams) / total if total else 0.0


def _sample(texts: list[str], budget: int, seed: int) -> list[list[str]]:
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    out: list[list[str]] = []
    used = 0
    for i in order:
        if used >= budget:
            break
        toks = word_tokens(texts[i])[: budget - used]
        out.append(toks)
        used += len(toks)
    return out


def measure_language(sides: dict[str, list[str]], *, seed: int = 0) -> dict[str, LanguageStats]:
    """Measure each side's messages (``{"user": [...], "agent": [...]}``) with a matched sample."""
    counts = {side: sum(len(word_tokens(t)) for t in texts) for side, texts in sides.items()}
    budget = min([SAMPLE_TOKENS, *counts.values()]) if counts else 0
    out: dict[str, LanguageStats] = {}
    for side, texts in sides.items():
        stats = LanguageStats()
        freq: Counter[str] = Counter()
        grammar: Counter[str] = Counter()
        for text in texts:
            for s in sentences(text):
                freq[" ".join(s.split())] += 1
            grammar.update(grammar_hits(text))
        stats.sentences = sum(freq.values())
        top = freq.most_common(20)
        stats.top_sentences = top[:5]
        stats.top20_share = sum(n for _, n in top) / stats.sentences if stats.sentences else 0.0
        sample = _sample(texts, budget, seed)
        stats.sample_tokens = sum(len(t) for t in sample)
        stats.distinct_1 = _distinct(sample, 1)
        stats.distinct_2 = _distinct(sample, 2)
        stats.grammar = dict(sorted(grammar.items()))
        stats.grammar_per_1000 = 1000 * sum(grammar.values()) / stats.sentences if stats.sentences else 0.0
        out[side] = stats
    return out
