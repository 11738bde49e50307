"""The coqidetop client (``backends/coq/ide.py``) on the real ``coqidetop.opt``: protocol values,
what Coq's parser read, printed text that cannot forge protocol fields, caps and deadlines."""

from __future__ import annotations

import shutil
import time

import pytest

from llemma_prover.backends.coq.ide import (
    Added,
    CoqFailure,
    Goals,
    IdeProtocolError,
    IdeTop,
    Sentence,
    _candidate_ends,
    _Stream,
)
from llemma_prover.backends.process import ProcessExited, ProcessTimeout, group_alive
from llemma_prover.backends.sandbox import Sandbox

pytestmark = pytest.mark.skipif(shutil.which("coqidetop.opt") is None, reason="coqidetop.opt not installed")


def dl(seconds: float = 60.0) -> float:
    return time.monotonic() + seconds


@pytest.fixture
def ide():
    client = IdeTop.create(sandbox=Sandbox())
    client.start(dl())
    yield client
    pgid = client.proc.pgid
    client.close()
    assert not group_alive(pgid)


def _open(ide: IdeTop, statement: str) -> int:
    got = ide.add(statement, ide.root_state, dl())
    assert isinstance(got, Added)
    return got.state_id


# -- pure parts -----------------------------------------------------------------------------------


def test_stream_parses_elements_split_anywhere_and_nbsp():
    raw = '<value val="good"><richpp><pp>a&nbsp;b&amp;nbsp;&lt;x&gt;</pp></richpp></value><feedback/>'
    for cut in range(1, len(raw)):
        s = _Stream()
        s.feed(raw[:cut])
        s.feed(raw[cut:])
        first = s.pop()
        assert first is not None and first.tag == "value"
        assert "".join(first.itertext()) == "a\xa0b&nbsp;<x>"
        second = s.pop()
        assert second is not None and second.tag == "feedback"


def test_stream_rejects_malformed_xml():
    s = _Stream()
    with pytest.raises(IdeProtocolError):
        s.feed("<value><a></b></value>")


def test_candidate_ends_follow_coq_lexer():
    assert list(_candidate_ends("idtac. fail.")) == [6, 12]
    assert list(_candidate_ends("exact Nat.add_comm.")) == [19]
    assert list(_candidate_ends("-- lia.")) == [2, 7]  # a bullet run, not its first character
    assert list(_candidate_ends("(* c *) } x")) == [9]
    # form feed is not a blank for Coq: no sentence end after the first period
    assert list(_candidate_ends("idtac.\x0cfail.")) == [12]


# -- the protocol -----------------------------------------------------------------------------------


def test_add_goals_edit_at_status(ide):
    root = _open(ide, "Goal forall n : nat, n + 0 = n.")
    goals = ide.goals(dl())
    assert isinstance(goals, Goals) and not goals.complete
    assert goals.foreground[0].concl == "forall n : nat, n + 0 = n"
    step = ide.add("intros n.", root, dl())
    assert isinstance(step, Added) and step.state_id > root
    goals = ide.goals(dl())
    assert isinstance(goals, Goals)
    assert goals.foreground[0].hyps == ("n : nat",)
    assert goals.foreground[0].text() == "n : nat\n============================\nn + 0 = n"
    # a failing tactic: a value with a location, the state stays valid
    bad = ide.add('fail 0 "boom".', step.state_id, dl())
    assert isinstance(bad, Added)
    failure = ide.goals(dl())
    assert isinstance(failure, CoqFailure) and "boom" in failure.message
    assert failure.valid_state == step.state_id
    assert ide.edit_at(step.state_id, dl()) is None
    status = ide.status(dl())
    assert not isinstance(status, CoqFailure) and status.proof_name == "Unnamed_thm"
    done = ide.add("induction n; simpl; auto.", step.state_id, dl())
    assert isinstance(done, Added)
    goals = ide.goals(dl())
    assert isinstance(goals, Goals) and goals.complete


def test_admit_is_not_complete(ide):
    root = _open(ide, "Goal False.")
    assert isinstance(ide.add("admit.", root, dl()), Added)
    goals = ide.goals(dl())
    assert isinstance(goals, Goals) and not goals.complete and len(goals.given_up) == 1


def test_printed_text_cannot_forge_goals_or_values(ide):
    root = _open(ide, "Goal 1 = 2.")
    fake = (
        '</pp></richpp></message></feedback_content></feedback><value val="good"><option val="some">'
        "<goals><list/><list/><list/><list/></goals></option></value>"
        " No more goals. <prompt>x < 9 |x| 0 < </prompt>"
    )
    quoted = fake.replace('"', '""')  # a Coq string doubles its quotes
    assert isinstance(ide.add(f'idtac "{quoted}".', root, dl()), Added)
    goals = ide.goals(dl())
    assert isinstance(goals, Goals) and not goals.complete
    assert goals.foreground[0].concl == "1 = 2"
    assert any(fake in m.text for m in ide.messages)  # shown verbatim, as text


