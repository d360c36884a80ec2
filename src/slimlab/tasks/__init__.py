"""The use-case layer: one module per command, each a typed config and a ``run(cfg) -> summary``.

The CLI (:mod:`slimlab.cli`) and the recipe runner (:mod:`slimlab.tasks.run`) both dispatch through
:data:`slimlab.tasks.table.TASKS`; :mod:`slimlab.api` re-exports the functions as the public face.
Nothing below this layer imports it.
"""
