"""Static analysis of pickle streams (protocols 0-5): a symbolic stack machine that never unpickles.

:func:`analyze_pickle` walks the opcode stream the way :class:`pickle.Unpickler` would, but every
object it would build is a symbolic stand-in: strings and small numbers keep their values (so
``STACK_GLOBAL`` names built on the stack or fetched from the memo resolve exactly), large byte and
string payloads are skipped without being read (seeked over in regular files), a ``GLOBAL`` /
``STACK_GLOBAL`` / ``INST`` becomes a :class:`~.pickle_values.Global` naming ``module.name`` (mapped
through :mod:`_compat_pickle` for protocols < 3, as ``find_class`` does), and a call (``REDUCE``,
``NEWOBJ``, ``NEWOBJ_EX``, ``OBJ``, ``INST``) becomes an :class:`~.pickle_values.Obj`. No module named
by the stream is ever imported and no callable is ever called.

joblib files are pickles whose ``NumpyArrayWrapper`` objects are followed, in the stream, by raw
array bytes (or a nested pickle for object arrays). When a ``BUILD`` completes such a wrapper, the
analyser sizes the array from its symbolic shape and dtype exactly as joblib does, and skips the
bytes or analyses the nested pickle. joblib recognises a wrapper with ``isinstance``, whatever made
it: the analyser follows every construction it can name (a call of the class, ``NEWOBJ``, the
class-first reconstructors of :data:`~.pickle_values.CLASS_FIRST`) and reports any other hand-over
of the wrapper class (to a call, a ``BUILD`` state, a container beyond what it tracks) as a
``joblib-wrapper`` issue.

This module holds the opcode walk and the opcodes that move values around (stack, memo, containers,
imports, calls, ``BUILD``); around it: :mod:`.pickle_literals` (opcodes that decode a literal
argument), :mod:`.pickle_values` (the symbolic stand-ins), :mod:`.pickle_results` (what an analysis
reports) and :mod:`.joblib_arrays` (sizing joblib's array blocks).
"""

from __future__ import annotations

import _compat_pickle
import lzma
import sys
import zlib
from collections.abc import Callable
from struct import unpack
from typing import Any

from airflow_mlsecops.exceptions import PickleError
from airflow_mlsecops.gates._model_scan import pickle_args
from airflow_mlsecops.gates._model_scan.joblib_arrays import rebuild_dtype, shape_count
from airflow_mlsecops.gates._model_scan.pickle_literals import LiteralOpcodes
from airflow_mlsecops.gates._model_scan.pickle_results import Issue, PickleAnalysis, RefSeen
from airflow_mlsecops.gates._model_scan.pickle_values import (
    BUFFER,
    FROZENSET,
    Global,
    Obj,
    Persistent,
    SymSet,
    describe,
    never_callable,
    never_exact_str,
)
from airflow_mlsecops.gates._model_scan.source import ByteSource, LineTooLong, Truncated

#: The ``module.name`` joblib replaces numpy arrays with.
JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
#: The first value of a legacy (non-zip) ``torch.save`` file.
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_CONTAINER_CAP = 64  # symbolic lists/dicts/tuples keep this many items (no opcode reads them back)


def _identifiers(dotted: str) -> bool:
    return bool(dotted) and all(part.isidentifier() for part in dotted.split("."))


