"""A client for ``coqidetop`` (Coq's XML protocol, the one CoqIDE speaks), and Coq's own sentence splitter.

Why this protocol. ``coqtop -emacs`` prints message text unescaped next to its prompts and goals, so a
tactic can print a fake prompt, fake goals or ``No more goals.``; nothing in that stream is out of the
tactic's reach. ``coqidetop.opt -main-channel stdfds`` (shipped with Debian's Coq 8.16.1; SerAPI is not
packaged) answers every call with one XML ``<value>`` element, preceded by ``<feedback>`` elements.
Every piece of text inside is escaped by Coq's XML printer, so text a tactic prints can only ever be
character data inside a ``<richpp>`` of a ``<feedback>`` message: it cannot close an element, start a
``<value>``, fake a state id or add a goal. We parse the stream with a real XML parser
(``xml.etree.ElementTree.XMLParser``, fed incrementally); a stream that is not well-formed XML is a
``IdeProtocolError``, never a guess. What we decide from:

* **state ids** are the ``state_id`` fields of ``Add``/``Edit_at`` answers;
* **goals** are the structured ``goals`` record of ``Goal`` (foreground goals with hypotheses and
  conclusion, background, shelved and given-up goals); a proof is finished only when all four lists
  are empty (``Goals.complete``) -- ``admit`` leaves its goal in the given-up list, so it never is;
* **failures** are ``<value val="fail">`` answers, with Coq's location (``loc_s``/``loc_e``, converted
  from Coq's byte offsets to character offsets) and the last valid state id. The *message* of a
  failure or of a feedback is printable text and is only ever shown, never interpreted.

Sentence boundaries (``Add`` parses one sentence). ``Add`` parses the *first* sentence of its string
and silently ignores the rest, and it does not say where that sentence ended. Two tools answer
"how much did Coq read", both by Coq's parser:

* ``IdeTop.parses_to_end(text, on)``: Coq's parser read all of ``text`` without finishing a sentence
  and without a syntax error before the end, i.e. ``Add(text)`` fails with a syntax error located
  exactly at the end of the input. Then ``text + "."`` is exactly one sentence (its tokens are those of
  ``text`` plus the final period). The backend uses this for model tactics: ``Timeout T ( tac\\n)`` must
  parse to the end (so no sentence end, ``...``, comment or string trick hides inside ``tac``, and
  ``tac`` is an ``ltac_expr`` -- Coq's grammar, not ours, says it is a tactic), then
  ``Timeout T ( tac\\n).`` is added.
* ``IdeTop.split_sentences(source, on)``: runs a whole source text sentence by sentence (sentences
  change the grammar, e.g. ``Notation``, so a splitter must execute) and returns each sentence's
  span. A sentence ends where Coq's lexer can end one: after a ``.``/``...`` followed by a blank or
  the end of the text (Coq's ``blank_or_eof``: space, tab, newline, carriage return), or after a
  bullet run (``-``/``+``/``*`` repeated) or a brace. For each candidate end ``k``, in order, we ``Add``
  ``text[start:k]``; the first that Coq accepts is the sentence (every shorter candidate was a syntax
  error, so Coq's parse of the full text ends exactly there -- see ``_candidate_ends``).

**Answers only from our process.** The client pairs each answer with the oldest pending call; that
holds only while one coqidetop reads our pipe. A tactic that forks (CoqHammer's ``best`` workers,
``par:``) leaves copies of coqidetop that may answer (a stack overflow in a worker unwinds into its
copy of the main loop). So after every ``<value>`` the process tree is compared with the one that
answered first (``ManagedProcess.tree_change``: one read of the cgroup's ``cgroup.procs``; a new
process or a missing prover is a change), and state ids are
checked: an ``Add`` must answer a state id never seen before and above every earlier one (Coq's
counter only grows), a failure's last valid state must be one Coq gave us. Any breach raises
``IdeDesync`` instead of returning the answer.

Every read has a deadline (``ManagedProcess`` deadlines, ``ProcessTimeout``) and a byte cap per answer
(``max_answer_chars``; beyond it the answer is an ``IdeProtocolError``: a tactic that prints 300 MB
costs one candidate, not the run's memory). Feedback other than messages is ignored; messages are kept
up to ``MAX_MESSAGES`` per call.
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from ..process import ManagedProcess, ProcessError
from .sentences import COQ_BLANKS, InvalidTactic, comment_end

if TYPE_CHECKING:
    from ..sandbox import Sandbox

__all__ = [
    "Added",
    "CoqFailure",
    "Goal",
    "Goals",
    "IdeDesync",
    "IdeProtocolError",
    "IdeTop",
    "Message",
    "Sentence",
    "SentenceRun",
    "Status",
    "MAX_ANSWER_CHARS",
    "ide_executable_for",
    "richpp_text",
    "skip_blanks_and_comments",
]

#: characters of XML accepted for one answer (its feedback included) before the answer is refused
MAX_ANSWER_CHARS = 8 * 1024 * 1024
#: feedback messages kept per call (the rest are counted, not stored)
MAX_MESSAGES = 64
#: characters kept of one message's text
MAX_MESSAGE_CHARS = 2000
#: file name of the header in the private directory (loaded with ``-l``)
HEADER_FILE = "header.v"


class IdeProtocolError(ProcessError):
    """coqidetop said something that is not the protocol (malformed XML, unexpected element, too much)."""


class IdeDesync(IdeProtocolError):
    """An answer that cannot belong to the pending call: a state id Coq never gave us (or gave twice),
    or an answer read while the process tree held processes beyond the prover (a forked copy of
    coqidetop shares our pipes and may answer). Never a call's result: the process is replaced."""


