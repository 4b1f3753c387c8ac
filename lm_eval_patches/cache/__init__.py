"""The request cache behind ``--use_cache PATH``: crash-safe, content-keyed, plain JSON.

- :mod:`.keys`: what identifies a request (media by content hash) and a model;
- :mod:`.store`: the SQLite file (WAL, one transaction per answer, never pickle);
- :mod:`.caching_lm`: the wrapper lm-eval's evaluator puts around every backend;
- :mod:`.install`: how it replaces lm-eval's ``CachingLM`` at start-up.

See docs/caching.md.
"""
