"""Probabilistic identity resolution: one person, one record.

``records`` reads every customer as a person record (names, birth date, contacts, address), ``comparisons`` says
how two records are compared (the same levels for Splink's batch SQL and the real-time scorer), ``model`` trains
the Fellegi-Sunter model with Splink and finds the pairs and clusters, ``merge`` merges a cluster into one customer
with a ledger that ``split`` undoes exactly, ``realtime`` matches one arriving record against the stored file
through its blocking keys, and ``review`` keeps the pairs in the clerical-review band.
"""
