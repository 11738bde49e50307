"""contamination: n-gram overlap against corpora built in the test from the real miniF2F texts."""

from __future__ import annotations

import gzip
import json
import random
import tracemalloc
from pathlib import Path

import pytest

from llemma_prover.cli.main import main
from llemma_prover.contamination.corpus import Piece
from llemma_prover.contamination.ngrams import WhitespaceTokenizer, make_tokenizer, window_hashes
from llemma_prover.contamination.overlap import (
    BenchItem,
    NgramIndex,
    Scanner,
    benchmark_items,
    naive_scan,
    scan,
)
from llemma_prover.core.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def items(minif2f_dir: Path) -> list[BenchItem]:
    return benchmark_items(minif2f_dir)


@pytest.fixture(scope="module")
def index(items: list[BenchItem]) -> NgramIndex:
    return NgramIndex(items, WhitespaceTokenizer(), 30)


def long_item(items: list[BenchItem], field: str, min_tokens: int = 90, k: int = 0) -> BenchItem:
    return [i for i in items if i.field == field and len(i.text.split()) >= min_tokens][k]


def filler(rng: random.Random, words: int, vocab: list[str]) -> str:
    lines = []
    for _ in range(words // 12):
        lines.append(" ".join(rng.choice(vocab) for _ in range(12)))
    return "\n".join(lines) + "\n"


def test_benchmark_items_cover_every_text(items: list[BenchItem]) -> None:
    fields = {i.field for i in items}
    assert fields == {
        "coq:statement",
        "lean4:statement",
        "isabelle:statement",
        "informal_statement",
        "informal_proof",
    }
    problems = {i.problem.lower() for i in items}
    assert len(problems) == 488  # 244 test + 244 valid
    assert sum(i.field == "informal_proof" for i in items) == 488  # informal texts once per problem


def test_planted_copies_are_found_with_location_and_longest_match(
    tmp_path: Path, items: list[BenchItem], index: NgramIndex
) -> None:
    rng = random.Random(0)
    # filler made of benchmark words (worst case for the prefilter) that never repeats 30 tokens in a row
    vocab = sorted({w for i in items for w in i.text.split()})
    proof = long_item(items, "informal_proof")
    stmt = long_item(items, "lean4:statement", 40)
    body = filler(rng, 20_000, vocab)
    text = body + "Quoted: " + proof.text + "\n" + body
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text(text)
    lines_before = body.count("\n")
    with gzip.open(tmp_path / "corpus" / "b.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"text": "nothing here"}) + "\n")
        fh.write(json.dumps({"text": "prefix " + stmt.text + " suffix", "id": 2}) + "\n")
    (tmp_path / "corpus" / "c.bin").write_bytes(b"\0\1\2" * 100)  # binary: skipped
    res = scan(index, [tmp_path / "corpus"], chunk_bytes=4096)
    found = {p.problem: p for p in res.contaminated()}
    ntok = len(proof.text.split())
    pr = found[proof.problem]
    assert pr.longest == ntok and pr.hits >= ntok - 29 and "informal_proof" in pr.fields
    w = pr.where[0]
    assert w.source.endswith("a.txt") and w.line == lines_before + 1 and w.length == ntok
    assert w.snippet.split()[:5] == proof.text.split()[:5]
    ps = found[stmt.problem]
    assert ps.longest >= len(stmt.text.split()) and any(
        x.source.endswith("b.jsonl.gz") and x.line == 2 for x in ps.where
    )
    # nothing else: the filler never contains a benchmark 30-gram (checked by the naive reference too)
    naive = naive_scan(items, [text, "nothing here", "prefix " + stmt.text + " suffix"])
    assert {p: r.hits for p, r in found.items()} == naive
    assert res.documents == 3 and res.corpus_tokens > 40_000


def test_matches_the_naive_reference_on_random_splices(
    tmp_path: Path, items: list[BenchItem], index: NgramIndex
) -> None:
    """Random fragments (some shorter than n) of benchmark texts spliced into filler; chunks far smaller
    than the texts so that windows cross chunk and batch boundaries."""
    rng = random.Random(1)
    vocab = sorted({w for i in items for w in i.text.split()})
    docs = []
    for _ in range(6):
        parts = [filler(rng, 600, vocab)]
        for _ in range(5):
            it = rng.choice(items)
            toks = it.text.split()
            a = rng.randrange(0, max(1, len(toks) - 20))
            parts.append(" ".join(toks[a : a + rng.randrange(10, 80)]))
            parts.append(filler(rng, 120, vocab))
        docs.append("\n".join(parts))
    for k, d in enumerate(docs):
        (tmp_path / f"d{k}.txt").write_text(d)
    sc = Scanner(index, batch_tokens=700)
    from llemma_prover.contamination.corpus import read_corpus

    for piece in read_corpus(sorted(tmp_path.glob("d*.txt")), chunk_bytes=300):
        sc.feed(piece)
    res = sc.result(1.0)
    got = {p.problem: p.hits for p in res.contaminated()}
    assert got == naive_scan(items, docs)
    assert got  # the splices did produce hits


def test_windows_never_span_two_documents(index: NgramIndex, items: list[BenchItem]) -> None:
    proof = long_item(items, "informal_proof").text.split()
    half = len(proof) // 2
    sc = Scanner(index)
    sc.feed(Piece("doc1", 1, " ".join(proof[:half]), True, 10, text_lines=False))
    sc.feed(Piece("doc2", 1, " ".join(proof[half:]), True, 10, text_lines=False))
    split_docs = {p.problem: p.longest for p in sc.result(1.0).contaminated()}
    sc2 = Scanner(index)
    sc2.feed(Piece("doc1", 1, " ".join(proof[:half]), True, 10))
    sc2.feed(Piece("doc1", 5, " ".join(proof[half:]), False, 10))  # the same document, continued
    joined = {p.problem: p.longest for p in sc2.result(1.0).contaminated()}
    assert max(split_docs.values(), default=0) < len(proof) == max(joined.values())


def test_hash_collisions_are_never_reported(items: list[BenchItem]) -> None:
    """Make every corpus window's hash look like a benchmark n-gram: the token check rejects them all."""
    import numpy as np

    idx = NgramIndex(items[:50], WhitespaceTokenizer(), 5)
    toks = [t for i in items[:50] for t in i.text.split()][::-1][:40]  # benchmark words, reversed order
    piece = Piece("x", 1, " ".join(toks), True, 10)
    vals = idx.encode(piece).values
    assert (vals != 0).all()
    h = np.sort(window_hashes(vals, 5))
    idx.hashes = idx.unique = h
    idx.bitmap[:] = True
    idx.owner = np.zeros(len(h), dtype=np.int32)
    idx.pos = np.zeros(len(h), dtype=np.int32)
    sc = Scanner(idx)
    sc.feed(piece)
    res = sc.result(1.0)
    assert res.contaminated() == [] and res.corpus_tokens == len(toks)
    assert sc.collisions == len(toks) - 4  # every window was a hash match, and every one was rejected


def test_memory_is_constant_in_the_corpus_size(
    tmp_path: Path, index: NgramIndex, items: list[BenchItem]
) -> None:
    rng = random.Random(2)
    vocab = sorted({w for i in items for w in i.text.split()})[:3000]
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    block = filler(rng, 100_000, vocab)
    small.write_text(block)
    with open(big, "w") as fh:
        for _ in range(12):
            fh.write(block)

    def peak(path: Path) -> int:
        tracemalloc.start()
        scan(index, [path], chunk_bytes=1 << 18)
        _, pk = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return pk

    p_small, p_big = peak(small), peak(big)
    assert big.stat().st_size > 10 * small.stat().st_size
    assert p_big < 1.5 * p_small + (4 << 20), (p_small, p_big)
    assert p_big < 40 << 20  # bounded by the chunk/batch sizes, not by the 15 MB corpus


def test_named_hf_tokenizer(tmp_path: Path, items: list[BenchItem]) -> None:
    """A Hugging Face tokenizer loaded by path (a small BPE trained here on the benchmark texts)."""
    tokenizers = pytest.importorskip("tokenizers")
    from transformers import PreTrainedTokenizerFast

    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=2000, special_tokens=["[UNK]"])
    tok.train_from_iterator((i.text for i in items[:400]), trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    hf = make_tokenizer(str(tmp_path / "tok"))
    assert hf.name.startswith("hf:")
    idx = NgramIndex(items[:400], hf, 30)
    target = next(i for i in items[:400] if i.field == "informal_proof" and len(hf.tokenize(i.text)) > 60)
    (tmp_path / "c.txt").write_text("unrelated words here\n" + target.text + "\nmore words\n")
    res = scan(idx, [tmp_path / "c.txt"])
    pr = {p.problem: p for p in res.contaminated()}[target.problem]
    assert pr.longest >= len(hf.tokenize(target.text)) - 2  # BPE merges at the edges may differ
    assert res.tokenizer == hf.name
    with pytest.raises(ConfigError):
        make_tokenizer(str(tmp_path / "missing"))


def test_saved_datasets_directory(tmp_path: Path, items: list[BenchItem], index: NgramIndex) -> None:
    datasets = pytest.importorskip("datasets")
    proof = long_item(items, "informal_proof", k=3)
    ds = datasets.Dataset.from_dict({"content": ["a b c", proof.text, "x y"]})
    ds.save_to_disk(str(tmp_path / "ds"))
    res = scan(index, [tmp_path / "ds"], text_field="content")
    pr = {p.problem: p for p in res.contaminated()}[proof.problem]
    assert pr.where[0].line == 1 and res.documents == 3


def test_cli(tmp_path: Path, items: list[BenchItem], capsys: pytest.CaptureFixture[str]) -> None:
    proof = long_item(items, "informal_proof", k=1)
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"body": proof.text}) + "\n" + json.dumps({"body": "no"}) + "\n"
    )
    out = tmp_path / "res.jsonl"
    assert (
        main(
            [
                "contamination",
                str(tmp_path / "c.jsonl"),
                "--text-field",
                "body",
                "--out",
                str(out),
                "--splits",
                proof.split,
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert proof.problem in text and "1/244 problems share at least one 30-gram" in text and "MB/s" in text
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 244
    hit = [r for r in rows if r["hits"]]
    assert [r["problem"] for r in hit] == [proof.problem] and hit[0]["where"][0]["line"] == 1
    assert main(["contamination", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert main(["contamination", str(tmp_path / "c.jsonl"), "-n", "0"]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    with pytest.raises(DataError, match="bad.jsonl:1"):
        scan(NgramIndex(items[:5], WhitespaceTokenizer(), 30), [bad])
