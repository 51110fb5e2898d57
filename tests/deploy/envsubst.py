"""The template substitution the official nginx image applies, re-done for tests.

The image's 20-envsubst-on-templates.sh runs `envsubst "$defined_envs"`, where
`defined_envs` lists every variable present in the container's environment.  GNU
envsubst then replaces `$NAME` and `${NAME}` when NAME is in that list and leaves every
other `$...` untouched, which is what keeps nginx's own `$host` or `$uri` intact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["render"]

# A name is the longest run of [A-Za-z0-9_] not starting with a digit, as in envsubst.
_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def render(template: str, defined: Mapping[str, str]) -> str:
    """Substitute the variables of `defined`, leave every other `$` sequence as written."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return defined[name] if name in defined else match.group(0)

    return _REFERENCE.sub(substitute, template)