class _Machine(LiteralOpcodes):
    """One pickle stream's symbolic unpickler."""

    def __init__(
        self,
        src: ByteSource,
        *,
        joblib: bool,
        memo: dict[int, Any] | None = None,
        stack: list[Any] | None = None,
    ) -> None:
        self.src = src
        self.joblib = joblib
        self.stack: list[Any] = stack if stack is not None else []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = memo if memo is not None else {}
        self.proto = 0
        self.frame_end = -1  # where the current FRAME ends (-1: none)
        self.wrapper_seen = False  # joblib's wrapper class was imported: watch where it goes
        self.out = PickleAnalysis(start=src.offset)
        self.dispatch: list[Callable[[int], None] | None] = [None] * 256
        for code, handler in _HANDLERS.items():
            self.dispatch[code] = getattr(self, handler)

    # -- helpers ---------------------------------------------------------------------------------

    def _pop(self, offset: int) -> Any:
        if not self.stack:
            raise PickleError("stack underflow", offset)
        return self.stack.pop()

    def _top(self, offset: int) -> Any:
        if not self.stack:
            raise PickleError("stack underflow", offset)
        return self.stack[-1]

    def _pop_mark(self, offset: int) -> list[Any]:
        if not self.metastack:
            raise PickleError("MARK expected but not found", offset)
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _ref(self, module: Any, name: Any, offset: int, opcode: str) -> Global:
        written = f"{module}.{name}"
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        ref = f"{module}.{name}"
        if ref == JOBLIB_WRAPPER and self.joblib:
            self.wrapper_seen = True
        seen = self.out.refs.get(ref)
        if seen is None:
            self.out.refs[ref] = RefSeen(1, offset, opcode, written if written != ref else None)
        else:
            seen.count += 1
        if _identifiers(module):  # find_class imports the module before it looks the name up
            self.out.effects += 1
        return Global(ref, offset)

    def _call(self, func: Any, args: Any, kind: str, offset: int) -> Obj:
        if never_callable(func):  # both unpicklers raise before anything runs (TypeError, UnpicklingError)
            raise PickleError(f"{kind} calls {describe(func)}, which is not callable", offset)
        self.out.effects += 1
        if isinstance(func, Global):
            self.out.calls[func.ref] += 1
        else:
            self.out.issues.append(Issue("call-non-global", f"{kind} calls {describe(func)}, not a named callable", offset))
        obj = Obj(func, args, kind, offset)
        if self.wrapper_seen and args and obj.class_ref() != JOBLIB_WRAPPER and _holds_wrapper(args, 0):
            self._wrapper_hidden(f"{kind} passes joblib's NumpyArrayWrapper class to {describe(func)}", offset)
        return obj

    def _wrapper_hidden(self, how: str, offset: int) -> None:
        """joblib reads array data after a BUILD on *any* instance of its wrapper; one made in a way the
        scanner cannot follow would make joblib skip bytes the scanner reads as opcodes (or the reverse)."""
        self.out.issues.append(
            Issue(
                "joblib-wrapper",
                f"{how}: an array wrapper built that way is one the scanner cannot follow, and joblib.load would "
                "read the bytes after it differently from this scan",
                offset,
            )
        )

    def _capped(self, items: list[Any], offset: int) -> list[Any]:
        """The first items a symbolic container keeps; a wrapper class among the dropped ones is a finding."""
        if len(items) > _CONTAINER_CAP and self.wrapper_seen and any(_holds_wrapper(v, 3) for v in items[_CONTAINER_CAP:]):
            self._wrapper_hidden("a container holds joblib's NumpyArrayWrapper class beyond what the scanner follows", offset)
        return items[:_CONTAINER_CAP]

    def _across_frame(self, offset: int) -> None:
        """An opcode that starts inside a FRAME and reads past its end: each loader reads on differently.

        ``pickle.loads`` reads straight on; ``pickle.load`` of a file (``numpy.load``, ``torch.load``)
        drops the rest of the frame and reads on after it; ``joblib.load`` fails. Picklers never
        write this (a frame ends at an opcode boundary), so it is rejected.
        """
        self.out.undecidable = self.out.undecidable or "an opcode reads across the end of its frame"
        self.out.issues.append(
            Issue(
                "loader-dependent",
                f"the opcode at byte {offset} reads past the end of its frame (byte {self.frame_end}): pickle.load "
                "from a file skips the rest of the frame and reads different opcodes than pickle.loads",
                offset,
            )
        )
        self.frame_end = -1

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> PickleAnalysis:
        out = self.out
        src = self.src
        dispatch = self.dispatch
        opcodes = 0
        last = offset = src.offset
        try:
            while True:
                offset = src.base + src.pos
                if last < self.frame_end < offset:  # the previous opcode read across its frame's end
                    self._across_frame(last)
                last = offset
                if src.pos >= len(src.buf) and not src.fill(1):
                    raise PickleError("stream ends before STOP", src.offset)
                code = src.buf[src.pos]
                src.pos += 1
                opcodes += 1
                if code == 0x2E:  # STOP
                    out.result = self._pop(offset)
                    out.complete = True
                    break
                handler = dispatch[code]
                if handler is None:
                    raise PickleError(f"invalid opcode 0x{code:02x}", offset)
                handler(offset)
        except PickleError as exc:  # every CPython unpickler raises here too
            out.error, out.error_offset = str(exc), exc.offset
        except LineTooLong as exc:
            out.error, out.error_offset = f"cannot be read: {exc}", offset
            out.undecidable = out.undecidable or f"a text line longer than the scanner reads ({exc})"
        except Truncated as exc:
            out.error, out.error_offset = f"truncated: {exc}", offset
        except (ValueError, OverflowError, IndexError, KeyError, TypeError, RecursionError) as exc:
            # not a failure known to match CPython's: the scanner cannot tell what a loader reads here
            out.error, out.error_offset = f"invalid argument: {exc}", offset
            out.undecidable = out.undecidable or f"the scanner could not decode an argument as CPython does ({exc})"
        except (EOFError, OSError, zlib.error, lzma.LZMAError, RuntimeError) as exc:
            # the stream under the pickle broke (a truncated or corrupt compressed file, a bad zip member)
            out.error, out.error_offset = f"the stream cannot be read: {type(exc).__name__}: {exc}", offset
        out.opcodes += opcodes
        out.protocol = self.proto
        out.end = src.offset
        return out

    # -- opcodes ---------------------------------------------------------------------------------

    def op_proto(self, offset: int) -> None:
        proto = self.src.read(1)[0]
        if proto > 5:
            raise PickleError(f"unsupported pickle protocol {proto}", offset)
        self.proto = proto

    def op_frame(self, offset: int) -> None:
        (size,) = unpack("<Q", self.src.read(8))
        if size > sys.maxsize:
            raise PickleError("frame size too large", offset)
        end = self.src.offset + size
        if offset < self.frame_end < end:  # a frame reaching past the frame it starts in
            self._across_frame(offset)
        self.frame_end = end

    def op_mark(self, offset: int) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def op_pop(self, offset: int) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark(offset)

    def op_pop_mark(self, offset: int) -> None:
        self._pop_mark(offset)

    def op_dup(self, offset: int) -> None:
        self.stack.append(self._top(offset))

    def op_next_buffer(self, offset: int) -> None:
        self.stack.append(BUFFER)

    def op_readonly_buffer(self, offset: int) -> None:
        self._top(offset)

    def op_empty_tuple(self, offset: int) -> None:
        self.stack.append(())

    def op_tuple(self, offset: int) -> None:
        items = self._pop_mark(offset)  # before self.stack is read: MARK swapped stacks
        self.stack.append(tuple(self._capped(items, offset)))

    def op_tuple1(self, offset: int) -> None:
        self.stack.append((self._pop(offset),))

    def op_tuple2(self, offset: int) -> None:
        b = self._pop(offset)
        a = self._pop(offset)
        self.stack.append((a, b))

    def op_tuple3(self, offset: int) -> None:
        c = self._pop(offset)
        b = self._pop(offset)
        a = self._pop(offset)
        self.stack.append((a, b, c))

    def op_empty_list(self, offset: int) -> None:
        self.stack.append([])

    def op_empty_dict(self, offset: int) -> None:
        self.stack.append({})

    def op_empty_set(self, offset: int) -> None:
        self.stack.append(SymSet())

    def op_frozenset(self, offset: int) -> None:
        items = self._pop_mark(offset)
        if self.wrapper_seen and _holds_wrapper(items, 0):
            self._wrapper_hidden("a frozenset holds joblib's NumpyArrayWrapper class", offset)
        self.stack.append(FROZENSET)

    def op_list(self, offset: int) -> None:
        items = self._pop_mark(offset)
        self.stack.append(self._capped(items, offset))

    def op_dict(self, offset: int) -> None:
        items = self._pop_mark(offset)
        if len(items) % 2:
            raise PickleError("DICT with an odd number of items", offset)
        if len(items) > 2 * _CONTAINER_CAP and self.wrapper_seen:
            self._capped(items[_CONTAINER_CAP:], offset)  # the items _setitems drops
        d: dict[Any, Any] = {}
        self._setitems(d, items)
        self.stack.append(d)

    @staticmethod
    def _setitems(target: Any, items: list[Any]) -> None:
        if isinstance(target, dict):
            for i in range(0, min(len(items), 2 * _CONTAINER_CAP), 2):
                try:
                    target[items[i]] = items[i + 1]
                except TypeError:
                    pass

    def op_append(self, offset: int) -> None:
        value = self._pop(offset)
        target = self._top(offset)
        if isinstance(target, list) and len(target) < _CONTAINER_CAP:
            target.append(value)
        elif self.wrapper_seen and _holds_wrapper(value, 0):
            self._wrapper_hidden("a container holds joblib's NumpyArrayWrapper class beyond what the scanner follows", offset)

    def op_appends(self, offset: int) -> None:
        items = self._pop_mark(offset)
        target = self._top(offset)
        if isinstance(target, list) and len(target) < _CONTAINER_CAP:
            target.extend(self._capped([*target, *items], offset)[len(target) :])
        elif self.wrapper_seen and any(_holds_wrapper(v, 3) for v in items):
            self._wrapper_hidden("a container holds joblib's NumpyArrayWrapper class beyond what the scanner follows", offset)

    def op_additems(self, offset: int) -> None:
        items = self._pop_mark(offset)
        target = self._top(offset)
        if isinstance(target, SymSet) and len(target) < _CONTAINER_CAP:
            target.extend(items[: _CONTAINER_CAP - len(target)])

    def op_setitem(self, offset: int) -> None:
        value = self._pop(offset)
        key = self._pop(offset)
        target = self._top(offset)
        if isinstance(target, dict) and len(target) < _CONTAINER_CAP:
            try:
                target[key] = value
            except TypeError:
                pass
        elif self.wrapper_seen and _holds_wrapper((key, value), 0):
            self._wrapper_hidden("a container holds joblib's NumpyArrayWrapper class beyond what the scanner follows", offset)

    def op_setitems(self, offset: int) -> None:
        items = self._pop_mark(offset)
        target = self._top(offset)
        if len(items) % 2:
            raise PickleError("SETITEMS with an odd number of items", offset)
        if len(items) > 2 * _CONTAINER_CAP and self.wrapper_seen:
            self._capped(items[_CONTAINER_CAP:], offset)  # the items _setitems drops
        if isinstance(target, dict) and len(target) < _CONTAINER_CAP:
            self._setitems(target, items)

    def _memo_get(self, idx: int, offset: int) -> None:
        try:
            self.stack.append(self.memo[idx])
        except KeyError:
            raise PickleError(f"memo value not found at index {idx}", offset) from None

    def op_get(self, offset: int) -> None:
        self._memo_get(self._decide("GET", self._line(), pickle_args.c_index, pickle_args.py_index, offset), offset)

    def op_binget(self, offset: int) -> None:
        self._memo_get(self.src.read(1)[0], offset)

    def op_long_binget(self, offset: int) -> None:
        self._memo_get(unpack("<I", self.src.read(4))[0], offset)

    def op_put(self, offset: int) -> None:
        idx = self._decide("PUT", self._line(), pickle_args.c_index, pickle_args.py_index, offset)
        if idx < 0:
            raise PickleError("negative PUT argument", offset)
        self.memo[idx] = self._top(offset)

    def op_binput(self, offset: int) -> None:
        self.memo[self.src.read(1)[0]] = self._top(offset)

    def op_long_binput(self, offset: int) -> None:
        self.memo[unpack("<I", self.src.read(4))[0]] = self._top(offset)

    def op_memoize(self, offset: int) -> None:
        self.memo[len(self.memo)] = self._top(offset)

    def _names(self, opcode: str, encoding: str, offset: int) -> tuple[str, str]:
        """The module and name lines of ``GLOBAL`` / ``INST``.

        Where the stream ends inside them, ``pickle._Unpickler`` (``joblib.load``) still calls
        ``find_class`` with the lines cut short (its ``readline()[:-1]`` drops their last byte), so
        the module is imported: that reference is recorded before the truncation is reported.
        """
        lines: list[bytes] = []
        for _ in range(2):
            line = self.src.readline(partial=True)
            if not line.endswith(b"\n"):
                names = [*lines, line[:-1], b""][:2]
                try:
                    module, name = (n.decode(encoding) for n in names)
                except UnicodeDecodeError:
                    break
                ref = self._ref(module, name, offset, opcode)
                self.out.refs[ref.ref].note = "read only by joblib.load, which imports it from a line cut by the end of the file"
                break
            lines.append(line[:-1])
        if len(lines) < 2:
            raise Truncated(f"stream ends inside the {opcode} argument at byte {self.src.offset}")
        try:
            return lines[0].decode(encoding), lines[1].decode(encoding)
        except UnicodeDecodeError as exc:  # both unpicklers decode strictly and raise too
            raise PickleError(f"{opcode} names are not {encoding}: {exc.reason}", offset) from None

    def op_global(self, offset: int) -> None:
        module, name = self._names("GLOBAL", "utf-8", offset)
        self.stack.append(self._ref(module, name, offset, "GLOBAL"))

    def op_stack_global(self, offset: int) -> None:
        name = self._pop(offset)
        module = self._pop(offset)
        if type(module) is str and type(name) is str:
            self.stack.append(self._ref(module, name, offset, "STACK_GLOBAL"))
            return
        if never_exact_str(module) or never_exact_str(name):  # both unpicklers check type(...) is str first
            raise PickleError(f"STACK_GLOBAL requires str (module: {describe(module)}, name: {describe(name)})", offset)
        self.out.effects += 1
        self.out.issues.append(
            Issue(
                "dynamic-global",
                f"STACK_GLOBAL imports a name computed at load time (module: {describe(module)}, name: {describe(name)})",
                offset,
                "critical",
            )
        )
        self.stack.append(Global("<computed>", offset))

    def op_inst(self, offset: int) -> None:
        module, name = self._names("INST", "ascii", offset)
        cls = self._ref(module, name, offset, "INST")
        args = self._pop_mark(offset)
        obj = self._call(cls, tuple(self._capped(args, offset)), "INST", offset)
        self._init_fields(obj)
        self.stack.append(obj)

    def op_obj(self, offset: int) -> None:
        args = self._pop_mark(offset)
        if not args:
            raise PickleError("OBJ without a class", offset)
        obj = self._call(args[0], tuple(self._capped(args[1:], offset)), "OBJ", offset)
        self._init_fields(obj)
        self.stack.append(obj)

    def op_newobj(self, offset: int) -> None:
        args = self._pop(offset)
        cls = self._pop(offset)
        self.stack.append(self._call(cls, args, "NEWOBJ", offset))

    def op_newobj_ex(self, offset: int) -> None:
        self._pop(offset)
        args = self._pop(offset)
        cls = self._pop(offset)
        self.stack.append(self._call(cls, args, "NEWOBJ_EX", offset))

    def op_reduce(self, offset: int) -> None:
        args = self._pop(offset)
        func = self._pop(offset)
        obj = self._call(func, args, "REDUCE", offset)
        self._init_fields(obj)
        self.stack.append(obj)

    def op_ext1(self, offset: int) -> None:
        self._ext(self.src.read(1)[0], offset)

    def op_ext2(self, offset: int) -> None:
        self._ext(unpack("<H", self.src.read(2))[0], offset)

    def op_ext4(self, offset: int) -> None:
        self._ext(unpack("<i", self.src.read(4))[0], offset)

    def _ext(self, code: int, offset: int) -> None:
        self.out.effects += 1
        self.out.issues.append(
            Issue("extension", f"extension code {code} names a callable through the copyreg extension registry", offset)
        )
        self.stack.append(Global(f"<extension {code}>", offset))

    def op_persid(self, offset: int) -> None:
        try:
            pid = self._line().decode("ascii")
        except UnicodeDecodeError:  # both unpicklers raise: protocol-0 persistent ids are ASCII
            raise PickleError("persistent IDs in protocol 0 must be ASCII strings", offset) from None
        self.out.persistent_ids += 1
        self.stack.append(Persistent(pid))

    def op_binpersid(self, offset: int) -> None:
        pid = self._pop(offset)
        self.out.persistent_ids += 1
        self.stack.append(Persistent(pid))

    def op_build(self, offset: int) -> None:
        state = self._pop(offset)
        inst = self._top(offset)
        if isinstance(inst, Global):
            self.out.effects += 1
            self.out.issues.append(Issue("build-on-global", f"BUILD sets state on {inst.ref} itself", offset))
            return
        if not isinstance(inst, Obj):
            return
        self.out.effects += 1
        if not self.joblib:
            return  # only joblib's array sizing reads state back
        cls = inst.class_ref()
        if self.wrapper_seen and cls != JOBLIB_WRAPPER and _holds_wrapper(state, 0):
            self._wrapper_hidden(f"BUILD gives joblib's NumpyArrayWrapper class to {describe(inst)}", offset)
        if cls not in (JOBLIB_WRAPPER, "numpy.dtype"):
            return
        fields = inst.fields if inst.fields is not None else {}
        inst.fields = fields
        inst.dtype = None
        if isinstance(state, dict):
            fields.update({k: v for k, v in state.items() if isinstance(k, str)})
        elif isinstance(state, tuple) and len(state) == 2 and all(isinstance(s, (dict, type(None))) for s in state):
            for part in state:
                if part:
                    fields.update({k: v for k, v in part.items() if isinstance(k, str)})
        else:
            fields["__state__"] = state
        if cls == JOBLIB_WRAPPER:
            if offset < self.frame_end and self.src.offset != self.frame_end:
                # joblib reads the array from the file, after the whole frame; the unpickler goes on inside it
                self._across_frame(offset)
            self.frame_end = -1
            self.stack[-1] = self._joblib_array(inst, offset)

    def _init_fields(self, obj: Obj) -> None:
        """A joblib wrapper made by calling its class gets its attributes from ``__init__``.

        ``INST`` and ``OBJ`` without arguments make the object with ``cls.__new__`` only (pickle's
        ``_instantiate``): no ``__init__``, so no default ``numpy_array_alignment_bytes``.
        """
        if obj.kind in ("INST", "OBJ") and not obj.args:
            return
        if self.joblib and isinstance(obj.func, Global) and obj.func.ref == JOBLIB_WRAPPER and obj.kind != "NEWOBJ":
            names = ("subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes")
            fields: dict[str, Any] = {"allow_mmap": False, "numpy_array_alignment_bytes": 16}
            if isinstance(obj.args, tuple):
                fields.update(zip(names, obj.args, strict=False))
            obj.fields = fields

    def _joblib_array(self, wrapper: Obj, offset: int) -> Obj:
        """Consume the array bytes joblib reads after a wrapper's BUILD; return the array stand-in."""
        fields = wrapper.fields or {}
        shape = fields.get("shape")
        count = 1 if isinstance(shape, (tuple, list)) and len(shape) == 0 else shape_count(shape)
        try:
            dtype = rebuild_dtype(fields.get("dtype"))
        except Exception as exc:  # noqa: BLE001 - anything numpy refuses cannot be sized: fail closed
            raise PickleError(f"joblib array wrapper with a dtype that cannot be sized ({exc})", offset) from None
        if count is None:
            raise PickleError(f"joblib array wrapper with an invalid shape {shape!r}", offset)
        self.out.joblib_arrays += 1
        start = self.src.offset
        if dtype.hasobject:
            inner = _Machine(self.src, joblib=False)
            nested = inner.run()
            nested_issue = Issue("nested", f"object array pickled inside the joblib stream at byte {start}", start, "info")
            self.out.merge(nested, keep_errors=False)
            self.out.issues.append(nested_issue)
            self.out.nested_spans.append((start, self.src.offset))
            if not nested.complete:
                raise PickleError(f"nested pickle of a joblib object array: {nested.error}", nested.error_offset or start)
        else:
            if fields.get("numpy_array_alignment_bytes") is not None:
                padding = self.src.read(1)[0]
                self.src.skip(padding)
            nbytes = count * dtype.itemsize
            self.src.skip(nbytes)
            self.out.joblib_array_bytes += nbytes
        return Obj(Global("numpy.ndarray", offset), (), "joblib-array", offset)


