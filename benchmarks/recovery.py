"""Parameter recovery and classification accuracy of the EM, over several simulated data sets.

The foundation issue's setting: 2,000 users x 20 votes, mu = 0.7, pi = 0.6, careless users'
first-position rates from Beta(1.95, 1.05) (mean 0.65: from random to strong first-position
clickers), ties about 20% of votes. For each seed it prints, side by side:

- pi recovered by the default EM (careless rates from a Beta) and by the EM with every
  careless rate fixed at 1/2 (the paper's random clicker);
- the accuracy of the rule "P(attentive) >= 0.5" against the true types for both fits and
  for the same rule computed with the true parameters (the best the rule can do).

Run: ``.venv/bin/python benchmarks/recovery.py [--seeds 10]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from comparemode import TwoTypeEM, simulate_votes
from comparemode.models.simulate import DEFAULT_SIMULATION

#: The issue's setting is the simulator's built-in default.
SETTING = dict(DEFAULT_SIMULATION)


def _accuracy(p, truth):
    return float(np.mean((np.asarray(p) >= 0.5) == np.asarray(truth)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="number of simulated data sets")
    args = parser.parse_args(argv)
    print(f"setting: {SETTING}")
    header = f"{'seed':>4} {'pi beta':>8} {'pi 1/2':>8} {'acc beta':>9} {'acc true':>9} {'acc 1/2':>8} {'beta-true':>10} {'sec':>6}"
    print(header)
    rows = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        sim = simulate_votes(**SETTING, random_seed=seed)
        beta = TwoTypeEM(careless="beta", random_seed=seed).fit(sim.votes, **sim.reference)
        half = TwoTypeEM(careless="random", random_seed=seed).fit(sim.votes, **sim.reference)
        truth = sim.users["attentive"].reindex(beta.users_.index)
        oracle = sim.true_p_attentive().reindex(beta.users_.index)
        row = (
            beta.params_["pi"],
            half.params_["pi"],
            _accuracy(beta.users_["p_attentive"], truth),
            _accuracy(oracle, truth),
            _accuracy(half.users_["p_attentive"].reindex(beta.users_.index), truth),
        )
        rows.append(row)
        print(
            f"{seed:>4} {row[0]:>8.4f} {row[1]:>8.4f} {row[2]:>9.4f} {row[3]:>9.4f} {row[4]:>8.4f} "
            f"{row[2] - row[3]:>+10.4f} {time.perf_counter() - t0:>6.2f}"
        )
    arr = np.array(rows)
    print(
        f"{'mean':>4} {arr[:, 0].mean():>8.4f} {arr[:, 1].mean():>8.4f} {arr[:, 2].mean():>9.4f} "
        f"{arr[:, 3].mean():>9.4f} {arr[:, 4].mean():>8.4f} {(arr[:, 2] - arr[:, 3]).mean():>+10.4f}"
    )
    print(
        f"largest |pi beta - 0.6| = {np.abs(arr[:, 0] - 0.6).max():.4f} (target <= 0.03); "
        f"largest |acc beta - acc true| = {np.abs(arr[:, 2] - arr[:, 3]).max():.4f} (target <= 0.02)"
    )


if __name__ == "__main__":
    main()
