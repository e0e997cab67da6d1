"""An on-disk response cache keyed by the full request, so a repeated run does not pay twice.

The key is the SHA-256 of the request in canonical JSON (sorted keys): provider, model,
messages, tools, output schema, sampling settings and extra body fields. The base URL
and the key are not part of it. One file per key under ``cache_dir/ab/abcdef….json``,
written to a temporary file and renamed into place, so a killed run leaves whole
entries or none. Files are small and read with plain blocking I/O: a thread hop would
cost more than the read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import msgspec

from simulator.providers._types import Request, Response

__all__ = ["CACHE_FORMAT", "ResponseCache"]

#: Part of every key: bumped when the meaning of a cached entry changes.
CACHE_FORMAT = 1

log = logging.getLogger("dialogsim.providers.cache")

_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(Response)


class ResponseCache:
    """Responses by request hash under ``directory`` (created on first write)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(provider: str, request: Request) -> str:
        """The hex SHA-256 of the normalised request (``request.model`` must be filled in)."""
        blob = _encoder.encode({"format": CACHE_FORMAT, "provider": provider, "request": request})
        return hashlib.sha256(blob).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Response | None:
        """The stored response, or None. An unreadable entry counts as a miss and is replaced later."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.misses += 1
            return None
        except OSError as exc:
            log.warning("response cache: cannot read %s: %s", path, exc.strerror)
            self.misses += 1
            return None
        try:
            response = _decoder.decode(data)
        except msgspec.DecodeError as exc:
            log.warning("response cache: ignoring damaged entry %s: %s", path, exc)
            self.misses += 1
            return None
        self.hits += 1
        return response

    def put(self, key: str, response: Response) -> None:
        """Store ``response`` atomically (a temporary file renamed into place).

        A failed write (disk full, no permission) is logged and skipped: the cache only
        saves money, it must not fail a dialogue.
        """
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}.", suffix=".tmp")
        except OSError as exc:
            log.warning("response cache: cannot write under %s: %s", path.parent, exc.strerror)
            return
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_encoder.encode(response))
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            log.warning("response cache: cannot write %s: %s", path, exc.strerror)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
