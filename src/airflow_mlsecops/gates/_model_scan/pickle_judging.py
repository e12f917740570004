"""The pickles in a part (plain, joblib, legacy ``torch.save``, polyglot prefixes), judged against the allowlist.

:func:`pickle_stream` analyses every pickle of a stream with :func:`~.pickles.analyze_pickle`;
:func:`pickle_problems` turns an analysis into problems: each ``module.name`` reference that is
not allowed (a known gadget is critical), each issue of the analysis, and a pickle that does not parse.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_mlsecops.evidence.models import Severity
from airflow_mlsecops.gates._model_scan.allowlist import judge
from airflow_mlsecops.gates._model_scan.formats import Problem
from airflow_mlsecops.gates._model_scan.parts import FileReport, Part, byte_source
from airflow_mlsecops.gates._model_scan.pickle_results import Issue, PickleAnalysis
from airflow_mlsecops.gates._model_scan.pickles import OPCODE_BYTES, TORCH_LEGACY_MAGIC, analyze_pickle

if TYPE_CHECKING:
    from airflow_mlsecops.gates._model_scan.context import ScanContext


def pickle_stream(part: Part) -> tuple[list[PickleAnalysis], bool]:
    """Every pickle in the stream, one after another (joblib-aware); True for a legacy torch file.

    Bytes after the last pickle that are not a pickle become a trailing-data issue, except in a
    legacy ``torch.save`` file, where raw tensor storage follows its five pickles.
    """
    with part.opener() as fh:
        src = byte_source(part, fh)
        first = analyze_pickle(src)
        analyses = [first]
        legacy = False
        if first.complete and type(first.result) is int and first.result == TORCH_LEGACY_MAGIC:
            for _ in range(4):  # protocol version, system info, the model, storage keys
                nxt = analyze_pickle(src)
                analyses.append(nxt)
                if not nxt.complete:
                    break
            legacy = analyses[-1].complete
        elif first.complete:
            while src.fill(1):
                start = src.offset
                if src.buf[src.pos] in OPCODE_BYTES:
                    nxt = analyze_pickle(src)
                    if nxt.complete or nxt.effects or nxt.undecidable:
                        analyses.append(nxt)
                        if nxt.complete:
                            continue
                        break
                trailing = src.offset - start + src.drain()
                first.issues.append(trailing_data_issue(start, trailing))
                break
    if any(a.joblib_arrays for a in analyses):
        # pickle.load reads the same bytes without joblib's array handling: judge that reading too.
        with part.opener() as fh:
            plain = analyze_pickle(byte_source(part, fh), joblib=False)
        spans = [span for a in analyses for span in a.nested_spans]

        def confused(offset: int) -> bool:
            """Inside an object-array block: a complete pickle joblib reads (and the scanner judges) with its
            own memo, which pickle.load reads against the outer memo, fetching the outer stream's values."""
            return any(begin <= offset < end for begin, end in spans)

        for ref, seen in plain.refs.items():
            if ref not in first.refs:
                if confused(seen.offset) and judge(ref)[0] != "dangerous":
                    continue  # a mix of the file's own names that pickle.load fails on; gadgets stay critical
                seen.note = "read only by pickle.load, in bytes joblib.load skips as array data"
                first.refs[ref] = seen
                first.calls[ref] += plain.calls.get(ref, 0)
        for issue in plain.issues:
            if confused(issue.offset) and issue.severity != "critical":
                continue
            if issue.kind != "nested":
                issue.detail += " (when read by pickle.load instead of joblib.load)"
                first.issues.append(issue)
    return analyses, legacy


