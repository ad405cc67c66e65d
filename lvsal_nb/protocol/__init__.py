"""The benchmarks' pure rules (no data loading, no model): POPE's question builder and answer parser,
the POPE and CHAIR formulas. The lowest evaluation layer: ``toy/`` (the toy world's metrics) and
``eval/`` (COCO runs) both build on it; it imports neither."""
