"""Keys out of everything swarmd writes: the values of secret-looking variables (a name that says key,
token, secret, password or credential, or one a config names) replaced by the variable's name wherever
an agent's words are kept: a reason committed on the integration branch, a handoff, the daemon's log."""

from __future__ import annotations

import ctypes
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
SHORTEST = 8  # shorter values (a "1", a "true") are not secrets worth the false matches

M = TypeVar("M", bound=BaseModel)
PR_SET_DUMPABLE = 4  # linux/prctl.h

log = logging.getLogger(__name__)


def keep_environment_private() -> None:
    """Agents run as the daemon's user, and the daemon's environment holds the keys: without this, any of
    them could read it in /proc/<daemon>/environ. Not dumpable, the daemon's /proc files are root's
    (its children, once they exec, are dumpable again). Does nothing for agents running as root."""
    if not sys.platform.startswith("linux"):
        return
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_DUMPABLE, 0) failed (errno %d): agents may read swarmd's environment",
                        ctypes.get_errno())
    except (OSError, AttributeError):
        log.warning("cannot call prctl: agents may read swarmd's environment in /proc", exc_info=True)


class Redactor:
    def __init__(self, environ: Mapping[str, str], names: Iterable[str] = ()) -> None:
        named = set(names)
        found = {value: name for name, value in environ.items()
                 if len(value) >= SHORTEST and (name in named or SECRET_NAME.search(name))}
        self.secrets = sorted(found.items(), key=lambda pair: -len(pair[0]))  # the longest first

    def __call__(self, text: str) -> str:
        for value, name in self.secrets:
            if value in text:
                text = text.replace(value, f"${name}")
        return text

    def model(self, model: M) -> M:
        """`model` with every string in it redacted."""
        if not self.secrets:
            return model
        return type(model).model_validate(self._walk(model.model_dump(mode="json")))

    def _walk(self, data: Any) -> Any:
        if isinstance(data, str):
            return self(data)
        if isinstance(data, list):
            return [self._walk(item) for item in data]
        if isinstance(data, dict):
            return {key: self._walk(value) for key, value in data.items()}
        return data
