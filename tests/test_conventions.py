"""Ecosystem conventions (issue 15, point 5): scikit-learn's parameter protocol on every
estimator, a per-user ``log_likelihood`` group in every posterior DataTree (``arviz.loo`` and
``arviz.compare`` run on the fits as they are), ArviZ's own diagnostics and plots."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from conftest import QUICK_SAMPLER

from comparemode import (
    BayesianAlternative,
    BayesianTwoType,
    BradleyTerry,
    ContinuousQuality,
    HomogeneousEM,
    JointEM,
    PartisanScreen,
    TwoTypeEM,
)
from comparemode.errors import ConfigError, NotFittedError
from comparemode.inference import sampling
from comparemode.inference.diagnostics import bfmi, plot_energy, plot_ranks
from comparemode.inference.mcmc import _content_digest
from comparemode.inference.model_checks import user_loo

#: One estimator of each class, with some settings away from the defaults (name, instance,
#: the settings that must show in its repr).
ESTIMATORS = [
    ("TwoTypeEM", lambda: TwoTypeEM(careless="shared", random_seed=3, mu_spread=True), {"careless": "shared", "random_seed": 3, "mu_spread": True}),
    ("JointEM", lambda: JointEM(ties="davidson", prior_games=2.0), {"ties": "davidson", "prior_games": 2.0}),
    ("ContinuousQuality", lambda: ContinuousQuality(careless="random", n_starts=2), {"careless": "random", "n_starts": 2}),
    ("HomogeneousEM", lambda: HomogeneousEM(ties="drop", tol=1e-6), {"ties": "drop", "tol": 1e-6}),
    ("BradleyTerry", lambda: BradleyTerry(ties="half", interval="bootstrap", n_boot=50), {"ties": "half", "interval": "bootstrap", "n_boot": 50}),
    ("PartisanScreen", lambda: PartisanScreen(level=0.05, min_shown=3), {"level": 0.05, "min_shown": 3}),
    ("BayesianTwoType", lambda: BayesianTwoType(model_config={"careless": "shared"}, sampler_config={"draws": 50, "chains": 2}),
     {"model_config": {"careless": "shared"}, "sampler_config": {"draws": 50, "chains": 2}}),
    ("BayesianAlternative", lambda: BayesianAlternative("homogeneous", model_config={"ties": "drop"}, sampler_config={"draws": 50}),
     {"kind": "homogeneous", "model_config": {"ties": "drop"}, "sampler_config": {"draws": 50}}),
]
IDS = [name for name, _, _ in ESTIMATORS]
SMALL_SAMPLER = {"draws": 150, "tune": 150, "chains": 2, "cores": 1, "random_seed": 5, "progressbar": False}


def _sklearn_clone():
    return pytest.importorskip("sklearn.base", reason="scikit-learn is not installed: the clone protocol is checked without it below").clone


# -- scikit-learn parameters ----------------------------------------------------------------


@pytest.mark.parametrize(("name", "make", "shown"), ESTIMATORS, ids=IDS)
def test_params_are_the_constructor_arguments_and_round_trip(name, make, shown):
    est = make()
    params = est.get_params()
    init = [p for p in inspect.signature(type(est).__init__).parameters if p != "self"]
    assert list(params) == init  # exactly the constructor's arguments, in its order
    assert est.get_params(deep=False) == params
    again = type(est)(**params)
    assert again.get_params() == params
    json.dumps(params)  # the command line writes them to summary.json
    for key, value in shown.items():
        got = params[key]
        assert ((got | value) == got) if isinstance(value, dict) else got == value


@pytest.mark.parametrize(("name", "make", "shown"), ESTIMATORS, ids=IDS)
def test_repr_shows_what_was_set(name, make, shown):
    est = make()
    text = repr(est)
    assert text.startswith(f"{name}(") and text.endswith(")")
    for key, value in shown.items():
        assert f"{key}={value!r}" in text, text
    assert repr(type(est)()) == f"{name}()"
    assert eval(text, {name: type(est)}).get_params() == est.get_params()  # the repr is the constructor call


@pytest.mark.parametrize(("name", "make", "shown"), ESTIMATORS, ids=IDS)
def test_sklearn_clone(name, make, shown):
    clone = _sklearn_clone()
    est = make()
    twin = clone(est)
    assert type(twin) is type(est) and twin is not est
    assert twin.get_params() == est.get_params()
    for key, value in est.get_params().items():
        if isinstance(value, dict):
            assert twin.get_params()[key] is not value  # the configs are copies


@pytest.mark.parametrize(("name", "make", "shown"), ESTIMATORS, ids=IDS)
def test_set_params_returns_self_and_refuses_unknown_names(name, make, shown):
    est = make()
    assert est.set_params() is est
    first = next(iter(est.get_params()))
    assert est.set_params(**{first: est.get_params()[first]}) is est
    with pytest.raises(ConfigError, match=rf"{name} has no parameter\(s\) \['bogus'\]; its parameters are .*{first}"):
        est.set_params(bogus=1)


def test_joint_em_params_add_prior_games_and_drop_mu_spread():
    params = JointEM(prior_games=0.5).get_params()
    assert params["prior_games"] == 0.5 and "mu_spread" not in params
    with pytest.raises(ConfigError, match="no parameter.*mu_spread"):
        JointEM().set_params(mu_spread=True)


def test_set_params_goes_through_the_constructor():
    model = BayesianTwoType(sampler_config={"draws": 10, "tune": 7})
    model.set_params(sampler_config={"draws": 20})  # replaced, merged over the defaults as in the constructor
    assert model.sampler_config == BayesianTwoType(sampler_config={"draws": 20}).sampler_config
    with pytest.raises(ConfigError, match="careless"):
        model.set_params(model_config={"careless": "bogus"})
    assert model.model_config["careless"] == "beta"  # a refused setting changes nothing
    with pytest.raises(ConfigError, match="log_likelihood"):
        BayesianTwoType(sampler_config={"log_likelihood": "yes"})


def test_set_params_changes_the_fit_and_a_clone_is_unfitted(small_sim, small_fit):
    clone = _sklearn_clone()
    em = TwoTypeEM(random_seed=1, checks=False)
    assert em.set_params(careless="random") is em
    em.fit(small_sim.votes, **small_sim.reference)
    direct = TwoTypeEM(careless="random", random_seed=1, checks=False).fit(small_sim.votes, **small_sim.reference)
    assert em.params_.equals(direct.params_)
    assert "careless_first_a" in small_fit.params_ and "careless_first_a" not in em.params_  # a random clicker's rate is 1/2
    assert em.params_["careless_first_mean"] == 0.5
    twin = clone(small_fit)
    assert twin.get_params() == small_fit.get_params()
    assert not hasattr(twin, "users_") and not hasattr(twin, "params_")


def test_clone_of_a_fitted_bayesian_model_is_unfitted(bayes_fit):
    clone = _sklearn_clone()
    twin = clone(bayes_fit)
    assert twin.get_params() == bayes_fit.get_params()
    assert twin.idata_ is None and twin.model is None
    with pytest.raises(NotFittedError):
        twin.users_


# -- log_likelihood: one term per user -------------------------------------------------------


@pytest.fixture(scope="module")
def shared_fit(bayes_sim):
    """The two-type model with one shared careless rate, set with set_params, on bayes_fit's votes."""
    model = BayesianTwoType(sampler_config=QUICK_SAMPLER)
    model.set_params(model_config={"careless": "shared"}, sampler_config=SMALL_SAMPLER)
    model.fit(bayes_sim.votes, **bayes_sim.reference)
    return model


