"""OPERA's per-step rules (over-trust penalty, rollback location and decision, candidate re-scoring)
against values computed by hand from its released code (shikiw/OPERA, opera_beam_search)."""

import pytest
import torch

from lvsal_nb.decoding.opera import (
    OPERA,
    attention_square,
    candidate_penalty,
    over_trust_scores,
    rescore,
    rollback_due,
    rollback_location,
)
from lvsal_nb.errors import ConfigError


def f16(x):
    """x rounded through float16 (the released code stores the column scores in a float16 tensor)."""
    return float(torch.tensor(x, dtype=torch.float16))


def test_defaults_are_the_released_code():
    assert OPERA().to_dict() == {
        "num_beams": 5,
        "scale_factor": 50.0,
        "threshold": 15,
        "num_attn_candidates": 5,
        "penalty_weights": 1.0,
        "window_size": 512,
    }
    for bad in (
        dict(num_beams=0),
        dict(threshold=-1),
        dict(scale_factor=0),
        dict(num_attn_candidates=0),
        dict(penalty_weights=-1),
    ):
        with pytest.raises(ConfigError, match="OPERA"):
            OPERA(**bad)


def test_attention_square_pads_and_renormalises():
    prev = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    row = torch.tensor([2.0, 1.0, 1.0])  # unnormalised: /4
    sq = attention_square(prev, row)
    assert sq.tolist() == [[1.0, 0.0, 0.0], [0.25, 0.75, 0.0], [0.5, 0.25, 0.25]]
    with pytest.raises(ConfigError, match="expected 3"):
        attention_square(prev, torch.ones(4))


def test_column_products_by_hand():
    # local window (response_start 0), scale 50:
    #   col 0: 50·1 · 50·0.5 · 50·0.2 = 12500 -> 1.25e-3
    #   col 1: 50·0.5 · 50·0.6 = 750 -> 7.5e-5
    #   col 2: 50·0.2 = 10 -> 1e-6 (a float16 subnormal: 17 · 2^-24)
    sq = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.6, 0.2]], dtype=torch.float64)
    got = over_trust_scores(sq, 0, 50.0).tolist()
    assert got == [f16(1.25e-3), f16(7.5e-5), f16(1e-6)]
    assert got[2] == 17 * 2.0**-24  # the float16 rounding is kept, as the released code
    # the window starts at the response: rows/columns before it do not count
    wide = torch.zeros(4, 4, dtype=torch.float64)
    wide[0, 0] = 1.0
    wide[1:, 1:] = sq
    assert over_trust_scores(wide, 1, 50.0).tolist() == got


def test_penalty_is_image_attention_for_the_first_ten_tokens():
    # prompt = 3 positions, image tokens 0..1, response starts at 3; 2 generated rows + the candidate's
    prev = torch.tensor(
        [
            [1, 0, 0, 0, 0],
            [0.5, 0.5, 0, 0, 0],
            [0.2, 0.2, 0.6, 0, 0],
            [0.1, 0.1, 0.1, 0.7, 0],
            [0.1, 0.2, 0.1, 0.3, 0.3],
        ],
        dtype=torch.float64,
    )
    row = torch.tensor([0.3, 0.1, 0.2, 0.2, 0.1, 0.1], dtype=torch.float64)
    pen, loc = candidate_penalty(attention_square(prev, row), 3, (0, 2))
    assert pen == pytest.approx(-(0.3 + 0.1))  # -(attention on the image), window 3 wide <= 10
    # scores (scale 50) over the 3x3 window: col0 50·0.7·50·0.3·50·0.2 = 5250 -> 5.25e-4 is the largest
    assert loc == 0


def test_penalty_is_the_largest_column_score_after_ten_tokens():
    n = 11  # response of 11 positions (10 generated + the candidate), response_start 0
    sq = torch.eye(n, dtype=torch.float64) * 0.5
    sq[:, 4] += 0.5  # every row from 4 on puts its other half on column 4: a summary token
    sq[:4, 4] = 0.0
    sq[:4] = torch.eye(n, dtype=torch.float64)[:4]
    sq[4, 4] = 1.0
    # column 4: rows 4..10 -> 50·1 · (50·0.5)^6 = 50 · 25^6 = 12207031250 -> ·1e-7 = 1220.703125
    # other columns j (j != 4): only the diagonal is non-zero below them: 50·0.5 or 50·1 · 0 (rows under) ...
    pen, loc = candidate_penalty(sq, 0, (0, 0))
    assert loc == 4
    assert pen == f16(1e-7 * 50 * 25.0**6)