# -- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """One goal as Coq reports it: hypotheses (``"n : nat"``) and conclusion, as plain text."""

    hyps: tuple[str, ...]
    concl: str

    def text(self) -> str:
        """Hypotheses, one per line, the ``====`` rule, the conclusion (coqtop's own layout)."""
        return "\n".join([*self.hyps, "============================", self.concl])


@dataclass(frozen=True)
class Goals:
    """The structured goals of the current proof (``Goal`` call)."""

    foreground: tuple[Goal, ...]
    #: unfocused goals of every enclosing focus level, flattened
    background: tuple[Goal, ...] = ()
    shelved: tuple[Goal, ...] = ()
    given_up: tuple[Goal, ...] = ()

    @property
    def complete(self) -> bool:
        """No goal of any kind is left: the proof is finished (Coq would accept ``Qed``)."""
        return not (self.foreground or self.background or self.shelved or self.given_up)


@dataclass(frozen=True)
class Message:
    """A feedback message (``idtac`` output, warnings, errors): text to show, never to interpret."""

    level: str
    text: str
    state_id: int


@dataclass(frozen=True)
class Added:
    """``Add`` accepted a sentence: ``state_id`` is the new state (not executed until observed)."""

    state_id: int


@dataclass(frozen=True)
class CoqFailure:
    """A ``<value val="fail">`` answer: Coq's message, location (characters) and last valid state."""

    message: str
    loc: tuple[int, int] | None = None
    valid_state: int = 0


@dataclass(frozen=True)
class Status:
    """``Status``: the names of the open proofs (``proof_name`` is the focused one)."""

    path: tuple[str, ...]
    proof_name: str | None
    all_proofs: tuple[str, ...]


@dataclass(frozen=True)
class Sentence:
    """One sentence of a source text: ``text[start:end]`` (leading blanks and comments excluded)."""

    start: int
    end: int
    text: str
    state_id: int


@dataclass(frozen=True)
class SentenceRun:
    """What ``IdeTop.run_sentence`` found: a parse failure, or the added state and its goals."""

    parse_failure: CoqFailure | None
    added: Added | None = None
    #: the ``Goal`` answer: goals, an execution failure, or ``None`` (no proof open)
    goals: Goals | CoqFailure | None = None


# -- XML framing --------------------------------------------------------------------------------


