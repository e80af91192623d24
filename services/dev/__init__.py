"""Everything that exists only for development and tests, never in production:

- ``provision``: a throwaway Kafka-protocol broker (Tansu) and PostgreSQL from PyPI wheels
  (the ``devstack`` extra), used by ``slawatch dev``, the tests and the benchmarks;
- ``stack``: ``slawatch dev``, every service on 127.0.0.1 against them;
- ``demo``: ``slawatch demo``, a scripted scenario posted to a running dev stack;
- ``webhook_sink``: the signed-webhook receiver the example routing file posts to.
"""