def test_rollback_location_is_the_mode_of_modes():
    locs = torch.tensor([[4, 4, 7, 2, 4], [7, 7, 4, 7, 1], [4, 2, 2, 4, 9]])
    per_beam, loc = rollback_location(locs)
    # beam modes: 4 (x3), 7 (x3), and 2/4 tie (x2 each) -> the smaller, 2; over beams 2, 4, 7 all once -> 2
    assert per_beam.tolist() == [4, 7, 2] and loc == 2


def test_rollback_decision_by_hand():
    hist = [[12] * 16 + [3], [12] * 16]  # 16 > 15 in both beams
    assert rollback_due(hist, 12, 15)
    assert not rollback_due([[12] * 16, [12] * 15], 12, 15)  # one beam holds it only 15 times
    assert not rollback_due([[9] * 20, [9] * 20], 9, 15)  # never into the first 10 tokens


def test_rescore_keeps_only_penalised_candidates():
    logits = torch.tensor([[1.0, 5.0, 3.0, 0.0], [2.0, 0.0, 4.0, 1.0]])
    cand = torch.tensor([[1, 2], [2, 0]])
    pen = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    assert rescore(logits, cand, pen, 1.0).tolist() == [
        [-999.0, 4.5, 4.0, -999.0],
        [2.0, -999.0, 2.0, -999.0],
    ]


PROMPT = "describe this image ."


def full_pass(s, prepared, tokens):
    """Independent reference: one plain teacher-forced forward of prompt + tokens with eager attention
    (no cache): next-token logits [vocab] and the last layer's attention, max over heads [n, n]."""
    inputs = s.adapter.to(s.adapter.full_inputs(prepared, tokens), s.dtype)
    cfg = s.adapter.text_config
    old, cfg._attn_implementation = cfg._attn_implementation, "eager"
    try:
        with torch.no_grad():
            out = s.model(**inputs, output_attentions=True)
    finally:
        cfg._attn_implementation = old
    return out.logits[0, -1].double(), out.attentions[-1][0].double().max(0).values


def test_opera_decode_equals_a_hand_computed_step(llava_session, image):
    """Two beams, two candidates, two tokens on a tiny float64 LLaVA: every penalty is −(the
    candidate's renormalised attention on the image tokens) (window <= 10), computed here from a
    plain forward; the first token is the argmax of logit − penalty over the candidates of beam 0."""
    from lvsal_nb.decoding.opera import opera_generate

    s = llava_session
    cfg = OPERA(num_beams=2, num_attn_candidates=2)
    before = s.adapter.text_config._attn_implementation
    g = opera_generate(s, image, PROMPT, cfg, max_new_tokens=2, return_scores=True)
    assert s.adapter.text_config._attn_implementation == before  # the eager switch is undone
    prepared = s.adapter.prepare(image, PROMPT)
    i0, i1 = prepared.spans.image
    logits, _ = full_pass(s, prepared, [])
    cands = torch.topk(logits, 2).indices.tolist()
    pens = []
    for c in cands:
        _, att = full_pass(s, prepared, [c])
        row = att[-1] / att[-1].sum()
        pens.append(-float(row[i0:i1].sum()))
    assert g.info[0]["penalties"][0] == pytest.approx(pens, abs=1e-6)
    rescored = {c: float(logits[c]) - p for c, p in zip(cands, pens)}
    kept = torch.isfinite(g.scores[0][0]) & (g.scores[0][0] > -999)
    assert sorted(torch.nonzero(kept).flatten().tolist()) == sorted(cands)
    assert g.scores[0][0][cands].tolist() == pytest.approx([rescored[c] for c in cands], abs=1e-6)
    assert not any(i["rolled_back"] for i in g.info)
    # step 2 re-scores the candidates after the best first token the same way (in one of the 2 beams;
    # the final best hypothesis may start with the other candidate: beam search, not greedy)
    best_first = max(rescored, key=rescored.get)
    assert g.token_ids[0] in cands
    logits2, _ = full_pass(s, prepared, [best_first])
    c2 = torch.topk(logits2, 2).indices.tolist()
    pen2 = []
    for c in c2:
        _, att = full_pass(s, prepared, [best_first, c])
        row = att[-1] / att[-1].sum()
        pen2.append(-float(row[i0:i1].sum()))
    beam = [
        k
        for k in range(2)
        if g.scores[1][k][c2].tolist()
        == pytest.approx([float(logits2[c]) - p for c, p in zip(c2, pen2)], abs=1e-6)
    ]
    assert beam, "no beam of step 2 holds the hand-computed re-scored candidates"


def test_opera_needs_an_image(llava_session):
    from lvsal_nb.decoding.opera import opera_generate
    from lvsal_nb.errors import ImageError

    with pytest.raises(ImageError, match="pass an image"):
        opera_generate(llava_session, None, PROMPT, max_new_tokens=1)
