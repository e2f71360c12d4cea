"""Serving a recipe over HTTP (`studio recipe serve`) and measuring its int8 variant (`recipe export --int8-check`):
:mod:`.service` checks and assembles, :mod:`.app` has the routes, :mod:`.documents` reads a corpus, :mod:`.int8`
measures. The ranking itself is :mod:`studio.recipe_runtime`'s, the same code a recipe folder carries."""