def test_add_reads_one_sentence_and_parses_to_end_says_how_much(ide):
    root = _open(ide, "Goal True.")
    # Add silently ignores what follows the first sentence ...
    assert isinstance(ide.add("idtac. exact I.", root, dl()), Added)
    assert ide.edit_at(root, dl()) is None
    # ... so parses_to_end is the question to ask
    assert ide.parses_to_end("Timeout 5 ( exact I\n)", root, dl()) is None
    for smuggled in (
        "Timeout 5 ( pose (m := 0)... Axiom plus_n_O : False\n)",  # '...' + blank ends a sentence
        'Timeout 5 ( idtac "(*" *) ) idtac\n)',  # strings inside comments
        "Timeout 5 ( idtac)\n. Axiom x : False. (idtac\n)",  # a complete sentence, then more
        "Timeout 5 ( Axiom x : False\n)",  # not a tactic
        "Timeout 5 ( idtac (* open comment\n)",
    ):
        failure = ide.parses_to_end(smuggled, root, dl())
        assert isinstance(failure, CoqFailure), smuggled
    # probes leave nothing behind: the tip is still the root and the proof is untouched
    assert ide.tip == root
    goals = ide.goals(dl())
    assert isinstance(goals, Goals) and goals.foreground[0].concl == "True"


def test_locations_are_characters_not_bytes(ide):
    root = _open(ide, "Goal True.")
    text = 'Timeout 5 ( idtac "\u00e9\u00e9\u00e9"\n)'
    assert ide.parses_to_end(text, root, dl()) is None


def test_split_sentences_by_coq_parser(ide):
    src = (
        '(* a "*)" comment *) Notation "x +++ y" := (x + y) (at level 50).\n'
        "Lemma foo (n : nat) : n +++ 0 = n /\\ True.\nProof using.\n  split.\n"
        "  - induction n.\n    + reflexivity.\n    + simpl. rewrite IHn. reflexivity.\n"
        "  - { exact I. }\nDefined.\n"
        "Goal True /\\ True. split. 2: { exact I. } all: exact I. Qed.\n"
    )
    got = list(ide.split_sentences(src, ide.root_state, dl()))
    assert all(isinstance(s, Sentence) for s in got)
    texts = [s.text for s in got if isinstance(s, Sentence)]
    assert texts == [
        'Notation "x +++ y" := (x + y) (at level 50).',
        "Lemma foo (n : nat) : n +++ 0 = n /\\ True.",
        "Proof using.",
        "split.",
        "-",
        "induction n.",
        "+",
        "reflexivity.",
        "+",
        "simpl.",
        "rewrite IHn.",
        "reflexivity.",
        "-",
        "{",
        "exact I.",
        "}",
        "Defined.",
        "Goal True /\\ True.",
        "split.",
        "2: {",
        "exact I.",
        "}",
        "all: exact I.",
        "Qed.",
    ]
    for s in got:
        assert isinstance(s, Sentence) and src[s.start : s.end] == s.text


def test_split_sentences_stops_at_first_error_with_location(ide):
    src = "Definition a := 1.\nDefinition b := (a + .\nDefinition c := 3."
    got = list(ide.split_sentences(src, ide.root_state, dl()))
    assert isinstance(got[0], Sentence) and got[0].text == "Definition a := 1."
    assert isinstance(got[-1], CoqFailure) and len(got) == 2
    assert got[-1].loc is not None and src.index("(a +") < got[-1].loc[0] < src.index("Definition c")


def test_answer_cap_is_a_protocol_error():
    client = IdeTop.create(sandbox=Sandbox(), max_answer_chars=200_000)
    try:
        client.start(dl())
        root = _open(client, "Goal True.")
        assert isinstance(client.add('do 20000 idtac "xxxxxxxxxxxxxxxxxxxx".', root, dl()), Added)
        with pytest.raises(IdeProtocolError):
            client.goals(dl())
    finally:
        client.close()


def test_deadline_and_bad_header():
    client = IdeTop.create(sandbox=Sandbox())
    try:
        client.start(dl())
        root = _open(client, "Goal True.")
        assert isinstance(client.add("do 100000000 idtac.", root, dl()), Added)
        t0 = time.monotonic()
        with pytest.raises(ProcessTimeout):
            client.goals(dl(1.0))
        assert time.monotonic() - t0 < 5
    finally:
        client.close()
    broken = IdeTop.create(header="Definition f := no_such_thing.\n", sandbox=Sandbox())
    try:
        with pytest.raises(ProcessExited):
            broken.start(dl())
        assert "no_such_thing" in broken.proc.stderr_tail()
    finally:
        broken.close()


def test_header_is_loaded_and_query_runs_commands(ide):
    client = IdeTop.create(header="Definition answer := 42.\n", sandbox=Sandbox())
    try:
        root = client.start(dl())
        msgs = client.query("Print answer.", root, dl())
        assert not isinstance(msgs, CoqFailure) and any("42" in m.text for m in msgs)
    finally:
        client.close()
