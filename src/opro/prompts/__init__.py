"""Every prompt text opro sends lives here, as Jinja templates (``*.jinja``), rendered with
StrictUndefined so that a missing variable is an error, not an empty string. Variants are
chosen by configuration (a template name, a style), never by sniffing a model's name.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("opro", "prompts"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, variables: Mapping[str, object], text: str | None = None) -> str:
    """The template ``name`` (a file in this package; or ``text``, a template's own text)
    rendered with ``variables``."""
    env = environment()
    template = env.from_string(text) if text is not None else env.get_template(name)
    return template.render(**variables)
