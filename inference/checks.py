"""Checks of one fit against another: the EM against the full posterior (docs/design.md section 6).

:func:`compare_em_mcmc` fits both on the same votes and reports whether each EM estimate lies
inside its posterior interval, how far the per-user probabilities are apart, and the sampler
diagnostics. The interval probability is passed explicitly (default
:data:`comparemode.constants.INTERVAL_PROB`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from comparemode.constants import INTERVAL_PROB
from comparemode.inference.em import TwoTypeEM
from comparemode.inference.mcmc import BayesianTwoType

__all__ = ["EMvsMCMC", "compare_em_mcmc"]


@dataclass
class EMvsMCMC:
    """Result of :func:`compare_em_mcmc`.

    params : one row per population parameter: EM estimate, posterior mean, interval bounds,
        ``inside``. users : per user, EM and posterior P(attentive), their difference and
        the number of votes. diagnostics : R-hat, ESS (bulk, tail) per parameter with
        pass/fail; ``divergences`` and the thresholds sit in its ``attrs``.
    """

    params: pd.DataFrame
    users: pd.DataFrame
    diagnostics: pd.DataFrame
    interval_prob: float
    min_votes: int
    em: object
    mcmc: object

    @property
    def all_inside(self) -> bool:
        return bool(self.params["inside"].all())

    @property
    def max_gap(self) -> float:
        return float(self.users["abs_diff"].max())

    @property
    def max_gap_min_votes(self) -> float:
        sel = self.users[self.users["n_votes"] >= self.min_votes]
        return float(sel["abs_diff"].max()) if len(sel) else float("nan")

    @property
    def divergences(self) -> int:
        return int(self.diagnostics.attrs["divergences"])

    def report(self) -> str:
        lines = [f"EM estimates against {self.interval_prob:.0%} posterior HDIs:"]
        for name, row in self.params.iterrows():
            mark = "inside" if row["inside"] else "OUTSIDE"
            lines.append(f"  {name:<22} EM {row['em']:>9.4f}   posterior {row['mean']:>9.4f}  [{row['lower']:.4f}, {row['upper']:.4f}]  {mark}")
        lines.append(
            f"largest |EM - posterior| P(attentive): {self.max_gap:.4f} over all users, "
            f"{self.max_gap_min_votes:.4f} over users with >= {self.min_votes} votes"
        )
        d = self.diagnostics
        lines.append(
            f"diagnostics: max R-hat {d['r_hat'].max():.4f}, min bulk ESS {d['ess_bulk'].min():.0f}, "
            f"min tail ESS {d['ess_tail'].min():.0f}, divergences {self.divergences}"
        )
        return "\n".join(lines)


def compare_em_mcmc(
    votes: pd.DataFrame,
    *,
    mu=None,
    strengths=None,
    scale: str = "bt",
    em_settings: dict | None = None,
    model_config: dict | None = None,
    sampler_config: dict | None = None,
    interval_prob: float = INTERVAL_PROB,
    min_votes: int = 20,
) -> EMvsMCMC:
    """Fit the EM and the PyMC model (the same model, mu known) on the same votes and compare.

    ``em_settings`` go to :class:`~comparemode.TwoTypeEM`; ``model_config`` and
    ``sampler_config`` to :class:`~comparemode.inference.mcmc.BayesianTwoType` (the careless
    and ties settings are shared: the EM's win unless the model config sets them).
    """
    import arviz as az


    em_settings = dict(em_settings or {})
    model_config = dict(model_config or {})
    model_config.setdefault("careless", em_settings.get("careless", "beta"))
    model_config.setdefault("ties", em_settings.get("ties", "model"))
    em_settings.setdefault("careless", model_config["careless"])
    em_settings.setdefault("ties", model_config["ties"])
    em_settings.setdefault("checks", False)  # this compares two fits of one model; its misfit checks are the fit's business
    em = TwoTypeEM(**em_settings).fit(votes, mu=mu, strengths=strengths, scale=scale)
    bayes = BayesianTwoType(model_config=model_config, sampler_config=sampler_config)
    idata = bayes.fit(votes, mu=mu, strengths=strengths, scale=scale)
    names = bayes.param_names
    hdi = az.hdi(idata, prob=interval_prob, var_names=names)
    rows = []
    for name in names:
        lo, hi = (float(x) for x in np.asarray(hdi[name].values).reshape(-1))
        est = float(em.params_[name])
        rows.append(
            {
                "parameter": name,
                "em": est,
                "mean": float(idata["posterior"][name].mean()),
                "lower": lo,
                "upper": hi,
                "inside": lo <= est <= hi,
            }
        )
    params = pd.DataFrame(rows).set_index("parameter")
    users_em = em.users_
    users_mc = bayes.users_.reindex(users_em.index)
    users = pd.DataFrame(
        {
            "n_votes": users_em["n_votes"],
            "p_em": users_em["p_attentive"],
            "p_mcmc": users_mc["p_attentive"],
        }
    )
    users["abs_diff"] = (users["p_em"] - users["p_mcmc"]).abs()
    return EMvsMCMC(
        params=params,
        users=users,
        diagnostics=bayes.diagnostics(),
        interval_prob=interval_prob,
        min_votes=min_votes,
        em=em,
        mcmc=bayes,
    )
