"""The Beta-Binomial M-steps' fast evaluation (issue 16): analytic derivatives against finite
differences, the single-point, batched and derivative evaluations giving the same numbers, the
weights-independent layout reused across weightings, and the restructured safeguarded Newton
ascent taking the steps of the one-point-at-a-time line search in fewer evaluations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from comparemode.inference import steps
from comparemode.models import likelihood
from comparemode.models.likelihood import BetaBinomialData, BetaBinomialLayout, log_betabinom_seq


def _data(rng, rows, n_max):
    n = rng.integers(0, n_max + 1, rows).astype(float)
    k = np.floor(rng.beta(0.7, 1.5, rows) * (n + 1)).clip(0, n)
    w = rng.random(rows) * 3
    return k, n, w


# rising form with the indicator product, rising form with the bincount, special functions
FORMS = [(300, 40), (3000, 60), (5, 5000)]
POINTS = [(0.2, -0.4), (2.5, 3.0), (-2.0, 1.0), (9.0, 11.0)]


def _form(data):
    if not data.rising:
        return "special"
    return "indicator" if data.layout._indicator is not None else "bincount"


def test_the_three_forms_are_exercised():
    rng = np.random.default_rng(0)
    assert [_form(BetaBinomialData(*_data(rng, r, m))) for r, m in FORMS] == ["indicator", "bincount", "special"]


@pytest.mark.parametrize("rows,n_max", FORMS)
def test_terms_gradient_and_hessian_match_finite_differences(rows, n_max):
    rng = np.random.default_rng(rows)
    k, n, w = _data(rng, rows, n_max)
    data = BetaBinomialData(k, n, w)
    h = 1e-5
    for la, lb in POINTS:
        value, ga, gb, haa, hab, hbb = data.terms(la, lb)
        direct = float(np.dot(w, log_betabinom_seq(k, n, math.exp(la), math.exp(lb))))
        assert value == pytest.approx(direct, rel=1e-10, abs=1e-8)
        fd_g = [(data.value(la + h, lb) - data.value(la - h, lb)) / (2 * h), (data.value(la, lb + h) - data.value(la, lb - h)) / (2 * h)]
        np.testing.assert_allclose([ga, gb], fd_g, rtol=1e-5, atol=1e-4)
        plus_a, minus_a = data.terms(la + h, lb), data.terms(la - h, lb)
        plus_b, minus_b = data.terms(la, lb + h), data.terms(la, lb - h)
        fd_h = [
            [(plus_a[1] - minus_a[1]) / (2 * h), (plus_b[1] - minus_b[1]) / (2 * h)],
            [(plus_a[2] - minus_a[2]) / (2 * h), (plus_b[2] - minus_b[2]) / (2 * h)],
        ]
        np.testing.assert_allclose([[haa, hab], [hab, hbb]], fd_h, rtol=1e-4, atol=1e-4)
        # the array form carries the same numbers
        v, g, hess = data.objective(la, lb, derivatives=True)
        assert v == value and list(g) == [ga, gb] and hess.tolist() == [[haa, hab], [hab, hbb]]


@pytest.mark.parametrize("rows,n_max", FORMS)
def test_single_batched_and_derivative_evaluations_agree_exactly(rows, n_max):
    """The line search compares values from all three calls, so they are the same numbers."""
    rng = np.random.default_rng(rows + 1)
    data = BetaBinomialData(*_data(rng, rows, n_max))
    las, lbs = [p[0] for p in POINTS], [p[1] for p in POINTS]
    batched = data.values(las, lbs)
    for (la, lb), v in zip(POINTS, batched):
        assert data.value(la, lb) == data.terms(la, lb)[0] == data.objective(la, lb) == v


@pytest.mark.parametrize("rows,n_max", FORMS[:2])
def test_rising_weights_are_the_tails_of_the_counts(rows, n_max):
    rng = np.random.default_rng(rows + 2)
    k, n, w = _data(rng, rows, n_max)
    data = BetaBinomialData(k, n, w)
    j = np.arange(int(n.max()))
    for row, counts in zip((data.A, data.B, data.C), (k, n - k, n)):
        np.testing.assert_allclose(row, [(w * (counts > i)).sum() for i in j], rtol=1e-12, atol=1e-12)


def test_indicator_and_bincount_tails_agree(monkeypatch):
    rng = np.random.default_rng(5)
    k, n, w = _data(rng, 200, 30)
    product = BetaBinomialLayout(k, n).tails(w)
    monkeypatch.setattr(likelihood, "_INDICATOR_MAX", 0)
    counted = BetaBinomialLayout(k, n)
    assert counted._indicator is None
    np.testing.assert_allclose(counted.tails(w), product, rtol=1e-13, atol=1e-12)


def test_one_layout_serves_many_weightings():
    rng = np.random.default_rng(6)
    k, n, _ = _data(rng, 80, 25)
    layout = BetaBinomialLayout(k, n)
    for _ in range(3):
        w = rng.random(k.size)
        held, fresh = layout.data(w), BetaBinomialData(k, n, w)
        for la, lb in POINTS:
            assert held.terms(la, lb) == fresh.terms(la, lb)


def test_empty_and_zero_count_data():
    for k, n in [(np.zeros(0), np.zeros(0)), (np.zeros(4), np.zeros(4))]:
        data = BetaBinomialData(k, n, np.ones(k.size))
        assert data.terms(0.3, -0.2) == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        assert data.values([0.3, 1.0], [-0.2, 2.0]) == [0.0, 0.0]
    assert steps.bb_mstep(np.zeros(3), np.ones(3), np.zeros(3), (2.0, 3.0)) == (2.0, 3.0)


# -- the ascent ---------------------------------------------------------------------------


def _one_point_at_a_time(data, ab, max_steps=2):
    """The safeguarded Newton ascent as it was before the fast evaluation: every trial point
    evaluated alone, derivatives in a second call, the step halved from 1 while t > 1e-6."""
    x = np.log(np.asarray(ab, dtype=float))
    f, g, h = data.objective(x[0], x[1], derivatives=True)
    scale = 1.0 + abs(f)
    for _ in range(max_steps):
        step = np.array(steps._ascent_step2(-h[0, 0], -h[0, 1], -h[1, 1], g[0], g[1]))
        length = float(np.abs(step).max())
        if length > 3.0:
            step *= 3.0 / length
        t, found = 1.0, None
        while t > 1e-6:
            xn = np.clip(x + t * step, steps.LOG_MIN, steps.LOG_MAX)
            fn = data.objective(xn[0], xn[1])
            if fn >= f:
                found = xn, fn
                break
            t *= 0.5
        if found is None:
            break
        x, gain = found[0], found[1] - f
        if gain <= 1e-13 * scale:
            break
        f, g, h = data.objective(x[0], x[1], derivatives=True)
    return tuple(np.exp(x))


def _cases(count, seed):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        rows, n_max = int(rng.integers(1, 300)), int(rng.choice([3, 10, 40, 2000]))
        k, n, w = _data(rng, rows, n_max)
        w *= rng.choice([1.0, 1e3])
        ab = (math.exp(rng.uniform(-5.0, 12.0)), math.exp(rng.uniform(-5.0, 12.0)))
        yield k, n, w, ab, int(rng.choice([1, 2, 5]))


def test_ascent_takes_the_steps_of_the_one_point_line_search_and_never_lowers_the_objective():
    for k, n, w, ab, max_steps in _cases(150, 7):
        new = steps.bb_mstep(k, n, w, ab, max_steps)
        # the same steps: only rounding apart (the Hessian in log a, log b is close to
        # singular along a = b, so rounding of the derivatives moves a step by up to ~1e-8)
        np.testing.assert_allclose(new, _one_point_at_a_time(BetaBinomialData(k, n, w), ab, max_steps), rtol=1e-6)
        data = BetaBinomialData(k, n, w)
        start = data.value(math.log(ab[0]), math.log(ab[1]))
        assert data.value(math.log(new[0]), math.log(new[1])) >= start - 1e-12 * (1.0 + abs(start))


def _counting(monkeypatch):
    calls = {"terms": 0, "value": 0, "values": 0}
    for name in calls:
        method = getattr(BetaBinomialData, name)

        def counted(self, *args, _method=method, _name=name):
            calls[_name] += 1
            return _method(self, *args)

        monkeypatch.setattr(BetaBinomialData, name, counted)
    return calls


def test_a_newton_mstep_takes_three_evaluations(monkeypatch):
    """Two full Newton steps: derivatives at the start and at the first step's point (in the
    call that also gives its value), the value alone at the second's; five calls before."""
    rng = np.random.default_rng(8)
    n = rng.integers(1, 20, 500).astype(float)
    k = rng.binomial(n.astype(int), rng.beta(3.0, 5.0, 500)).astype(float)
    calls = _counting(monkeypatch)
    steps.bb_mstep(k, n, np.ones(500), (2.5, 4.0))
    assert calls == {"terms": 2, "value": 1, "values": 0}