def _holds_wrapper(value: Any, depth: int) -> bool:
    """Whether ``value`` is, or holds within a few levels of containers, joblib's wrapper class."""
    if isinstance(value, Global):
        return value.ref == JOBLIB_WRAPPER
    if depth > 6:
        return False
    if isinstance(value, (tuple, list)):
        return any(_holds_wrapper(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_holds_wrapper(v, depth + 1) for pair in value.items() for v in pair)
    return False


_HANDLERS: dict[int, str] = {
    0x80: "op_proto",
    0x95: "op_frame",
    ord("("): "op_mark",
    ord("0"): "op_pop",
    ord("1"): "op_pop_mark",
    ord("2"): "op_dup",
    ord("F"): "op_float",
    ord("I"): "op_int",
    ord("J"): "op_binint",
    ord("K"): "op_binint1",
    ord("M"): "op_binint2",
    ord("L"): "op_long",
    0x8A: "op_long1",
    0x8B: "op_long4",
    ord("N"): "op_none",
    0x88: "op_newtrue",
    0x89: "op_newfalse",
    ord("S"): "op_string",
    ord("T"): "op_binstring",
    ord("U"): "op_short_binstring",
    ord("B"): "op_binbytes",
    ord("C"): "op_short_binbytes",
    0x8E: "op_binbytes8",
    0x96: "op_bytearray8",
    0x97: "op_next_buffer",
    0x98: "op_readonly_buffer",
    ord("V"): "op_unicode",
    ord("X"): "op_binunicode",
    0x8C: "op_short_binunicode",
    0x8D: "op_binunicode8",
    ord("G"): "op_binfloat",
    ord(")"): "op_empty_tuple",
    ord("t"): "op_tuple",
    0x85: "op_tuple1",
    0x86: "op_tuple2",
    0x87: "op_tuple3",
    ord("]"): "op_empty_list",
    ord("}"): "op_empty_dict",
    0x8F: "op_empty_set",
    0x91: "op_frozenset",
    ord("l"): "op_list",
    ord("d"): "op_dict",
    ord("a"): "op_append",
    ord("e"): "op_appends",
    0x90: "op_additems",
    ord("s"): "op_setitem",
    ord("u"): "op_setitems",
    ord("g"): "op_get",
    ord("h"): "op_binget",
    ord("j"): "op_long_binget",
    ord("p"): "op_put",
    ord("q"): "op_binput",
    ord("r"): "op_long_binput",
    0x94: "op_memoize",
    ord("c"): "op_global",
    0x93: "op_stack_global",
    ord("i"): "op_inst",
    ord("o"): "op_obj",
    0x81: "op_newobj",
    0x92: "op_newobj_ex",
    ord("R"): "op_reduce",
    0x82: "op_ext1",
    0x83: "op_ext2",
    0x84: "op_ext4",
    ord("P"): "op_persid",
    ord("Q"): "op_binpersid",
    ord("b"): "op_build",
}

#: Every byte that starts a pickle opcode.
OPCODE_BYTES = frozenset([*_HANDLERS, 0x2E])


def analyze_pickle(src: ByteSource, *, joblib: bool = True) -> PickleAnalysis:
    """Analyse one pickle stream from ``src``'s position up to its ``STOP`` (or the first error).

    :param joblib: read joblib's array data after each ``NumpyArrayWrapper`` BUILD, as
        ``joblib.load`` does (the default); ``False`` reads the stream as ``pickle.load`` would.
    """
    return _Machine(src, joblib=joblib).run()
