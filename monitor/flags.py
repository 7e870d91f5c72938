"""What every ``dbpulse`` command's flags share: one-line errors, clean help, checked numbers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

EPILOG = "Documentation: README.md and docs/ in the dbpulse repository."


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line that names the flag (argparse prints the usage first).

    Sub-commands' parsers are of the same class (argparse makes them with ``type(parent)``).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to a flag's help when it says something: never for None or False, never when
    the help already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS or "default" in text
                or not action.option_strings or action.nargs == 0):
            return text
        return f"{text} (default: %(default)s)"


def number(kind: Callable[[str], float], *, minimum: float | None = None, above: float | None = None,
           maximum: float | None = None) -> Callable[[str], float]:
    """An argparse ``type`` that reads a number of ``kind`` (int or float) and checks its bounds."""
    noun = "a whole number" if kind is int else "a number"
    bounds = [f"≥ {minimum:g}" if minimum is not None else "", f"> {above:g}" if above is not None else "",
              f"≤ {maximum:g}" if maximum is not None else ""]
    wanted = " and ".join(b for b in bounds if b)

    def read(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {noun}, got {text!r}") from None
        if ((minimum is not None and value < minimum) or (above is not None and value <= above)
                or (maximum is not None and value > maximum)):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    read.__name__ = noun  # argparse names the type in some messages
    return read


def fail(prog: str, message: str, code: int = 2) -> int:
    """Print one error line for ``prog`` on stderr; returns ``code``, by default that of a usage error."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code
