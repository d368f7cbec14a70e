"""Saved segments: a small JSON sidecar next to the store (``<store>.segments.json``).

Why a sidecar and not a ``segments`` table inside the DuckDB file: the app holds the store open
read-only and writers work on a full copy that is swapped in (``writable_store``). Saving one
segment that way copies the whole store (seconds and gigabytes at 1M customers) and, because the
swap changes the store's version, throws away every cached result of every user. The sidecar is
rewritten atomically (temporary file + ``os.replace``) under an exclusive lock, readers never see
half a file, and it survives restarts. The cost: it lives beside the store, so copy both files
when moving a store, and it is local to one machine (a shared catalogue needs a real database).

Every segment carries a version. Changing or deleting one needs the version the editor started
from; if someone saved in between, the change is refused with a message instead of silently
overwriting their work.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

MAX_NAME_LENGTH = 80


class SegmentError(ValueError):
    """A save, rename or delete that cannot happen; the message says why."""


class SegmentConflict(SegmentError):
    """The segment changed since the editor loaded it."""


@dataclass(frozen=True)
class SavedSegment:
    name: str
    definition: str  # canonical JSON rule
    created_at: str
    updated_at: str
    version: int


def sidecar_path(store_path: Path | str) -> Path:
    store_path = Path(store_path)
    return store_path.with_name(f"{store_path.name}.segments.json")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _clean_name(name: str) -> str:
    name = " ".join(str(name).split())
    if not name:
        raise SegmentError("a segment needs a name")
    if len(name) > MAX_NAME_LENGTH:
        raise SegmentError(f"a segment name has at most {MAX_NAME_LENGTH} characters")
    return name


class SegmentStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @classmethod
    def beside(cls, store_path: Path | str) -> SegmentStore:
        return cls(sidecar_path(store_path))

    def _read(self) -> dict[str, SavedSegment]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise SegmentError(f"cannot read saved segments from {self.path}: {error}") from None
        return {item["name"]: SavedSegment(**item) for item in raw.get("segments", [])}

    def _write(self, segments: dict[str, SavedSegment]) -> None:
        scratch = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        payload = {"segments": [asdict(segments[name]) for name in sorted(segments, key=str.casefold)]}
        with scratch.open("w") as handle:
            json.dump(payload, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, SavedSegment]]:
        # The lock covers read-check-write, so two saves cannot both pass the version check.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            segments = self._read()
            yield segments
            self._write(segments)

    def list(self) -> list[SavedSegment]:
        return list(self._read().values())

    def names(self) -> list[str]:
        return [segment.name for segment in self.list()]

    def get(self, name: str) -> SavedSegment | None:
        return self._read().get(name)

    @staticmethod
    def _current(segments: dict[str, SavedSegment], name: str, expected_version: int) -> SavedSegment:
        current = segments.get(name)
        if current is None:
            raise SegmentConflict(f"segment {name!r} no longer exists (someone deleted or renamed it)")
        if current.version != expected_version:
            raise SegmentConflict(
                f"segment {name!r} was changed by someone else (version {current.version}, you edited "
                f"version {expected_version}, saved {current.updated_at}); reload it, or save under a new name")
        return current

    def save(self, name: str, definition: str, *, expected_version: int | None = None) -> SavedSegment:
        """Create (``expected_version=None``) or update the segment; returns the saved version.

        ``definition`` is a rule already validated by ``metrics.segments.canonical`` (this layer sits
        below metrics and stores the text as given).
        """
        name = _clean_name(name)
        with self._locked() as segments:
            now = _now()
            if expected_version is None:
                if name in segments:
                    raise SegmentConflict(f"a segment named {name!r} already exists; choose another name "
                                          "or load it to edit it")
                saved = SavedSegment(name, definition, now, now, 1)
            else:
                current = self._current(segments, name, expected_version)
                saved = SavedSegment(name, definition, current.created_at, now, current.version + 1)
            segments[name] = saved
        return saved

    def rename(self, name: str, new_name: str, *, expected_version: int) -> SavedSegment:
        new_name = _clean_name(new_name)
        with self._locked() as segments:
            current = self._current(segments, name, expected_version)
            if new_name != name and new_name in segments:
                raise SegmentConflict(f"a segment named {new_name!r} already exists")
            del segments[name]
            saved = SavedSegment(new_name, current.definition, current.created_at, _now(), current.version + 1)
            segments[new_name] = saved
        return saved

    def delete(self, name: str, *, expected_version: int) -> None:
        with self._locked() as segments:
            self._current(segments, name, expected_version)
            del segments[name]