class _Stream:
    """Incremental parser of coqidetop's output: a sequence of top-level XML elements.

    The output is wrapped in a synthetic root element and fed to ``XMLParser`` as it arrives; every
    completed child of the root is queued. Coq writes ``&nbsp;`` (not an XML entity) for spaces; since
    Coq escapes every ``&`` of its text as ``&amp;``, a literal ``&nbsp;`` in the stream can only be
    that entity, and it is rewritten to ``&#160;`` before parsing (a partial entity at a chunk end is
    held back until the next chunk)."""

    def __init__(self) -> None:
        self._builder = _TopLevel()
        self._parser = ET.XMLParser(target=self._builder)
        self._parser.feed("<coqidetop>")
        self._held = ""

    def feed(self, text: str) -> None:
        text = self._held + text
        amp = text.rfind("&")
        if amp >= 0 and ";" not in text[amp:] and len(text) - amp < 8:
            text, self._held = text[:amp], text[amp:]
        else:
            self._held = ""
        try:
            self._parser.feed(text.replace("&nbsp;", "&#160;"))
        except ET.ParseError as exc:
            raise IdeProtocolError(f"coqidetop sent malformed XML: {exc}") from exc

    def pop(self) -> ET.Element | None:
        return self._builder.done.pop(0) if self._builder.done else None


class _TopLevel:
    """``XMLParser`` target that builds each child of the root with a fresh ``TreeBuilder``."""

    def __init__(self) -> None:
        self.depth = 0
        self.done: list[ET.Element] = []
        self._tb: ET.TreeBuilder | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        if self.depth == 1:
            return
        if self.depth == 2:
            self._tb = ET.TreeBuilder()
        assert self._tb is not None
        self._tb.start(tag, attrs)

    def end(self, tag: str) -> None:
        self.depth -= 1
        if self.depth == 0:
            return
        assert self._tb is not None
        self._tb.end(tag)
        if self.depth == 1:
            self.done.append(self._tb.close())
            self._tb = None

    def data(self, text: str) -> None:
        if self._tb is not None:
            self._tb.data(text)

    def close(self) -> None:
        return None


# -- encoding -----------------------------------------------------------------------------------


def _string(s: str) -> str:
    return f"<string>{escape(s)}</string>"


def _int(n: int) -> str:
    return f"<int>{n}</int>"


def _bool(b: bool) -> str:
    return f'<bool val="{"true" if b else "false"}"/>'


def _sid(n: int) -> str:
    return f'<state_id val="{n}"/>'


def _pair(a: str, b: str) -> str:
    return f"<pair>{a}{b}</pair>"


def _call(name: str, arg: str) -> str:
    return f'<call val="{name}">{arg}</call>\n'


def richpp_text(elem: ET.Element | None) -> str:
    """The plain text of a ``<richpp>`` (or any) element, with Coq's non-breaking spaces as spaces."""
    if elem is None:
        return ""
    return "".join(elem.itertext()).replace("\xa0", " ")


def _children(elem: ET.Element, tag: str) -> list[ET.Element]:
    kids = list(elem)
    if any(k.tag != tag for k in kids):
        raise IdeProtocolError(f"expected only <{tag}> in <{elem.tag}>, got {[k.tag for k in kids]}")
    return kids


def _goal(elem: ET.Element) -> Goal:
    # <goal><string>id</string><list>hyp richpp*</list><richpp>concl</richpp><option name/></goal>
    kids = list(elem)
    if elem.tag != "goal" or len(kids) < 3 or kids[1].tag != "list" or kids[2].tag != "richpp":
        raise IdeProtocolError(f"unexpected goal element {ET.tostring(elem)[:200]!r}")
    hyps = tuple(richpp_text(h) for h in _children(kids[1], "richpp"))
    return Goal(hyps=hyps, concl=richpp_text(kids[2]))


def _goal_list(elem: ET.Element) -> tuple[Goal, ...]:
    if elem.tag != "list":
        raise IdeProtocolError(f"expected a goal list, got <{elem.tag}>")
    return tuple(_goal(g) for g in _children(elem, "goal"))


def _goals(elem: ET.Element) -> Goals:
    kids = list(elem)
    if elem.tag != "goals" or len(kids) != 4:
        raise IdeProtocolError(f"unexpected goals element {ET.tostring(elem)[:200]!r}")
    fg, bg, shelved, given_up = kids
    background: list[Goal] = []
    for level in _children(bg, "pair"):  # (goals before the focus, goals after it)
        for side in level:
            background.extend(_goal_list(side))
    return Goals(
        foreground=_goal_list(fg),
        background=tuple(background),
        shelved=_goal_list(shelved),
        given_up=_goal_list(given_up),
    )


