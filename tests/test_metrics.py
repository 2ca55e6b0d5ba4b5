"""boxlib.metrics against hand computation, trec_eval (through ir-measures) and brute force
over tie-breaking orders."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from boxlib import metrics

ir_measures = pytest.importorskip("ir_measures")  # the test extra; trec_eval through pytrec_eval

TIES = ("optimistic", "realistic", "pessimistic")
LOG2_3, LOG2_5 = math.log2(3), math.log2(5)


# --- hand-computed cases -------------------------------------------------------------------

# Items 0, 1, 2 with grades 2, 0, 1 ranked 1, 0, 2 (scores 0.5, 0.9, 0.1): the relevant
# items sit at ranks 2 (grade 2) and 3 (grade 1).
SCORES = np.array([0.5, 0.9, 0.1])
GRADES = np.array([2, 0, 1])


def test_ndcg_by_hand():
    dcg = 2 / LOG2_3 + 1 / 2  # rank 2: log2(3); rank 3: log2(4) = 2
    idcg = 2 + 1 / LOG2_3
    assert metrics.ndcg(SCORES, GRADES)[0] == pytest.approx(dcg / idcg)
    assert metrics.ndcg(SCORES, GRADES, 1)[0] == 0.0
    assert metrics.ndcg(SCORES, GRADES, 2)[0] == pytest.approx((2 / LOG2_3) / (2 + 1 / LOG2_3))
    exp_dcg = 3 / LOG2_3 + 1 / 2  # gains 2**2 - 1 = 3 and 2**1 - 1 = 1
    assert metrics.ndcg(SCORES, GRADES, gains="exponential")[0] == pytest.approx(exp_dcg / (3 + 1 / LOG2_3))


def test_ap_rr_hits_by_hand():
    assert metrics.average_precision(SCORES, GRADES)[0] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert metrics.reciprocal_rank(SCORES, GRADES)[0] == pytest.approx(1 / 2)
    assert metrics.hits_at_k(SCORES, GRADES, 1)[0] == 0.0
    assert metrics.hits_at_k(SCORES, GRADES, 2)[0] == 1.0


def test_a_constant_scorer_by_hand():
    """Four tied items, one relevant: it is equally likely at ranks 1..4."""
    scores, grades = np.zeros(4), np.array([0, 0, 1, 0])
    expected_rr = (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4
    for metric in (metrics.reciprocal_rank, metrics.average_precision):
        assert metric(scores, grades, ties="realistic")[0] == pytest.approx(expected_rr)
        assert metric(scores, grades, ties="optimistic")[0] == 1.0
        assert metric(scores, grades, ties="pessimistic")[0] == pytest.approx(1 / 4)
    assert metrics.hits_at_k(scores, grades, 1)[0] == pytest.approx(1 / 4)
    assert metrics.hits_at_k(scores, grades, 3)[0] == pytest.approx(3 / 4)
    assert metrics.ndcg(scores, grades)[0] == pytest.approx((1 + 1 / LOG2_3 + 1 / 2 + 1 / LOG2_5) / 4)
    assert metrics.ndcg(scores, grades, 2)[0] == pytest.approx((1 + 1 / LOG2_3) / 4)


def test_a_tie_group_with_two_relevant_items_by_hand():
    """Ranks 2..4 are a tie of two relevant items and one irrelevant one: the relevant
    pair is at ranks {2,3}, {2,4} or {3,4}, each with probability 1/3."""
    scores, grades = np.array([5.0, 3.0, 3.0, 3.0]), np.array([0, 1, 1, 0])
    ap = ((1 / 2 + 2 / 3) / 2 + (1 / 2 + 2 / 4) / 2 + (1 / 3 + 2 / 4) / 2) / 3
    assert metrics.average_precision(scores, grades)[0] == pytest.approx(ap)
    # The first relevant item is at rank 2 with probability 2/3, else at rank 3.
    assert metrics.reciprocal_rank(scores, grades)[0] == pytest.approx(2 / 3 * 1 / 2 + 1 / 3 * 1 / 3)
    assert metrics.hits_at_k(scores, grades, 2)[0] == pytest.approx(2 / 3)
    assert metrics.average_precision(scores, grades, ties="optimistic")[0] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert metrics.average_precision(scores, grades, ties="pessimistic")[0] == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_filtered_ranks_of_a_constant_scorer():
    n = 10
    answers = np.eye(n)[[3]]  # one answer, nine non-answers
    assert metrics.filtered_ranks(np.zeros(n), answers, ties="realistic")[0].tolist() == [(n + 1) / 2]
    assert metrics.filtered_ranks(np.zeros(n), answers, ties="pessimistic")[0].tolist() == [n]
    assert metrics.filtered_ranks(np.zeros(n), answers, ties="optimistic")[0].tolist() == [1]
    harmonic = sum(1 / r for r in range(1, n + 1))
    assert metrics.filtered_mrr(np.zeros(n), answers)[0] == pytest.approx(harmonic / n)
    assert metrics.filtered_hits_at_k(np.zeros(n), answers, 3)[0] == pytest.approx(3 / n)


def test_filtered_ranks_ignore_other_answers_by_hand():
    # Items 1 and 2 are answers; the non-answers score 3, 2 and 0.
    scores = np.array([3.0, 2.0, 2.0, 2.0, 0.0, 2.5])
    answers = [{1: 1, 2: 1, 5: 1}]
    # Item 5 (2.5): only item 0 is a non-answer above it. Items 1 and 2 (2.0): item 0
    # above, item 3 tied (item 5 is an answer, so it does not count).
    assert metrics.filtered_ranks(scores, answers, ties="optimistic")[0].tolist() == [2, 2, 2]
    assert metrics.filtered_ranks(scores, answers, ties="pessimistic")[0].tolist() == [3, 3, 2]
    assert metrics.filtered_ranks(scores, answers)[0].tolist() == [2.5, 2.5, 2]
    assert metrics.filtered_mrr(scores, answers)[0] == pytest.approx(((1 / 2 + 1 / 3) / 2 * 2 + 1 / 2) / 3)
    assert metrics.filtered_hits_at_k(scores, answers, 2)[0] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    assert metrics.filtered_mrr(scores, answers, ties="pessimistic")[0] == pytest.approx((1 / 3 + 1 / 3 + 1 / 2) / 3)


# --- against trec_eval (ir-measures) without ties -----------------------------------------


def random_problem(seed: int, queries: int = 40, items: int = 60):
    rng = np.random.default_rng(seed)
    scores = np.stack([rng.permutation(items) for _ in range(queries)]).astype(np.float64) + rng.random()
    grades = rng.choice([0, 0, 0, 0, 0, 1, 2, 3], size=(queries, items))
    grades[np.arange(queries), rng.integers(0, items, queries)] = rng.integers(1, 4, queries)  # >= 1 relevant
    return scores, grades


def reference(scores: np.ndarray, grades: np.ndarray, measures: list) -> dict:
    qrels = [
        ir_measures.Qrel(f"q{q}", f"d{i}", int(grades[q, i]))
        for q in range(grades.shape[0])
        for i in np.flatnonzero(grades[q])
    ]
    run = [
        ir_measures.ScoredDoc(f"q{q}", f"d{i}", float(scores[q, i]))
        for q in range(scores.shape[0])
        for i in range(scores.shape[1])
    ]
    out = {m: np.full(scores.shape[0], np.nan) for m in measures}
    # Name the provider: ir_measures otherwise picks one per measure set (trec_eval or
    # others, in an order that varies between processes), and they disagree on custom gains.
    for value in ir_measures.pytrec_eval.iter_calc(measures, qrels, run):
        out[value.measure][int(value.query_id[1:])] = value.value
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_trec_eval_without_ties(seed):
    scores, grades = random_problem(seed)
    nDCG, AP, RR = ir_measures.nDCG, ir_measures.AP, ir_measures.RR
    EXP_NDCG10 = nDCG(gains={0: 0, 1: 1, 2: 3, 3: 7}) @ 10  # trec_eval with gains 2**grade - 1
    measures = [nDCG @ 3, nDCG @ 5, nDCG @ 10, EXP_NDCG10, AP, RR]
    expected = reference(scores, grades, measures)
    for ties in TIES:
        for k in (3, 5, 10):
            np.testing.assert_allclose(metrics.ndcg(scores, grades, k, ties=ties), expected[nDCG @ k], atol=1e-4)
        np.testing.assert_allclose(
            metrics.ndcg(scores, grades, 10, ties=ties, gains="exponential"),
            expected[EXP_NDCG10],
            atol=1e-4,
        )
        np.testing.assert_allclose(metrics.average_precision(scores, grades, ties=ties), expected[AP], atol=1e-4)
        np.testing.assert_allclose(metrics.reciprocal_rank(scores, grades, ties=ties), expected[RR], atol=1e-4)


def test_trec_files_round_trip_through_trec_eval(tmp_path: Path):
    scores, grades = random_problem(7, queries=12, items=30)
    query_ids = [f"q{q}" for q in range(12)]
    item_ids = [f"doc-{i}" for i in range(30)]
    metrics.trec_run(tmp_path / "run.txt", scores, query_ids, item_ids, k=30, tag="mine")
    metrics.trec_qrels(tmp_path / "qrels.txt", [dict(enumerate(row)) for row in grades], query_ids, item_ids)
    run_lines = (tmp_path / "run.txt").read_text().splitlines()
    assert len(run_lines) == 12 * 30
    qid, q0, doc, rank, score, tag = run_lines[0].split()
    assert (qid, q0, rank, tag) == ("q0", "Q0", "1", "mine")
    assert float(score) == scores[0].max() and doc == f"doc-{int(np.argmax(scores[0]))}"
    qrels_lines = (tmp_path / "qrels.txt").read_text().splitlines()
    assert len(qrels_lines) == int((grades > 0).sum())  # grade-0 entries are left out
    qrels = list(ir_measures.read_trec_qrels(str(tmp_path / "qrels.txt")))
    run = list(ir_measures.read_trec_run(str(tmp_path / "run.txt")))
    values = {
        m: v
        for m, v in ir_measures.pytrec_eval.calc_aggregate([ir_measures.nDCG @ 10, ir_measures.AP], qrels, run).items()
    }
    assert values[ir_measures.nDCG @ 10] == pytest.approx(metrics.ndcg(scores, grades, 10).mean(), abs=1e-4)
    assert values[ir_measures.AP] == pytest.approx(metrics.average_precision(scores, grades).mean(), abs=1e-4)


def test_trec_run_keeps_the_top_k_and_rejects_bad_ids(tmp_path: Path):
    scores = np.array([[0.1, 0.3, 0.2, 0.3]])
    metrics.trec_run(tmp_path / "run.txt", scores, ["q"], ["a", "b", "c", "d"], k=3)
    lines = [line.split() for line in (tmp_path / "run.txt").read_text().splitlines()]
    assert [(doc, rank) for _, _, doc, rank, _, _ in lines] == [("b", "1"), ("d", "2"), ("c", "3")]
    with pytest.raises(ValueError, match="whitespace"):
        metrics.trec_run(tmp_path / "bad.txt", scores, ["q 1"], ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="whole-number"):
        metrics.trec_qrels(tmp_path / "bad.txt", [{0: 0.5}], ["q"], ["a", "b", "c", "d"])


# --- ties: brute force over all tie-breaking orders and Monte Carlo -------------------------


def plain_ndcg(grades_in_order: list[float], ideal: list[float], k: int) -> float:
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(grades_in_order[:k]))
    return dcg / sum(g / math.log2(i + 2) for i, g in enumerate(sorted(ideal, reverse=True)[:k]))


def plain_ap(grades_in_order: list[float]) -> float:
    hits, total = 0, 0.0
    for rank, grade in enumerate(grades_in_order, 1):
        if grade > 0:
            hits += 1
            total += hits / rank
    return total / hits


def plain_rr(grades_in_order: list[float]) -> float:
    return next(1 / rank for rank, grade in enumerate(grades_in_order, 1) if grade > 0)


def plain_hits(grades_in_order: list[float], k: int) -> float:
    return float(any(grade > 0 for grade in grades_in_order[:k]))


def all_orders(scores: np.ndarray):
    """Every ranking consistent with the scores: ties in every possible order."""
    levels = sorted(set(scores.tolist()), reverse=True)
    groups = [np.flatnonzero(scores == level).tolist() for level in levels]
    for parts in itertools.product(*(itertools.permutations(group) for group in groups)):
        yield [item for part in parts for item in part]


def test_realistic_is_the_exact_mean_over_all_tie_breaks_and_the_bounds_are_the_extremes():
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(150):
        n = int(rng.integers(2, 8))
        scores = rng.integers(0, 3, n).astype(np.float64)
        grades = rng.integers(0, 3, n).astype(np.float64)
        if not grades.any():
            grades[rng.integers(n)] = 1
        k = int(rng.integers(1, n + 1))
        plain = {
            "ndcg": lambda order, grades=grades, k=k: plain_ndcg(order, list(grades), k),
            "ap": plain_ap,
            "rr": plain_rr,
            "hits": lambda order, k=k: plain_hits(order, k),
        }
        ours = {
            "ndcg": lambda ties, s=scores, g=grades, k=k: metrics.ndcg(s, g, k, ties=ties)[0],
            "ap": lambda ties, s=scores, g=grades: metrics.average_precision(s, g, ties=ties)[0],
            "rr": lambda ties, s=scores, g=grades: metrics.reciprocal_rank(s, g, ties=ties)[0],
            "hits": lambda ties, s=scores, g=grades, k=k: metrics.hits_at_k(s, g, k, ties=ties)[0],
        }
        for name, metric in plain.items():
            values = [metric([grades[i] for i in order]) for order in all_orders(scores)]
            assert ours[name]("realistic") == pytest.approx(np.mean(values), abs=1e-12), (name, scores, grades, k)
            assert ours[name]("optimistic") == pytest.approx(max(values), abs=1e-12), (name, scores, grades, k)
            assert ours[name]("pessimistic") == pytest.approx(min(values), abs=1e-12), (name, scores, grades, k)
            checked += 1
    assert checked == 600


def test_realistic_matches_monte_carlo_on_a_larger_tied_ranking():
    rng = np.random.default_rng(5)
    n = 300
    scores = rng.integers(0, 6, n).astype(np.float64)  # groups of ~50 tied items
    grades = rng.choice([0, 0, 0, 0, 1, 2, 3], size=n).astype(np.float64)
    samples = {"ndcg": [], "ap": [], "rr": [], "hits": []}
    for _ in range(3000):
        order = np.lexsort((rng.random(n), -scores))  # by score, ties at random
        ranked = grades[order].tolist()
        samples["ndcg"].append(plain_ndcg(ranked, list(grades), 20))
        samples["ap"].append(plain_ap(ranked))
        samples["rr"].append(plain_rr(ranked))
        samples["hits"].append(plain_hits(ranked, 3))
    ours = {
        "ndcg": metrics.ndcg(scores, grades, 20)[0],
        "ap": metrics.average_precision(scores, grades)[0],
        "rr": metrics.reciprocal_rank(scores, grades)[0],
        "hits": metrics.hits_at_k(scores, grades, 3)[0],
    }
    for name, values in samples.items():
        standard_error = np.std(values) / math.sqrt(len(values))
        assert abs(ours[name] - np.mean(values)) < 4 * standard_error + 1e-9, name


def test_tie_rules_are_ordered_on_random_tied_batches():
    rng = np.random.default_rng(3)
    scores = torch.from_numpy(rng.integers(0, 4, (64, 40)).astype(np.float32))
    grades = torch.from_numpy(rng.choice([0, 0, 0, 1, 2], size=(64, 40)).astype(np.float32))
    for name, metric in {
        "ndcg@5": lambda ties: metrics.ndcg(scores, grades, 5, ties=ties),
        "map": lambda ties: metrics.average_precision(scores, grades, ties=ties),
        "mrr": lambda ties: metrics.reciprocal_rank(scores, grades, ties=ties),
        "hits@3": lambda ties: metrics.hits_at_k(scores, grades, 3, ties=ties),
        "filtered_mrr": lambda ties: metrics.filtered_mrr(scores, grades, ties=ties),
        "filtered_hits@3": lambda ties: metrics.filtered_hits_at_k(scores, grades, 3, ties=ties),
    }.items():
        best, middle, worst = (metric(ties) for ties in TIES)
        defined = ~np.isnan(middle)
        assert np.all(best[defined] >= middle[defined] - 1e-12), name
        assert np.all(middle[defined] >= worst[defined] - 1e-12), name
        assert np.any(best[defined] > worst[defined]), name  # the ties do matter here
    low, mid, high = (metrics.filtered_ranks(scores, grades, ties=ties) for ties in TIES)
    for a, b, c in zip(low, mid, high):
        assert np.all(a <= b) and np.all(b <= c)
        np.testing.assert_array_equal(b, (a + c) / 2)


def test_filtered_ranks_match_a_direct_count():
    rng = np.random.default_rng(9)
    scores = rng.integers(0, 5, (20, 30)).astype(np.float64)
    scores[0, :3] = [np.inf, -np.inf, np.inf]
    answers = rng.random((20, 30)) < 0.2
    answers[0, :3] = True
    optimistic = metrics.filtered_ranks(scores, answers, ties="optimistic")
    pessimistic = metrics.filtered_ranks(scores, answers, ties="pessimistic")
    for q in range(20):
        others = scores[q][~answers[q]]
        ids = np.flatnonzero(answers[q])
        assert optimistic[q].tolist() == [1 + int((others > scores[q, i]).sum()) for i in ids]
        assert pessimistic[q].tolist() == [1 + int((others >= scores[q, i]).sum()) for i in ids]


# --- inputs, undefined values, errors, scale -----------------------------------------------


def test_input_forms_agree():
    scores, grades = random_problem(4, queries=10, items=25)
    dense = metrics.evaluate(scores, grades, ["ndcg@5", "map", "mrr", "hits@3", "filtered_mrr", "filtered_hits@3"])
    as_dicts = [{int(i): int(grades[q, i]) for i in np.flatnonzero(grades[q])} for q in range(10)]
    assert metrics.evaluate(torch.from_numpy(scores).float(), as_dicts, list(dense)) == pytest.approx(dense)
    sets = [set(np.flatnonzero(row).tolist()) for row in grades]
    assert metrics.evaluate(scores, sets, ["map"]) == pytest.approx({"map": dense["map"]})
    assert metrics.ndcg(scores[0], grades[0], 5)[0] == pytest.approx(metrics.ndcg(scores, grades, 5)[0])
    assert metrics.ndcg(scores.astype(np.int64), grades, 5) == pytest.approx(metrics.ndcg(scores, grades, 5))


def test_queries_without_relevant_items_are_nan_and_skipped_by_evaluate():
    scores = np.array([[0.3, 0.2, 0.1], [0.3, 0.2, 0.1]])
    grades = np.array([[0, 0, 0], [0, 1, 0]])
    for metric in (metrics.ndcg, metrics.average_precision, metrics.reciprocal_rank, metrics.filtered_mrr):
        values = metric(scores, grades)
        assert math.isnan(values[0]) and values[1] == pytest.approx(0.5 if metric is not metrics.ndcg else 1 / LOG2_3)
    assert metrics.evaluate(scores, grades, ["mrr"]) == {"mrr": 0.5}


def test_bad_inputs_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="NaN"):
        metrics.ndcg(np.array([0.1, np.nan]), np.array([1, 0]))
    with pytest.raises(ValueError, match="ties"):
        metrics.ndcg(np.array([0.1, 0.2]), np.array([1, 0]), ties="random")
    with pytest.raises(ValueError, match="shape"):
        metrics.ndcg(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="outside"):
        metrics.average_precision(np.zeros((1, 3)), [{5: 1}])
    with pytest.raises(ValueError, match="k must be"):
        metrics.hits_at_k(np.zeros(3), np.ones(3), 0)
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.evaluate(np.zeros(3), np.ones(3), ["ndcg@x"])


def test_scales_to_thousands_of_queries_over_ten_thousand_items():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(500, 10_000, generator=generator)
    grades = (torch.rand(500, 10_000, generator=generator) < 0.01).float()
    scores[:, :100] = 0.0  # a block of ties in every query
    values = metrics.evaluate(scores, grades, ["ndcg@10", "map", "mrr", "hits@10", "filtered_mrr"])
    assert all(0.0 < v < 1.0 for v in values.values())