def report_pickles(scanner: ScanContext, analyses: list[PickleAnalysis], legacy: bool, part: Part, report: FileReport) -> str:
    """Record the problems and globals of a part's pickles; returns its format (``joblib``, ``torch-legacy``, ``pickle``)."""
    first = analyses[0]
    joblib = any(a.joblib_arrays for a in analyses)
    fmt = "joblib" if joblib else "torch-legacy" if legacy else "pickle"
    part_globals: Counter[str] = Counter()
    for analysis in analyses:
        for problem in pickle_problems(analysis, scanner.allow):
            scanner.problem(report, part, problem)
        part_globals.update(analysis.globals_count())
    report.globals.update(part_globals)
    scanner.record_part(
        report,
        part,
        fmt,
        protocol=first.protocol,
        pickles=len(analyses),
        opcodes=sum(a.opcodes for a in analyses),
        globals=dict(sorted(part_globals.items())),
        **({"joblib_arrays": sum(a.joblib_arrays for a in analyses)} if joblib else {}),
    )
    return fmt


def pickle_problems(analysis: PickleAnalysis, allow: frozenset[str]) -> Iterator[Problem]:
    """What is wrong with one analysed pickle: references not allowed (besides ``allow``), issues, a parse error."""
    for ref, seen in analysis.refs.items():
        status, what = judge(ref, allow)
        if status == "allowed":
            continue
        times = f" ({seen.count} references)" if seen.count > 1 else ""
        calls = analysis.calls.get(ref, 0)
        called = f" and call it {calls} time(s)" if calls else ""
        alias = f" (written as {seen.written_as})" if seen.written_as else ""
        alias += f" ({seen.note})" if seen.note else ""
        if status == "dangerous":
            yield Problem(
                "pickle-gadget",
                Severity.CRITICAL,
                f"pickle references {ref}{alias}{times}, a known code-execution gadget: {what}; loading the "
                f"file would import it{called}",
                seen.offset,
            )
        else:
            yield Problem(
                "pickle-unknown-global",
                Severity.HIGH,
                f"pickle references {ref}{alias}{times}, which is not on the allowlist of what model files "
                f"use; loading the file would import it{called}",
                seen.offset,
            )
    grouped: dict[tuple[str, str], list[Any]] = {}
    for issue in analysis.issues:
        if issue.kind == "nested":
            continue
        entry = grouped.setdefault((issue.kind, issue.detail), [issue, 0])
        entry[1] += 1
    for (kind, detail), (issue, count) in grouped.items():
        severity = Severity(issue.severity)
        more = f" ({count} times)" if count > 1 else ""
        code = kind if kind == "trailing-data" else f"pickle-{kind}"
        yield Problem(code, severity, detail + more, issue.offset, kind="security")
    if analysis.undecidable and not any(issue.kind == "loader-dependent" for issue in analysis.issues):
        yield Problem(
            "pickle-undecodable",
            Severity.HIGH,
            f"starts like a pickle but cannot be read exactly as CPython's unpicklers read it "
            f"({analysis.undecidable}); a loader may run what follows, so it is never judged as text",
            analysis.error_offset,
        )
    if not analysis.complete:
        yield Problem(
            "pickle-malformed",
            Severity.HIGH,
            f"pickle does not parse: {analysis.error}; an unpickler would run everything before this point",
            analysis.error_offset,
            kind="unreadable",
        )


def polyglot_probe(scanner: ScanContext, part: Part, report: FileReport, fmt: str) -> None:
    """A file of another format that also starts with pickle opcodes doing imports or calls."""
    with part.opener() as fh:
        probe = analyze_pickle(byte_source(part, fh), joblib=False)
    if not probe.effects:
        return
    scanner.problem(
        report,
        part,
        Problem("polyglot", Severity.HIGH, f"is a {fmt} file that also starts with a pickle which imports or calls", 0),
    )
    for problem in pickle_problems(probe, scanner.allow):
        if problem.code != "pickle-malformed":
            scanner.problem(report, part, problem)
    report.globals.update(probe.globals_count())


def trailing_data_issue(offset: int, count: int) -> Issue:
    """The issue for ``count`` bytes at ``offset`` after a pickle's ``STOP`` that are not a pickle."""
    return Issue(
        "trailing-data",
        f"{count} bytes after the pickle's STOP are not a pickle (content hidden from pickle.load, read by other loaders)",
        offset,
        "medium",
    )
