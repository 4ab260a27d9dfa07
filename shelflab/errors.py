"""Errors that reach users: one line naming the file, the row and what was expected."""

from __future__ import annotations

from pathlib import Path


class ShelfLabError(Exception):
    """Base class for errors the CLI prints as one line and exits non-zero on."""


class InputError(ShelfLabError):
    """Bad input data: names the file, the row (1-based, header = row 1 when present) and the
    expectation."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        expected: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.row = row
        self.expected = expected
        self.detail = message
        parts = []
        if self.path:
            parts.append(self.path if row is None else f"{self.path}, row {row}")
        elif row is not None:
            parts.append(f"row {row}")
        text = message if not parts else f"{': '.join(parts)}: {message}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class ConfigError(ShelfLabError):
    """Malformed or inconsistent params.yaml / CLI options."""


class UnknownModelError(ConfigError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown model {name!r} (expected one of: {', '.join(sorted(known))})")