@pytest.fixture(scope="module")
def continuous_fit(bayes_sim):
    model = BayesianAlternative("continuous", sampler_config=SMALL_SAMPLER)
    model.fit(bayes_sim.votes, **bayes_sim.reference)
    return model


def _check_user_group(model):
    idata = model.idata_
    ll = idata["log_likelihood"]["votes"]
    post = idata["posterior"]
    assert ll.dims == ("chain", "draw", "user")
    assert ll.shape == (post.sizes["chain"], post.sizes["draw"], model.users_.shape[0])
    np.testing.assert_array_equal(ll["user"].values, idata["user_data"]["user"].values)
    np.testing.assert_array_equal(ll["user"].values.astype(str), model.users_.index.astype(str))
    inv = np.asarray(idata["user_data"]["user_pattern"].values)
    np.testing.assert_allclose(ll.values, model.pattern_log_likelihood()[..., inv], rtol=1e-12)
    return ll


def test_log_likelihood_group_has_one_term_per_user(bayes_fit, continuous_fit):
    for model in (bayes_fit, continuous_fit):
        ll = _check_user_group(model)
        assert np.all(np.isfinite(ll.values)) and np.all(ll.values < 0)


def test_set_params_changed_the_bayesian_fit(shared_fit, bayes_fit):
    post = shared_fit.idata_["posterior"]
    assert post.sizes["draw"] == SMALL_SAMPLER["draws"]
    assert "careless_first" in post and "careless_first" not in bayes_fit.idata_["posterior"]


