"""The error every config reader raises, apart from the code that loads configs, so that the
language files (contract/i18n), which refuse an unknown language with it, and the config loader
(contract/configfile.py), which words its messages from them, can both use it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Issue:
    """One thing wrong with a config: the file, the key's place (`sensors[2].port`) and what is
    wrong, as a message of `[config]` in contract/i18n (`key` and its `params`), or, for a
    mistake we have no words of our own for, pydantic's English (`text`)."""

    path: str
    where: str  # "" for the top level
    key: str | None
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""


class ConfigError(Exception):
    """A config that cannot be used. The message names the file and the key; the CLIs exit 2.
    `issues`, when it came from validation, lets a command word it in its reader's language
    (`contract.configfile.worded`)."""

    def __init__(self, message: str, issues: tuple[Issue, ...] = ()) -> None:
        super().__init__(message)
        self.issues = issues