class _Hyperbolic:
    """A concave objective on which Newton's step overshoots (``-sqrt(1 + x^2)`` in each
    coordinate: from 1.2 the full step lands at -1.73, lower), in the evaluation interface of
    :class:`BetaBinomialData`."""

    def __init__(self):
        self.calls = {"terms": 0, "value": 0, "values": 0}

    def _f(self, x0, x1):
        return -math.sqrt(1 + x0 * x0) - math.sqrt(1 + x1 * x1)

    def objective(self, x0, x1, derivatives=False):
        if not derivatives:
            return self._f(x0, x1)
        r0, r1 = math.sqrt(1 + x0 * x0), math.sqrt(1 + x1 * x1)
        return self._f(x0, x1), np.array([-x0 / r0, -x1 / r1]), np.array([[-1 / r0**3, 0.0], [0.0, -1 / r1**3]])

    def terms(self, x0, x1):
        self.calls["terms"] += 1
        v, g, h = self.objective(x0, x1, derivatives=True)
        return v, g[0], g[1], h[0, 0], h[0, 1], h[1, 1]

    def value(self, x0, x1):
        self.calls["value"] += 1
        return self._f(x0, x1)

    def values(self, x0s, x1s):
        self.calls["values"] += 1
        return [self._f(a, b) for a, b in zip(x0s, x1s)]


