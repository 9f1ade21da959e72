"""The stack: its file's model and references, the contract shared with the Worker, the compiler
of tenant records, the Worker's renderer, the schema, keys and stack file edits."""