def _byte_to_char(text: str, offset: int) -> int:
    """Coq's locations are byte offsets into the UTF-8 text; the character offset they denote."""
    data = text.encode("utf-8")
    return len(data[: max(0, offset)].decode("utf-8", errors="ignore"))


# -- the client ---------------------------------------------------------------------------------


class IdeTop:
    """One ``coqidetop`` process, spoken to through ``ManagedProcess`` (own process group, sandbox).

    ``process`` is a ``ManagedProcess`` that is not started yet and runs
    ``coqidetop.opt -main-channel stdfds ...`` (see ``IdeTop.argv``); ``start`` spawns it and sends
    ``Init``. All calls take an absolute ``deadline`` (``time.monotonic()``) and raise
    ``ProcessTimeout``/``ProcessExited``/``IdeProtocolError`` (all ``ProcessError``) when the process
    misbehaves; Coq's own failures are values (``CoqFailure``).
    """

    def __init__(self, process: ManagedProcess, *, max_answer_chars: int = MAX_ANSWER_CHARS) -> None:
        self.proc = process
        self.max_answer_chars = max_answer_chars
        self._stream = _Stream()
        #: state id after ``Init`` (the state after the files loaded on the command line)
        self.root_state = 0
        #: the state Coq's document ends at (the tip), as far as our calls moved it
        self.tip = 0
        #: messages of the last call (bounded by ``MAX_MESSAGES``); display only
        self.messages: list[Message] = []
        self.dropped_messages = 0
        #: every state id Coq has given us (``Init``, ``Add``); answers naming others are a desync
        self.issued: set[int] = set()
        self.last_issued = 0

    @staticmethod
    def argv(executable: str = "coqidetop.opt", *extra: str) -> list[str]:
        """The command line of a coqidetop speaking XML on stdin/stdout; ``extra`` e.g. ``-l header.v``."""
        return [executable, "-main-channel", "stdfds", "-q", *extra]

    @classmethod
    def create(
        cls,
        executable: str = "coqidetop.opt",
        *,
        header: str | None = None,
        sandbox: Sandbox | None = None,
        memory_limit_mb: int = 0,
        max_answer_chars: int = MAX_ANSWER_CHARS,
    ) -> IdeTop:
        """A client for a new (not yet started) coqidetop in a private directory, in ``sandbox``.

        ``header`` (Coq source) is written to ``header.v`` there and loaded with ``-l header.v``; a
        header that does not compile makes the process exit during ``start`` (``ProcessExited``; the
        error is in ``proc.stderr_tail()``). stderr goes to a file, never into the XML stream."""
        extra = ["-l", HEADER_FILE] if header is not None else []
        proc = ManagedProcess(
            cls.argv(executable, *extra),
            memory_limit_mb=memory_limit_mb,
            scrub_env=True,
            private_tmpdir=True,
            sandbox=sandbox,
            stderr_file=True,
        )
        if header is not None:
            workdir = proc.workdir
            assert workdir is not None
            with open(os.path.join(workdir, HEADER_FILE), "w", encoding="utf-8") as fh:
                fh.write(header)
        return cls(proc, max_answer_chars=max_answer_chars)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, deadline: float) -> int:
        """Spawn the process and ``Init``; returns the root state id (after command-line loads)."""
        self.spawn()
        return self.init(deadline)

    def spawn(self) -> None:
        """Start the process without waiting for it (it loads its ``-l`` files meanwhile)."""
        self.proc.start()

    def init(self, deadline: float) -> int:
        """``Init``: answered once the command-line files are loaded; returns the root state id."""
        value = self._ask(_call("Init", '<option val="none"/>'), deadline)
        if not isinstance(value, ET.Element):
            raise IdeProtocolError(f"Init failed: {value.message}", tail=self.proc.tail)
        self.root_state = self.tip = _state_id(value)
        self.issued.add(self.root_state)
        self.last_issued = self.root_state
        return self.root_state

    def close(self) -> None:
        self.proc.close()

    @property
    def alive(self) -> bool:
        return self.proc.alive

    # -- calls -----------------------------------------------------------------------------------
    def add(self, text: str, on: int, deadline: float, *, verbose: bool = False) -> Added | CoqFailure:
        """``Add``: parse the first sentence of ``text`` on top of state ``on`` (which must be the tip).

        Coq reads one sentence and ignores the rest of ``text``; use ``parses_to_end`` or
        ``split_sentences`` to know how much it read. Nothing runs until ``goals``/``status``/``observe``.
        """
        value = self._ask(_add_call(text, on, verbose), deadline, text=text)
        return self._added(value)

    def _added(self, value: ET.Element | CoqFailure) -> Added | CoqFailure:
        if isinstance(value, CoqFailure):
            return value
        # <value good><pair><state_id/><union in_l unit | in_r state_id></pair>
        kids = list(value)
        if len(kids) != 1 or kids[0].tag != "pair" or not len(kids[0]) or kids[0][0].tag != "state_id":
            raise IdeProtocolError(f"unexpected Add answer {ET.tostring(value)[:200]!r}")
        new = int(kids[0][0].get("val", "-1"))
        if new <= 0:
            raise IdeProtocolError(f"Add answered state {new}")
        if new <= self.last_issued:
            raise IdeDesync(f"Add answered state {new}, which Coq gave us before or is not new",
                            tail=self.proc.tail)
        self.issued.add(new)
        self.last_issued = self.tip = new
        return Added(new)

    def edit_at(self, state_id: int, deadline: float) -> CoqFailure | None:
        """``Edit_at``: make ``state_id`` the tip again (states after it are dropped)."""
        value = self._ask(_call("Edit_at", _sid(state_id)), deadline)
        if isinstance(value, CoqFailure):
            return value
        union = value.find("union")
        if union is None or union.get("val") != "in_l":
            # in_r: Coq kept the sentences after a closed proof (a "focused zone"); we never want that
            answer = ET.tostring(value)[:200]
            raise IdeProtocolError(f"Edit_at {state_id} did not make it the tip: {answer!r}")
        self.tip = state_id
        return None

    def observe(self, deadline: float) -> CoqFailure | None:
        """Execute the document up to the tip (a ``Status`` call; coqidetop 8.16 has no ``Observe``)."""
        value = self.status(deadline)
        return value if isinstance(value, CoqFailure) else None

    def goals(self, deadline: float) -> Goals | CoqFailure | None:
        """``Goal``: execute up to the tip and return its structured goals (``None``: no open proof)."""
        return self._goals_of(self._ask(_call("Goal", "<unit/>"), deadline))

    @staticmethod
    def _goals_of(value: ET.Element | CoqFailure) -> Goals | CoqFailure | None:
        if isinstance(value, CoqFailure):
            return value
        kids = list(value)
        if len(kids) != 1 or kids[0].tag != "option":
            raise IdeProtocolError(f"unexpected Goal answer {ET.tostring(value)[:200]!r}")
        opt = kids[0]
        if opt.get("val") == "none":
            return None
        if opt.get("val") != "some" or len(opt) != 1:
            raise IdeProtocolError(f"unexpected Goal option {ET.tostring(opt)[:200]!r}")
        return _goals(opt[0])

    def status(self, deadline: float, *, force: bool = False) -> Status | CoqFailure:
        """``Status``: execute up to the tip; the open proofs."""
        value = self._ask(_call("Status", _bool(force)), deadline)
        if isinstance(value, CoqFailure):
            return value
        st = value.find("status")
        if st is None or len(st) != 4:
            raise IdeProtocolError(f"unexpected Status answer {ET.tostring(value)[:200]!r}")
        path = tuple(s.text or "" for s in _children(st[0], "string"))
        name_opt = st[1]
        name = None
        if name_opt.get("val") == "some":
            inner = name_opt.find("string")
            name = (inner.text or "") if inner is not None else ""
        proofs = tuple(s.text or "" for s in _children(st[2], "string"))
        return Status(path=path, proof_name=name, all_proofs=proofs)

    def query(self, text: str, state_id: int, deadline: float) -> list[Message] | CoqFailure:
        """``Query``: run the command(s) in ``text`` at ``state_id`` without changing the document.

        Coq parses and runs *every* sentence of ``text`` (in a state it throws away afterwards), so
        never pass text a model wrote. Returns the messages the command printed (display text)."""
        arg = _pair('<route_id val="0"/>', _pair(_string(text), _sid(state_id)))
        value = self._ask(_call("Query", arg), deadline)
        if isinstance(value, CoqFailure):
            return value
        return list(self.messages)

    # -- what Coq parsed --------------------------------------------------------------------------
    def parses_to_end(self, text: str, on: int, deadline: float) -> CoqFailure | None:
        """``None`` iff Coq's parser reads all of ``text`` as the beginning of one unfinished sentence.

        ``Add(text)`` must fail with a syntax error located at the end of ``text`` (Coq's parser
        consumed every token and wanted more). Anything else -- an earlier error, or a sentence that
        ended inside ``text`` (``Add`` accepted it; it is dropped again with ``Edit_at``) -- comes back
        as a ``CoqFailure`` saying where Coq stopped. Nothing is executed."""
        got = self.add(text, on, deadline)
        verdict = _probe_verdict(got, text, on)
        if isinstance(got, Added):
            failure = self.edit_at(on, deadline)
            if failure is not None:
                raise IdeProtocolError(f"cannot drop a probe sentence: {failure.message}")
        return verdict

    def run_sentence(self, text: str, on: int, deadline: float, run_deadline: float) -> SentenceRun:
        """``parses_to_end(text)``, ``Add(text + ".")`` and ``Goal``, pipelined (one write, three answers).

        The probe's verdict decides; the other two answers are only used when it says ``text`` parses
        to its end. Coq's ``Add`` only ever parses the *first* sentence of its text, so whatever the
        verdict, what may have run is ``text``'s first sentence (a caller that wraps untrusted text
        in ``Timeout T ( ... )`` knows it is a tactic). When the verdict is a failure the document is
        taken back to ``on`` before returning. ``run_deadline`` bounds all three answers: the
        execution (``Goal``) included, whatever the tactic forked or waits for (``par:`` waits for a
        worker that Coq's ``Timeout`` does not stop); ``deadline`` bounds taking a probe back."""
        self.proc.send(_add_call(text, on) + _add_call(text + ".", on) + _call("Goal", "<unit/>"))
        first = min(deadline, run_deadline)
        # the two ``Add`` answers were written (and flushed) before coqidetop read the ``Goal`` call, so
        # before the tactic ran: a process it forked may already exist when they are read (psatz's
        # csdpcert under load); the tree is checked once coqidetop is idle, at the last answer
        probe = self._added(self._read(first, text=text, idle=False))
        verdict = _probe_verdict(probe, text, on)
        added = self._added(self._read(first, text=text + ".", idle=False))
        goals = self._goals_of(self._read(run_deadline))
        if verdict is not None:
            failure = self.edit_at(on, deadline)
            if failure is not None:
                raise IdeProtocolError(f"cannot drop a probe sentence: {failure.message}")
            return SentenceRun(parse_failure=verdict)
        if not isinstance(added, Added):  # cannot happen once the probe read to the end; refuse it
            return SentenceRun(parse_failure=added)
        return SentenceRun(parse_failure=None, added=added, goals=goals)

    def split_sentences(self, source: str, on: int, deadline: float) -> Iterator[Sentence | CoqFailure]:
        """Run ``source`` sentence by sentence on top of ``on``; yield each ``Sentence`` as Coq read it.

        Each sentence is added and executed (``observe``) before the next is parsed, because a
        sentence can change the grammar. Stops after yielding the first ``CoqFailure`` (a syntax or
        execution error; its location is relative to ``source``). Leading white space and comments
        before a sentence are skipped as Coq skips them."""
        pos, tip = 0, on
        while True:
            start = skip_blanks_and_comments(source, pos)
            if start is None or start >= len(source):
                return
            chunk = source[pos:]
            added: Added | None = None
            last: CoqFailure | None = None
            end = pos
            for k in _candidate_ends(chunk):
                got = self.add(chunk[:k], tip, deadline)
                if isinstance(got, Added):
                    added, end = got, pos + k
                    break
                last = got
            if added is None:
                if last is None:
                    last = CoqFailure("no sentence end", None, tip)
                loc = None if last.loc is None else (last.loc[0] + pos, last.loc[1] + pos)
                yield CoqFailure(last.message, loc, tip)
                return
            failure = self.observe(deadline)
            if failure is not None:
                self.edit_at(tip, deadline)
                loc = None if failure.loc is None else (failure.loc[0] + pos, failure.loc[1] + pos)
                yield CoqFailure(failure.message, loc, tip)
                return
            tip = added.state_id
            yield Sentence(start=start, end=end, text=source[start:end], state_id=tip)
            pos = end

    def load_source(self, loaded: list[tuple[str, int]], base: int, source: str,
                    deadline: float) -> int | CoqFailure:
        """Make the document ``base`` + the sentences of ``source``, executed; ``loaded`` lists the
        sentences on ``base`` now, (text, state id after it), and is updated in place.

        The leading sentences of ``loaded`` that ``source`` begins with (the same text, then a blank
        or the end) are kept: the state after the same sentences is the same state. The document
        goes back (``Edit_at``) to the last one kept and the rest of ``source`` is added
        (``split_sentences``). Returns the state after the last sentence, or the ``CoqFailure`` of a
        sentence that fails (the document is then at the sentence before it; ``loaded`` lists what
        is on it)."""
        tip, pos, kept = base, 0, 0
        for text, state in loaded:
            start = skip_blanks_and_comments(source, pos)
            if start is None or not source.startswith(text, start):
                break
            end = start + len(text)
            if end < len(source) and source[end] not in COQ_BLANKS:  # the new sentence goes on
                break
            tip, pos, kept = state, end, kept + 1
        del loaded[kept:]
        if self.tip != tip:
            failure = self.edit_at(tip, deadline)
            if failure is not None:
                return failure
        for got in self.split_sentences(source[pos:], tip, deadline):
            if isinstance(got, CoqFailure):
                return got
            loaded.append((got.text, got.state_id))
            tip = got.state_id
        return tip

    # -- the wire ----------------------------------------------------------------------------------
    def _ask(self, request: str, deadline: float, *, text: str = "") -> ET.Element | CoqFailure:
        """Send one call; read feedback until its ``<value>``; ``text`` maps failure locations."""
        self.proc.send(request)
        return self._read(deadline, text=text)

    def _read(self, deadline: float, *, text: str = "", idle: bool = True) -> ET.Element | CoqFailure:
        """Read feedback until the next ``<value>`` (the answer to the oldest call not yet read).

        ``idle``: no call is left unanswered after this one, so the process tree must be the prover's
        own (``ManagedProcess.tree_change``); False for an earlier answer of pipelined calls, when
        coqidetop may already be running the next call's tactic and whatever it forked."""
        self.messages = []
        self.dropped_messages = 0
        budget = self.max_answer_chars
        while True:
            elem = self._stream.pop()
            while elem is None:
                if budget <= 0:
                    raise IdeProtocolError(
                        f"answer longer than {self.max_answer_chars} characters", tail=self.proc.tail
                    )
                chunk = self.proc.read_chunk(deadline, min(65536, budget))
                budget -= len(chunk)
                self._stream.feed(chunk)
                elem = self._stream.pop()
            if elem.tag == "feedback":
                self._feedback(elem)
                continue
            if elem.tag != "value":
                raise IdeProtocolError(f"unexpected <{elem.tag}> from coqidetop", tail=self.proc.tail)
            change = self.proc.tree_change() if idle else None
            if change is not None:
                raise IdeDesync(
                    f"answer read after the process tree changed ({change}): it may not be our "
                    "process's", tail=self.proc.tail,
                )
            if elem.get("val") == "good":
                return elem
            if elem.get("val") != "fail":
                raise IdeProtocolError(f"unexpected value {elem.get('val')!r}", tail=self.proc.tail)
            loc = None
            if elem.get("loc_s") is not None and elem.get("loc_e") is not None:
                s, e = int(elem.get("loc_s", "0")), int(elem.get("loc_e", "0"))
                loc = (_byte_to_char(text, s), _byte_to_char(text, e)) if text else (s, e)
            sid = elem.find("state_id")
            valid = int(sid.get("val", "0")) if sid is not None else 0
            if valid and self.issued and valid not in self.issued:
                raise IdeDesync(f"a failure names state {valid}, which Coq never gave us",
                                tail=self.proc.tail)
            message = " ".join(richpp_text(elem.find("richpp")).split())[:MAX_MESSAGE_CHARS]
            return CoqFailure(message=message, loc=loc, valid_state=valid)

    def _feedback(self, elem: ET.Element) -> None:
        content = elem.find("feedback_content")
        if content is None or content.get("val") != "message":
            return
        if len(self.messages) >= MAX_MESSAGES:
            self.dropped_messages += 1
            return
        msg = content.find("message")
        level = msg.find("message_level") if msg is not None else None
        sid = elem.find("state_id")
        self.messages.append(
            Message(
                level=level.get("val", "") if level is not None else "",
                text=" ".join(richpp_text(msg.find("richpp") if msg is not None else None).split())[
                    :MAX_MESSAGE_CHARS
                ],
                state_id=int(sid.get("val", "0")) if sid is not None else 0,
            )
        )


