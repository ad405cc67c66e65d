"""The POPE / CHAIR formulas, re-exported from :mod:`lvsal_nb.protocol.scores` (their home: a low
layer that both ``toy/`` and ``eval/`` use, so the toy world needs nothing from ``eval/``)."""

from lvsal_nb.protocol.scores import PARSERS, chair_scores, parse_yes_no, pope_scores

__all__ = ["PARSERS", "parse_yes_no", "pope_scores", "chair_scores"]
