"""The Bayesian two-type model: one likelihood with the EM, compressed = uncompressed, finite
log density and gradient, configs, predictive sampling, save/load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from comparemode import BayesianTwoType, TwoTypeEM, simulate_votes
from comparemode.errors import ConfigError, NotFittedError, NotIdentifiableError
from comparemode.inference.mcmc import MODEL_VERSION
from comparemode.models.likelihood import NUMPY_OPS, tensor_ops, type_logliks
from comparemode.models.pymc_model import build_pymc_model, check_priors
from comparemode.models.stats import Patterns, aggregate, compress
from comparemode.reference import encode_rows, resolve_reference

from conftest import QUICK_SAMPLER


def _patterns(sim, uncompressed=False):
    ref = resolve_reference(sim.votes, **sim.reference)
    enc, _ = encode_rows(sim.votes, ref)
    st = aggregate(enc, mu=ref.mu)
    if uncompressed:  # one pattern per user, weight 1: the model as written per user
        u = len(st.n)
        return Patterns(n=st.n, t=st.t, f=st.f, k=st.k, mu=st.mu, weight=np.ones(u), inverse=np.arange(u))
    return compress(st)


def _points(model, rng, n=3):
    ip = model.initial_point()
    yield ip
    for _ in range(n - 1):
        yield {k: v + rng.normal(0, 0.5, np.shape(v)) for k, v in ip.items()}


@pytest.mark.parametrize("estimate_mu", [False, True])
def test_compressed_model_has_the_uncompressed_log_density(small_sim, estimate_mu):
    priors = check_priors(None)
    comp = _patterns(small_sim)
    full = _patterns(small_sim, uncompressed=True)
    assert comp.size < full.size
    m_comp = build_pymc_model(comp, careless="beta", ties="model", priors=priors, estimate_mu=estimate_mu)
    m_full = build_pymc_model(full, careless="beta", ties="model", priors=priors, estimate_mu=estimate_mu)
    f_comp, f_full = m_comp.compile_logp(), m_full.compile_logp()
    g_comp, g_full = m_comp.compile_dlogp(), m_full.compile_dlogp()
    for point in _points(m_comp, np.random.default_rng(0)):
        assert f_comp(point) == pytest.approx(f_full(point), rel=1e-10)
        np.testing.assert_allclose(g_comp(point), g_full(point), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("careless", ["beta", "shared", "random"])
@pytest.mark.parametrize("ties", ["model", "drop"])
def test_logp_and_gradient_finite_at_initial_point(small_sim, careless, ties):
    model = build_pymc_model(_patterns(small_sim), careless=careless, ties=ties, priors=check_priors(None), estimate_mu=True)
    point = model.initial_point()
    assert np.isfinite(model.compile_logp()(point))
    assert np.all(np.isfinite(model.compile_dlogp()(point)))


def test_gradient_matches_finite_differences(small_sim):
    model = build_pymc_model(_patterns(small_sim), careless="beta", ties="model", priors=check_priors(None), estimate_mu=True)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    point = next(iter(_points(model, np.random.default_rng(1), 2)))
    names = list(point)
    grad = dlogp(point)
    h = 1e-6
    for i, name in enumerate(names):
        up = dict(point, **{name: point[name] + h})
        down = dict(point, **{name: point[name] - h})
        assert grad[i] == pytest.approx((logp(up) - logp(down)) / (2 * h), rel=1e-5, abs=1e-5)


def test_pymc_likelihood_is_the_em_likelihood(small_sim, small_fit):
    """The model's likelihood term at the EM estimate equals the EM's observed log-likelihood."""
    import pytensor

    pat = _patterns(small_sim)
    model = build_pymc_model(pat, careless="beta", ties="model", priors=check_priors(None))
    p = small_fit.params_
    point = {
        "pi": p["pi"],
        "careless_first_mean": p["careless_first_mean"],
        "careless_first_kappa": p["careless_first_kappa"],
        "tie_attentive_mean": p["tie_attentive_mean"],
        "tie_attentive_kappa": p["tie_attentive_kappa"],
        "tie_careless_mean": p["tie_careless_mean"],
        "tie_careless_kappa": p["tie_careless_kappa"],
    }
    loglik = model["loglik"]
    fn = pytensor.function([model[name] for name in point], loglik, on_unused_input="ignore")
    assert float(fn(*point.values())) == pytest.approx(small_fit.loglik_, rel=1e-10)


def test_tensor_and_numpy_type_logliks_agree():
    import pytensor

    rng = np.random.default_rng(2)
    n = rng.integers(1, 30, 50).astype(float)
    t = np.floor(rng.random(50) * n)
    f = np.floor(rng.random(50) * (n - t + 1))
    s = -rng.random(50) * 10
    params = {"careless_first": (1.3, 0.7), "tie_attentive": (2.0, 8.0), "tie_careless": (1.0, 4.0)}
    l1, l0 = type_logliks(n, t, f, s, params, "beta", "model", NUMPY_OPS)
    t1, t0 = type_logliks(n, t, f, s, params, "beta", "model", tensor_ops())
    out = pytensor.function([], [t1, t0])()
    np.testing.assert_allclose(out[0], l1, rtol=1e-12)
    np.testing.assert_allclose(out[1], l0, rtol=1e-12)


# -- configs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "priors,match",
    [
        ({"pi": {"alpha": -1.0}}, "'pi'.*'alpha'.*positive"),
        ({"pi": {"alpha": float("nan")}}, "'pi'.*'alpha'"),
        ({"tie_kappa": {"sigma": 0}}, "'tie_kappa'.*'sigma'"),
        ({"mu": {"alpha": "two"}}, "'mu'.*'alpha'"),
        ({"pi": {"dist": "Normal", "mu": 0, "sigma": 1}}, "'pi' must be a Beta"),
        ({"rho": {"alpha": 1}}, "unknown prior 'rho'"),
        ({"pi": {"alpha": 1, "gamma": 2}}, "unknown parameter"),
        ({"pi": [1, 1]}, "'pi' must be a dict"),
    ],
)
def test_invalid_priors(priors, match):
    with pytest.raises(ConfigError, match=match):
        BayesianTwoType(model_config={"priors": priors})


def test_priors_merge_over_defaults():
    merged = check_priors({"pi": {"alpha": 3.0}})
    assert merged["pi"] == {"dist": "Beta", "alpha": 3.0, "beta": 1.0}
    assert merged["mu"]["alpha"] == 2.0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"sampler_config": {"sampler": "metropolis"}}, "sampler must be one of"),
        ({"sampler_config": {"draws": 0}}, "draws"),
        ({"sampler_config": {"target_accept": 1.5}}, "target_accept"),
        ({"sampler_config": {"thin": 2}}, "unknown sampler_config key"),
        ({"model_config": {"careless": "lazy"}}, "careless"),
        ({"model_config": {"mu": "guess"}}, "'known', 'estimate' or 'joint'"),
    ],
)
def test_invalid_configs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        BayesianTwoType(**kwargs)


def test_configs_are_plain_json():
    model = BayesianTwoType(model_config={"careless": "random"}, sampler_config={"draws": 10})
    again = BayesianTwoType(**json.loads(json.dumps({"model_config": model.model_config, "sampler_config": model.sampler_config})))
    assert again.model_config == model.model_config and again.sampler_config == model.sampler_config


def test_not_fitted():
    with pytest.raises(NotFittedError, match="fit"):
        BayesianTwoType().users_


# -- mu unknown -------------------------------------------------------------------------


def test_mu_unidentifiable_with_one_vote_per_user():
    sim = simulate_votes(n_users=400, votes_per_user=1, random_seed=3)
    model = BayesianTwoType(model_config={"mu": "estimate"}, sampler_config=QUICK_SAMPLER)
    with pytest.raises(NotIdentifiableError, match="one decisive vote"):
        model.build_model(sim.votes)


def test_mu_estimate_refuses_a_given_mu(small_sim):
    with pytest.raises(ConfigError, match="do not pass mu"):
        BayesianTwoType(model_config={"mu": "estimate"}).build_model(small_sim.votes, mu={"model_x": 0.7})


def test_mu_estimate_needs_two_models(arena_sim):
    with pytest.raises(ConfigError, match="exactly two models"):
        BayesianTwoType(model_config={"mu": "estimate"}).build_model(arena_sim.votes)


# -- a real (small) fit ------------------------------------------------------------------


def test_fit_returns_a_datatree_with_configs(bayes_fit, bayes_sim):
    idata = bayes_fit.idata_
    assert {"posterior", "sample_stats", "constant_data", "user_data"} <= set(idata.children)
    attrs = idata.attrs
    assert attrs["comparemode_model_version"] == MODEL_VERSION
    assert json.loads(attrs["model_config"]) == bayes_fit.model_config
    assert json.loads(attrs["sampler_config"])["draws"] == QUICK_SAMPLER["draws"]
    summary = json.loads(attrs["data_summary"])
    assert summary["n_votes"] == len(bayes_sim.votes) and summary["n_users"] == 300
    assert idata["posterior"]["pi"].shape == (2, 300)


def test_user_probabilities_are_averaged_over_draws(bayes_fit):
    users = bayes_fit.users_
    assert len(users) == 300
    p = users["p_attentive"]
    assert ((p >= 0) & (p <= 1)).all()
    assert (users["p_attentive_lower"] <= p + 1e-12).all() and (p <= users["p_attentive_upper"] + 1e-12).all()
    assert (users["p_attentive_sd"] > 0).any()
    # averaging is not plugging in: recompute one user's probability draw by draw
    post = bayes_fit.idata_["posterior"]
    u = users.index[0]
    row = users.loc[u]
    draws = {k: post[k].values.reshape(-1) for k in bayes_fit.param_names}
    from comparemode.models.pymc_model import beta_from_mean_kappa

    params = {
        "careless_first": beta_from_mean_kappa(draws["careless_first_mean"], draws["careless_first_kappa"]),
        "tie_attentive": beta_from_mean_kappa(draws["tie_attentive_mean"], draws["tie_attentive_kappa"]),
        "tie_careless": beta_from_mean_kappa(draws["tie_careless_mean"], draws["tie_careless_kappa"]),
    }
    d = row["n_decisive"]
    s = row["n_stronger"] * np.log(0.7) + (d - row["n_stronger"]) * np.log(0.3)
    l1, l0 = type_logliks(row["n_votes"], row["n_ties"], row["n_first"], s, params, "beta", "model")
    gamma = 1 / (1 + np.exp(np.log1p(-draws["pi"]) + l0 - np.log(draws["pi"]) - l1))
    assert row["p_attentive"] == pytest.approx(gamma.mean(), rel=1e-9)
    assert row["p_attentive_sd"] == pytest.approx(gamma.std(), rel=1e-6, abs=1e-9)


def test_diagnostics_and_summary(bayes_fit):
    diag = bayes_fit.diagnostics()
    assert list(diag.index) == bayes_fit.param_names
    assert {"r_hat", "ess_bulk", "ess_tail", "r_hat_ok"} <= set(diag.columns)
    assert isinstance(diag.attrs["divergences"], int)
    strict = bayes_fit.diagnostics({"r_hat_max": 0.5, "ess_bulk_min": 1e9, "ess_tail_min": 1e9, "divergences_max": -1})
    assert not strict["r_hat_ok"].any() and not strict.attrs["divergences_ok"]  # a failed check shows as failed
    summ = bayes_fit.summary(0.9)
    assert "hdi90_lb" in summ.columns and list(summ.index) == bayes_fit.param_names


def test_save_load_round_trip(bayes_fit, tmp_path):
    path = bayes_fit.save(tmp_path / "model.nc")
    loaded = BayesianTwoType.load(path)
    pd.testing.assert_frame_equal(loaded.users_, bayes_fit.users_, check_exact=True)
    assert loaded.model_config == bayes_fit.model_config and loaded.sampler_config == bayes_fit.sampler_config
    assert loaded.reference_ == bayes_fit.reference_
    pd.testing.assert_series_equal(loaded.prob_attentive_above(0.5), bayes_fit.prob_attentive_above(0.5))


def test_load_refuses_other_versions_and_other_files(bayes_fit, tmp_path):
    idata = bayes_fit.idata_.copy()
    idata.attrs = dict(idata.attrs, comparemode_model_version="0")
    idata.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    with pytest.raises(ConfigError, match="model version '0'.*Refit"):
        BayesianTwoType.load(tmp_path / "old.nc")
    (tmp_path / "junk.nc").write_bytes(b"not a netcdf file")
    with pytest.raises(ConfigError, match="not a saved comparemode model"):
        BayesianTwoType.load(tmp_path / "junk.nc")
    with pytest.raises(ConfigError, match="does not exist"):
        BayesianTwoType.load(tmp_path / "missing.nc")


def test_posterior_predictive_replicates_the_design(bayes_fit, bayes_sim):
    pp = bayes_fit.sample_posterior_predictive(draws=40, random_seed=3)
    rep = pp["posterior_predictive"]
    obs = pp["observed_data"]
    assert rep["n_ties"].shape == (1, 40, 300)
    n = bayes_fit.users_["n_votes"].to_numpy()
    assert (rep["n_ties"].values <= n).all() and (rep["n_first"].values + rep["n_ties"].values <= n).all()
    # the replicated overall tie rate is close to the observed one (the model fits ties)
    assert float(rep["n_ties"].mean()) == pytest.approx(float(obs["n_ties"].mean()), rel=0.1)
    again = bayes_fit.sample_posterior_predictive(draws=40, random_seed=3)
    np.testing.assert_array_equal(again["posterior_predictive"]["n_first"].values, rep["n_first"].values)


def test_prior_predictive_is_its_own_method(bayes_sim):
    model = BayesianTwoType(model_config={"mu": "estimate"}, sampler_config=QUICK_SAMPLER)
    prior = model.sample_prior_predictive(bayes_sim.votes, draws=30, random_seed=4)
    assert model.idata_ is None  # no posterior sampling happened
    assert set(prior.children) == {"prior", "prior_predictive", "observed_data"}
    assert prior["prior"]["mu"].shape == (1, 30)
    assert prior["prior_predictive"]["n_stronger"].shape == (1, 30, 300)


def test_em_and_mcmc_agree_roughly_on_small_data(bayes_fit, bayes_sim):
    em = TwoTypeEM().fit(bayes_sim.votes, **bayes_sim.reference)
    summ = bayes_fit.summary()
    assert summ.loc["pi", "hdi94_lb"] <= em.params_["pi"] <= summ.loc["pi", "hdi94_ub"]
    gap = (em.users_["p_attentive"] - bayes_fit.users_["p_attentive"].reindex(em.users_.index)).abs()
    assert gap.max() < 0.15
