"""The cursor step's scored candidates as a small HTML table (the notebook viewer's panel).

Greedy and sampled traces score only the emitted token and record no text for candidates
(token ""): the emitted one shows the step's token, others their token id, and a step with just
the emitted token says "greedy: no alternatives scored" (as the saved-file viewer does,
labextension/src/model.ts candidateText).
"""

from __future__ import annotations

import html

from ..trace import Candidate, Step
from .columns import display, fmt


def candidate_text(c: Candidate, s: Step) -> str:
    """What a candidate is called: its text; the step's token when it is the emitted one and has
    none; else "id <token_id>"."""
    if c.token != "":
        return display(c.token)
    if c.accepted:
        return display(s.token)
    return f"id {c.token_id}"


def _status(c: Candidate, s: Step) -> str:
    if c.accepted:
        return "fallback (max S)" if s.decision == "fallback" else "accepted"
    if c.round is not None:
        return "rejected"
    return "not drawn" if s.decision in ("accepted", "fallback") else "scored"


def candidates_html(s: Step | None) -> str:
    """The step's candidates, in draw order then by probability: draw (0-based), token, p, S (and
    "< τ" below the threshold), status. A note instead of a table when nothing else was scored."""
    if s is None:
        return ""
    cands = s.candidates
    title = f"<b>candidates</b> ({html.escape(s.decision)})"
    if not cands:
        return f"{title}: none recorded"
    if len(cands) == 1 and cands[0].accepted and all(c.round is None for c in cands):
        c = cands[0]
        return (
            f"{title}: <b>{html.escape(candidate_text(c, s))}</b> p {fmt(c.prob)} · S "
            f"{fmt(c.saliency if c.saliency is not None else float('nan'))} · "
            f"{html.escape(s.decision)}: no alternatives scored"
        )
    order = sorted(cands, key=lambda c: (1e9 if c.round is None else c.round, -c.prob))
    heads = ("draw", "token", "p", "S", "")
    cells = "".join(f"<th style='padding:0 8px 0 0;text-align:left'>{h}</th>" for h in heads)
    body = []
    for c in order:
        sal = float("nan") if c.saliency is None else c.saliency
        below = s.tau is not None and c.saliency is not None and c.saliency < s.tau
        row = (
            "–" if c.round is None else str(c.round),
            html.escape(candidate_text(c, s)),
            fmt(c.prob),
            fmt(sal) + (" &lt; τ" if below else ""),
            _status(c, s),
        )
        weight = "bold" if c.accepted else "normal"
        body.append(
            f"<tr style='font-weight:{weight}'>"
            + "".join(f"<td style='padding:0 8px 0 0'>{v}</td>" for v in row)
            + "</tr>"
        )
    return (
        f"{title}<table class='lvsal-cands' style='font-size:12px;border-collapse:collapse'>"
        f"<thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
