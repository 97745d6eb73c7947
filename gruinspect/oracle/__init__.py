"""Reference implementations that gruinspect checks its block naming against.

Each submodule wraps one framework's own GRU implementation (imported lazily, only when a
function is called) behind numpy-in / numpy-out functions.
"""