def test_a_refused_step_is_halved_in_one_batched_evaluation():
    start = (math.exp(1.2), math.exp(-1.3))
    for max_steps in (1, 2, 4):
        data = _Hyperbolic()
        new = steps._bb_ascent(data, start, max_steps)
        assert data.calls["values"] >= 1  # the full step was refused and halved
        assert data.calls["terms"] + data.calls["value"] + data.calls["values"] <= 3 * max_steps
        np.testing.assert_allclose(new, _one_point_at_a_time(_Hyperbolic(), start, max_steps), rtol=1e-14)
        assert data.value(*np.log(new)) > data.value(*np.log(start))


def test_at_the_optimum_steps_refused_by_rounding_are_handled_as_before(monkeypatch):
    """Converged, a Newton step's value differs from the start's by rounding, often below it:
    the halvings then run (as in the EM's last iterations) and find the same point."""
    batched = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        n = rng.integers(1, 20, 300).astype(float)
        k = rng.binomial(n.astype(int), rng.beta(3.0, 5.0, 300)).astype(float)
        w = rng.random(300) * 1e3
        ab = (2.0, 3.0)
        for _ in range(30):
            ab = steps.bb_mstep(k, n, w, ab)
        calls = _counting(monkeypatch)
        new = steps.bb_mstep(k, n, w, ab)
        monkeypatch.undo()
        batched += calls["values"]
        np.testing.assert_allclose(new, _one_point_at_a_time(BetaBinomialData(k, n, w), ab), rtol=1e-9)
    assert batched > 0


def test_kappa_step_matches_the_one_point_line_search():
    def reference(k, n, w, mean, kappa, max_steps=3):
        data = BetaBinomialData(k, n, w)
        la, lb = math.log(mean), math.log1p(-mean)
        lo, hi = steps.LOG_MIN - min(la, lb), steps.LOG_MAX - max(la, lb)
        x = math.log(kappa)
        f, g, h = data.objective(la + x, lb + x, derivatives=True)
        for _ in range(max_steps):
            gx, hx = float(g[0] + g[1]), float(h[0, 0] + 2 * h[0, 1] + h[1, 1])
            step = max(min(gx / -hx if hx < 0 else math.copysign(1.0, gx), 3.0), -3.0)
            t, found = 1.0, None
            while t > 1e-6:
                xn = min(max(x + t * step, lo), hi)
                fn = data.objective(la + xn, lb + xn)
                if fn >= f:
                    found = xn, fn
                    break
                t *= 0.5
            if found is None:
                break
            gain, x = found[1] - f, found[0]
            if gain <= 1e-13 * (1.0 + abs(f)):
                break
            f, g, h = data.objective(la + x, lb + x, derivatives=True)
        return math.exp(x)

    rng = np.random.default_rng(10)
    for _ in range(60):
        n = rng.integers(2, 40, 300).astype(float)
        mean = float(rng.uniform(0.1, 0.9))
        k = rng.binomial(n.astype(int), rng.beta(mean * 8, (1 - mean) * 8, 300)).astype(float)
        w = rng.random(300)
        kappa = math.exp(rng.uniform(-1.0, 9.0))
        assert steps.bb_kappa_step(k, n, w, mean, kappa) == pytest.approx(reference(k, n, w, mean, kappa), rel=1e-7)


def test_problem_mstep_on_kept_layouts_equals_fresh_msteps():
    import comparemode as cm
    from comparemode.models.stats import aggregate, patterns_for
    from comparemode.reference import encode_rows, resolve_reference

    sim = cm.simulate_votes(3000, 8, mu=0.7, random_seed=2)
    ref = resolve_reference(sim.votes, **sim.reference)
    enc, _ = encode_rows(sim.votes, ref)
    ties, pat = patterns_for(aggregate(enc, mu=ref.mu), "model")
    problem = steps.Problem(pat, "beta", ties)
    p = {"pi": 0.5, "careless_first": (2.0, 2.0), "tie_attentive": (1.0, 9.0), "tie_careless": (0.5, 2.0)}
    for _ in range(3):
        gamma = problem.evaluate(p, *problem.logliks(p))[1]
        new = problem.mstep(p, gamma)
        w1 = problem.w * gamma
        w0 = problem.w - w1
        fresh = {
            "careless_first": steps.bb_mstep(problem.pos_f, problem.pos_d, np.bincount(problem.pos_idx, w0, problem.pos_d.size), p["careless_first"]),
            "tie_attentive": steps.bb_mstep(problem.tie_t, problem.tie_n, np.bincount(problem.tie_idx, w1, problem.tie_n.size), p["tie_attentive"]),
            "tie_careless": steps.bb_mstep(problem.tie_t, problem.tie_n, np.bincount(problem.tie_idx, w0, problem.tie_n.size), p["tie_careless"]),
        }
        for name, value in fresh.items():
            assert new[name] == value
        p = new
    assert set(problem._bb_layouts) == {"position", "tie"}
