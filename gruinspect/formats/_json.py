"""JSON text from a file, with its nesting depth bounded.

Python's ``json`` module recurses once per nesting level, so deeply nested input either raises
RecursionError deep inside the decoder or, under the interpreter's limit, hands the readers a
value their own walks recurse through. :func:`loads` refuses both with one line naming the file
and what was nested too deeply. Other decoding errors (``ValueError``) pass through unchanged, so
each reader keeps its own "is not JSON" message.
"""
from __future__ import annotations

from ..errors import UnsupportedError

# A Keras config nests about four JSON levels per model level (model, layers list, layer, config),
# so 200 holds a model fifty containers deep; no framework writes anything close to it.
MAX_DEPTH = 200


def too_deep(where: str, what: str) -> UnsupportedError:
    return UnsupportedError(f"Unsupported file {where}: {what} nests more than {MAX_DEPTH} levels deep.")


def loads(text, where: str, what: str = "its JSON"):
    """``json.loads(text)`` whose value nests at most :data:`MAX_DEPTH` levels."""
    import json  # here, not at the top: detecting a file's format imports this module's readers

    try:
        value = json.loads(text)
    except RecursionError:
        raise too_deep(where, what) from None
    if depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise too_deep(where, what)
    return value


def depth(value, limit: int) -> int:
    """How many levels of lists and dicts ``value`` nests (a scalar is 0), counting at most one
    past ``limit``; linear in the size of ``value`` and never recursive."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest
