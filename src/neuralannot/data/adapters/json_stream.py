"""Incremental JSON: a top-level object read key by key, its big arrays element by element, so a
huge dataset file never has to fit in memory (``.gz`` files too). Errors are
:class:`~neuralannot.data.adapters.base.DatasetFormatError` s naming the file, line and character."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neuralannot.data.adapters.base import DatasetFormatError

__all__ = ["_JsonObjectStream", "_open_text"]


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


class _JsonObjectStream:
    """Reads a top-level JSON object key by key; the arrays under ``stream_keys`` element by element
    (with ``arrays_required`` such a key must hold an array)."""

    _WS = " \t\n\r"
    stream_keys: frozenset[str] = frozenset({"samples"})
    arrays_required = True

    def __init__(self, f: io.TextIOBase, path: Path, chunk: int = 1 << 20):
        self.f, self.path, self.chunk = f, path, chunk
        self.buf, self.pos, self.eof = "", 0, False
        self.offset, self.line = 0, 1  # absolute char offset / line number of buf[0]
        self.decoder = json.JSONDecoder()

    def _error(self, problem: str, pos: int | None = None) -> DatasetFormatError:
        pos = self.pos if pos is None else pos
        line = self.line + self.buf.count("\n", 0, pos)
        return DatasetFormatError(
            f"malformed JSON: {problem} (line {line}, char {self.offset + pos})", self.path
        )

    def _fill(self, size: int) -> None:
        if self.pos:
            self.line += self.buf.count("\n", 0, self.pos)
            self.offset += self.pos
            self.buf, self.pos = self.buf[self.pos :], 0
        try:
            data = self.f.read(size)
        except (UnicodeDecodeError, OSError, EOFError) as exc:
            raise DatasetFormatError(f"cannot read file: {exc}", self.path) from None
        if not data:
            self.eof = True
        self.buf += data

    def _peek(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in self._WS:
                self.pos += 1
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos] if self.pos < len(self.buf) else ""
            self._fill(self.chunk)

    def _expect(self, chars: str) -> str:
        c = self._peek()
        if not c or c not in chars:
            raise self._error(f"expected one of {list(chars)}, found {c or 'end of file'!r}")
        self.pos += 1
        return c

    def _value(self) -> Any:
        self._peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except RecursionError:
                raise self._error("nested too deeply") from None
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise self._error(exc.msg, exc.pos) from None
                self._fill(max(self.chunk, len(self.buf) - self.pos))  # grow geometrically
                continue
            if end == len(self.buf) and not self.eof:  # a number may continue in the next chunk
                self._fill(self.chunk)
                continue
            self.pos = end
            return value

    def _array(self) -> Iterator[Any]:
        self._expect("[")
        if self._peek() == "]":
            self.pos += 1
            return
        while True:
            yield self._value()
            if self._expect(",]") == "]":
                return

    def items(self) -> Iterator[tuple[str, Any]]:
        """(key, value) pairs; a streamed key's value is an iterator, drained if the consumer moves on."""
        if self._peek() != "{":
            raise self._error("the file must contain one JSON object")
        self.pos += 1
        if self._peek() == "}":
            self.pos += 1
        else:
            while True:
                key = self._value()
                if not isinstance(key, str):
                    raise self._error("object keys must be strings")
                self._expect(":")
                if key in self.stream_keys and (self.arrays_required or self._peek() == "["):
                    if self._peek() != "[":
                        raise self._error(f"{key!r} must be a list")
                    it = self._array()
                    yield key, it
                    for _ in it:  # drain what the consumer did not read
                        pass
                else:
                    yield key, self._value()
                if self._expect(",}") == "}":
                    break
        if self._peek():
            raise self._error("extra data after the top-level object")