def _add_call(text: str, on: int, verbose: bool = False) -> str:
    arg = _pair(
        _pair(_pair(_pair(_string(text), _int(0)), _pair(_sid(on), _bool(verbose))), _int(0)),
        _pair(_int(1), _int(0)),
    )
    return _call("Add", arg)


def _probe_verdict(got: Added | CoqFailure, text: str, on: int) -> CoqFailure | None:
    """``None`` when ``Add(text)`` failed exactly at the end of ``text`` (Coq read all of it)."""
    if isinstance(got, Added):
        return CoqFailure("Coq read a complete sentence before the end of the text", None, on)
    if got.loc is not None and got.loc[0] == len(text):
        return None
    return got


def _state_id(value: ET.Element) -> int:
    sid = value.find("state_id")
    if sid is None:
        raise IdeProtocolError(f"no state id in {ET.tostring(value)[:200]!r}")
    return int(sid.get("val", "0"))


def skip_blanks_and_comments(text: str, pos: int) -> int | None:
    """Index of the first character at or after ``pos`` that is not a Coq blank or in a comment
    (comments by Coq's rules, ``sentences.comment_end``). ``None`` when a comment is not closed."""
    n = len(text)
    i = pos
    while i < n:
        if text[i] in COQ_BLANKS:
            i += 1
        elif text.startswith("(*", i):
            try:
                i = comment_end(text, i)
            except InvalidTactic:
                return None
        else:
            return i
    return i


