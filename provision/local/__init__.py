"""The local runtime: the Worker in workerd with the AI Gateway emulator, as `make dev` and the
tests run it."""
