"""SGRS policy on hand-made numbers (every branch), and end to end on a tiny model."""

import math

import pytest
import torch

import lvsal_nb as lv
from lvsal_nb.decoding.sgrs import choose, threshold

PROMPT = "describe this image ."
G = lv.SGRS(k=4, alpha=0.5, window=2, rounds=2, order="greedy")


def test_threshold_is_alpha_times_recent_mean():
    assert threshold(G, []) == 0.0
    assert threshold(G, [9.0, 0.2, 0.4]) == pytest.approx(0.5 * 0.3)  # only the last W=2


def test_no_history_accepts_first_draw():
    d = choose(G, [0.4, 0.3, 0.2, 0.1], [0.0, 0.9, 0.9, 0.9], [])
    assert (d.chosen, d.decision, d.round, d.tau, d.tried) == (0, "accepted", 0, 0.0, [(0, 0)])


def test_accept_in_round_one():
    d = choose(G, [0.4, 0.3, 0.2, 0.1], [0.5, 0.1, 0.1, 0.1], [0.6, 0.6])  # tau 0.3
    assert (d.chosen, d.decision, d.round) == (0, "accepted", 0)


def test_accept_in_later_round():
    d = choose(G, [0.4, 0.3, 0.2, 0.1], [0.1, 0.35, 0.9, 0.1], [0.6, 0.6])
    assert (d.chosen, d.decision, d.round, d.tried) == (1, "accepted", 1, [(0, 0), (1, 1)])


def test_fallback_to_highest_saliency_over_all_k():
    d = choose(G, [0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.25, 0.28], [0.6, 0.6])  # all below tau 0.3
    assert (d.chosen, d.decision, d.round, d.tried) == (3, "fallback", None, [(0, 0), (1, 1)])


def test_sampled_draws_follow_renormalised_remaining_probs():
    cfg = lv.SGRS(k=3, alpha=1.0, window=1, rounds=2, order="sample")
    counts = [0, 0, 0]
    g = torch.Generator().manual_seed(0)
    for _ in range(4000):
        d = choose(cfg, [0.6, 0.3, 0.1], [0.0, 0.0, 0.0], [1.0], g)  # always rejects: two draws recorded
        counts[d.tried[1][0]] += 1
    # P(second = 2) = 0.6*(0.1/0.4) + 0.3*(0.1/0.7) = 0.19286
    assert counts[2] / 4000 == pytest.approx(0.19286, abs=0.02)


def test_nan_saliency_passes():
    d = choose(G, [0.5, 0.5], [math.nan, 0.0], [1.0, 1.0])
    assert d.chosen == 0 and d.decision == "accepted"


def test_alpha_zero_equals_plain_greedy(llava_session, image):
    plain = llava_session.trace(image, PROMPT, max_new_tokens=6)
    sg = llava_session.trace(image, PROMPT, max_new_tokens=6, sgrs=lv.SGRS(alpha=0.0, order="greedy"))
    assert [s.token_id for s in sg.records] == [s.token_id for s in plain.records]
    assert sg.config["engine"] == "step" and all(s.decision == "accepted" for s in sg.records)


def test_alpha_zero_equals_seeded_top_k_sampling(llava_session, image):
    # plain sampling from the top-K renormalised = SGRS's first draw with the same generator
    k = 5
    sg = llava_session.trace(image, PROMPT, max_new_tokens=6, sgrs=lv.SGRS(k=k, alpha=0.0), seed=11)
    g = torch.Generator().manual_seed(11)
    for s in sg.records:
        probs = [c.prob for c in s.candidates]
        p = torch.tensor(probs, dtype=torch.float64)
        expect = s.candidates[int(torch.multinomial(p / p.sum(), 1, generator=g))].token_id
        assert s.token_id == expect


def test_sgrs_records_every_candidate_and_rejection(llava_session, image):
    cfg = lv.SGRS(k=4, alpha=5.0, window=3, rounds=2)  # a high alpha forces rejections
    tr = llava_session.trace(image, PROMPT, max_new_tokens=6, sgrs=cfg)
    assert tr.config["sgrs"]["alpha"] == 5.0
    cands = tr.candidates
    assert len(cands) == 4 * len(tr) and cands.groupby("step")["accepted"].sum().eq(1).all()
    hist = []
    for s in tr.records:
        assert s.tau == pytest.approx(threshold(cfg, hist))
        chosen = next(c for c in s.candidates if c.accepted)
        assert chosen.token_id == s.token_id and chosen.saliency == s.saliency
        if s.decision == "fallback":
            assert s.saliency == max(c.saliency for c in s.candidates)
            assert sum(c.round is not None for c in s.candidates) == 2
        hist.append(s.saliency)
    assert "fallback" in set(tr.table["decision"])


def test_batched_candidates_equal_one_by_one(llava_session, image):
    """The K candidates' saliency from one batched backward equals K separate traces' forced tokens."""
    tr = llava_session.trace(image, PROMPT, max_new_tokens=3, sgrs=lv.SGRS(k=3, alpha=0.0, order="greedy"))
    prefix = [s.token_id for s in tr.records]
    for t, s in enumerate(tr.records):
        for c in s.candidates:
            one = llava_session.analyze(image, PROMPT, prefix[:t] + [c.token_id])
            assert one.records[t].saliency == pytest.approx(c.saliency, abs=1e-10)