def _candidate_ends(chunk: str) -> Iterator[int]:
    """Positions (exclusive ends, increasing) where Coq's lexer could end the first sentence of ``chunk``.

    Every end Coq's lexer can produce is listed (cLexer.ml): after a ``.`` followed by one of
    ``COQ_BLANKS`` or by the end (``...`` ends the same way); after the maximal run of one bullet
    character or after a brace when it is the first token (Coq lexes bullets and braces as such only
    between commands); after any ``{`` (``2: {``). No position is listed where the whole text
    continues a token (a ``.`` followed by anything else, a bullet character followed by the same
    character), so the first candidate Coq accepts is the end of Coq's first sentence: a shorter
    accepted candidate would end a sentence in the whole text too. Candidates inside comments or
    strings are harmless: Coq rejects them (unterminated comment/string)."""
    n = len(chunk)
    first = skip_blanks_and_comments(chunk, 0)
    if first is None:
        return
    if first < n and chunk[first] in "-+*":
        j = first
        while j + 1 < n and chunk[j + 1] == chunk[first]:
            j += 1
        yield j + 1
    elif first < n and chunk[first] == "}":
        yield first + 1
    for i in range(first, n):
        ch = chunk[i]
        if ch == "." and (i + 1 == n or chunk[i + 1] in COQ_BLANKS) or ch == "{":
            yield i + 1


def ide_executable_for(coqtop: str) -> str:
    """The coqidetop that belongs to a ``coqtop`` executable (``/usr/bin/coqtop`` -> ``coqidetop.opt``)."""
    base = coqtop[: -len("coqtop")] if coqtop.endswith("coqtop") else ""
    for name in ("coqidetop.opt", "coqidetop"):
        if shutil.which(base + name):
            return base + name
    return base + "coqidetop.opt"