def test_arviz_loo_gives_per_user_values(bayes_fit, continuous_fit):
    import arviz as az

    for model in (bayes_fit, continuous_fit):
        res = az.loo(model.idata_, pointwise=True)
        assert res.elpd_i.dims == ("user",) and res.elpd_i.shape == (len(model.users_),)
        assert res.pareto_k.shape == (len(model.users_),)
        assert float(res.elpd) == pytest.approx(float(res.elpd_i.sum()))
        inv = np.asarray(model.idata_["user_data"]["user_pattern"].values)
        ours = user_loo(model.pattern_log_likelihood(), inv)  # PSIS per count pattern
        np.testing.assert_allclose(res.elpd_i.values, ours["elpd_i"], rtol=1e-3)


def test_arviz_compare_runs_on_two_fits_of_the_same_votes(bayes_fit, shared_fit, continuous_fit):
    import arviz as az

    table = az.compare({"two-type": bayes_fit.idata_, "two-type-shared": shared_fit.idata_, "continuous": continuous_fit.idata_})
    assert set(table.index) == {"two-type", "two-type-shared", "continuous"}
    assert table["elpd_diff"].iloc[0] == 0 and np.all(np.isfinite(table["elpd"]))
    # the votes' careless users have Beta-distributed position habits: one shared rate predicts held-out users worse
    assert table.loc["two-type-shared", "rank"] > table.loc["two-type", "rank"]


def test_log_likelihood_survives_save_and_load(bayes_fit, tmp_path):
    loaded = BayesianTwoType.load(bayes_fit.save(tmp_path / "model.nc"))
    np.testing.assert_array_equal(loaded.idata_["log_likelihood"]["votes"].values, bayes_fit.idata_["log_likelihood"]["votes"].values)
    np.testing.assert_array_equal(loaded.idata_["log_likelihood"]["user"].values, bayes_fit.idata_["log_likelihood"]["user"].values)


def test_a_file_saved_before_the_group_loads_with_it(bayes_fit, tmp_path):
    old = bayes_fit.idata_.drop_nodes("log_likelihood")
    cfg = {k: v for k, v in json.loads(old.attrs["sampler_config"]).items() if k != "log_likelihood"}
    old.attrs = dict(old.attrs, sampler_config=json.dumps(cfg))
    old.attrs["comparemode_content_sha256"] = _content_digest(old)
    old.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    loaded = BayesianTwoType.load(tmp_path / "old.nc")
    assert loaded.sampler_config["log_likelihood"] == "auto"
    np.testing.assert_allclose(loaded.idata_["log_likelihood"]["votes"].values, bayes_fit.idata_["log_likelihood"]["votes"].values, rtol=1e-12)


def test_log_likelihood_setting(bayes_fit, monkeypatch):
    model, ud = bayes_fit, bayes_fit.idata_["user_data"]
    bare = bayes_fit.idata_.drop_nodes("log_likelihood")
    assert "log_likelihood" not in sampling.add_user_log_likelihood(bare.copy(), model.pattern_log_likelihood, ud["user_pattern"], False).children
    monkeypatch.setattr(sampling, "LOG_LIKELIHOOD_MAX_VALUES", 10)
    with pytest.warns(UserWarning, match="left out of the DataTree"):
        out = sampling.add_user_log_likelihood(bare.copy(), model.pattern_log_likelihood, ud["user_pattern"], "auto")
    assert "log_likelihood" not in out.children
    forced = sampling.add_user_log_likelihood(bare.copy(), model.pattern_log_likelihood, ud["user_pattern"], True)
    assert forced["log_likelihood"]["votes"].shape[-1] == ud.sizes["user"]


# -- ArviZ's diagnostics and plots --------------------------------------------------------------


def test_bfmi_is_arviz_and_the_textbook_formula(bayes_fit):
    energy = np.asarray(bayes_fit.idata_["sample_stats"]["energy"].values, dtype=float)
    by_hand = np.sum(np.diff(energy, axis=1) ** 2, axis=1) / np.sum((energy - energy.mean(axis=1, keepdims=True)) ** 2, axis=1)
    got = bfmi(bayes_fit.idata_)
    assert isinstance(got, np.ndarray) and got.shape == (2,)
    np.testing.assert_allclose(got, by_hand, rtol=1e-10)


def test_arviz_plots_are_matplotlib_figures_with_labelled_axes(bayes_fit):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    ranks = plot_ranks(bayes_fit.idata_, bayes_fit.param_names, max_params=5)
    energy = plot_energy(bayes_fit.idata_)
    for fig in (ranks, energy):
        assert isinstance(fig, Figure)
        shown = [ax for ax in fig.axes if ax.axison]
        assert shown and all(ax.get_xlabel() and ax.get_ylabel() for ax in shown)
    assert [ax.get_title() for ax in ranks.axes if ax.axison] == bayes_fit.param_names[:5]
    plt.close("all")
