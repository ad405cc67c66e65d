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
    assert OPERA().to_dict() == {"num_beams": 5, "scale_factor": 50.0, "threshold": 15, "num_attn_candidates": 5,
                                 "penalty_weights": 1.0, "window_size": 512}
    for bad in (dict(num_beams=0), dict(threshold=-1), dict(scale_factor=0), dict(num_attn_candidates=0),
                dict(penalty_weights=-1)):
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
    prev = torch.tensor([[1, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0], [0.2, 0.2, 0.6, 0, 0],
                         [0.1, 0.1, 0.1, 0.7, 0], [0.1, 0.2, 0.1, 0.3, 0.3]], dtype=torch.float64)
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
    assert rescore(logits, cand, pen, 1.0).tolist() == [[-999.0, 4.5, 4.0, -999.0], [2.0, -999.0, 2.0, -999.0]]
