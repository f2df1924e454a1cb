"""comparemode: quality control for comparison-mode preference votes.

A chat product shows a user two answers from two different models and the user picks the
better one (or a tie). comparemode infers, per user, how likely the user is to be voting
attentively, and filters or weights the votes before they train a preference model.

Main entry points:

- :func:`load_votes`: read and validate a votes table (CSV, Parquet, JSON, arena, LLMFAO);
- :func:`count_votes` / :class:`VoteCounts`: the per-user vote counts every model reads,
  mergeable exactly (``counts + count_votes(today)``), saved to Parquet; every ``fit`` takes
  them in place of the votes;
- :func:`simulate_votes`: draw votes and the truth from the generative model;
- :class:`TwoTypeEM`: the two-type (attentive / careless) user model fitted by EM;
- :class:`JointEM`: many models, no reference: Bradley-Terry strengths and user types
  estimated together, with bootstrap leaderboards (``bootstrap_leaderboard``);
  :class:`PartisanScreen`: users who favour one model whatever the opponent, and the
  leaderboard without their rigged votes; :class:`BradleyTerry`: plain Bradley-Terry with
  user-clustered intervals;
- :class:`BayesianTwoType`: the same model fitted by MCMC (PyMC), with per-user posterior
  probabilities averaged over the draws;
- :func:`filter_votes`, :func:`filter_fdr`, :func:`filter_credible`: keep or drop each
  user's votes (threshold, Bayesian false-discovery rate, credible bound), with weights;
  :func:`filter_crossfit`: each vote decided by its user's other votes (no agreement
  selection in the kept votes);
- misfit checks on every EM fit (``TwoTypeEM.checks_``, :class:`errors.MisfitWarning`), the
  models offered when they fail (``alternatives_``), :class:`ContinuousQuality` (users attentive
  on a share of their votes, by maximum likelihood); :mod:`scenarios`: votes from processes
  the model does not describe, written apart from the package's simulator;
- :func:`compare_em_mcmc`: the EM against the posterior on the same votes;
- model checking: :class:`HomogeneousEM` and :class:`BayesianAlternative` (the homogeneous and
  continuous-quality models), :func:`posterior_predictive_check`, :func:`compare_models`
  (user-level PSIS-LOO with a verdict), :func:`sampler_diagnostics`;
- :func:`write_report`: the posterior diagnostic report as one HTML file;
- :mod:`datasets`: data that ship with the package, read offline
  (``datasets.load_llmfao()``: LLMFAO's real crowd votes, GPT-4 verdicts and response texts);
- :func:`to_preference_pairs`, :func:`write_preference_pairs`: kept votes as training pairs
  (``prompt``, ``chosen``, ``rejected``, ``weight``, ``label_flip_prob``) for TRL / datasets;
- :func:`read_results`: a ``comparemode run`` results directory, trusted only with a complete
  manifest.
"""

from comparemode import datasets, errors, scenarios
from comparemode._output import read_results
from comparemode._version import __version__  # noqa: E402  (one source: pyproject.toml)
from comparemode.constants import DEFAULT_THRESHOLD, INTERVAL_PROB
from comparemode.counting import count_votes
from comparemode.data import load_votes, read_arena, read_llmfao, to_input_layout, validate_votes
from comparemode.export import to_preference_pairs, write_preference_pairs
from comparemode.inference.alternatives import BayesianAlternative, HomogeneousEM
from comparemode.inference.bradley_terry import BradleyTerry, fit_bradley_terry
from comparemode.inference.checks import EMvsMCMC, compare_em_mcmc
from comparemode.inference.continuous import ContinuousQuality
from comparemode.inference.crossfit import filter_crossfit
from comparemode.inference.diagnostics import sampler_diagnostics
from comparemode.inference.em import TwoTypeEM
from comparemode.inference.filter import (
    FilterResult,
    filter_credible,
    filter_fdr,
    filter_votes,
)
from comparemode.inference.joint import JointEM
from comparemode.inference.leaderboard import leaderboard_table, plot_leaderboard
from comparemode.inference.mcmc import BayesianTwoType
from comparemode.inference.partisan import PartisanScreen
from comparemode.inference.model_checks import (
    compare_models,
    posterior_predictive_check,
)
from comparemode.models.counts import VoteCounts
from comparemode.models.simulate import Simulation, simulate_votes
from comparemode.reference import read_strengths
from comparemode.report import write_report

__all__ = [
    "errors",
    "datasets",
    "load_votes",
    "read_arena",
    "read_llmfao",
    "validate_votes",
    "to_input_layout",
    "to_preference_pairs",
    "write_preference_pairs",
    "count_votes",
    "VoteCounts",
    "read_strengths",
    "simulate_votes",
    "Simulation",
    "TwoTypeEM",
    "BayesianTwoType",
    "JointEM",
    "fit_bradley_terry",
    "BradleyTerry",
    "leaderboard_table",
    "plot_leaderboard",
    "PartisanScreen",
    "filter_votes",
    "filter_fdr",
    "filter_credible",
    "filter_crossfit",
    "FilterResult",
    "ContinuousQuality",
    "scenarios",
    "compare_em_mcmc",
    "EMvsMCMC",
    "HomogeneousEM",
    "BayesianAlternative",
    "posterior_predictive_check",
    "compare_models",
    "sampler_diagnostics",
    "write_report",
    "read_results",
    "DEFAULT_THRESHOLD",
    "INTERVAL_PROB",
    "__version__",
]
