"""Optuna samplers as searchers: TPE, CMA-ES, Gaussian process, quasi-Monte Carlo and NSGA-II.

Every searcher here drives an Optuna study through its ask/tell interface: ``ask(n)`` opens
``n`` trials with ``study.ask()`` and lets :meth:`SearchSpace.suggest` make define-by-run
suggestions (conditional decisions are suggested only when active), ``tell`` finishes the
trial that produced the spec. The study lives in ``run_dir/optuna.db`` (study name
``"autodlgym"``), so ``optuna-dashboard sqlite:///RUN_DIR/optuna.db`` shows a search while it
runs; without a run directory it lives in memory.

Registered names:

- ``tpe``: multivariate TPE (``TPESampler(multivariate=True, constant_liar=True)``). The
  default space is conditional (a stage's kernel exists only for conv-like blocks, stage 3
  only when ``n_stages >= 3``). Multivariate TPE models the decisions that every trial has
  jointly and the conditional ones one at a time; ``group=True`` (option) decomposes the
  space into the sets of decisions that occur together and models each jointly. On a cheap
  synthetic objective over the default space (80 trials, 3 seeds) plain multivariate TPE
  found better candidates on average than group decomposition and asked faster, so it is
  the default. The constant liar keeps parallel workers from being handed near-copies of
  the trials still running.
- ``cmaes``: CMA-ES on the numeric decisions shared by all trials, the rest drawn at random
  (needs the ``cmaes`` package).
- ``gp``: Gaussian-process Bayesian optimisation (``GPSampler``).
- ``qmc``: scrambled Sobol points (a space-filling baseline).
- ``nsga2``: NSGA-II, two objectives: maximise ``val_score``, minimise ``params``.

Encoding: each decision's options reach the sampler so that its prior over them is the uniform
one of :meth:`SearchSpace.sample`: as categories for tpe and nsga2, numeric decisions as option
indices (an ``IntDistribution``, ordered) for gp, cmaes and qmc (:data:`DEFAULT_ENCODING`;
option ``encoding`` overrides). On the MNIST-1D lookup table (100 evaluations, 30 seeds) TPE
over categories and over indices were within noise of each other; categories are its default
because they assume nothing about option spacing. Studies made before the encoding was
recorded (numeric ranges snapped to the nearest option) resume with that ``snap`` encoding.

Option ``objectives``: a comma-separated list, the first ``val_score`` (maximised), the others
minimised costs from :data:`COSTS` (``tpe``, ``gp``, ``qmc`` and ``nsga2`` take several;
``cmaes`` takes one).

Statuses reach the study as: ``ok`` -> COMPLETE with the objective values, ``pruned`` ->
PRUNED with the epoch scores of ``result.curve`` as intermediate values in single-objective
studies (TPE ranks pruned trials by how far they got and their last score), every failure ->
FAIL (ignored by the samplers). A ``tell`` of a spec this searcher did not ask (a re-told result on resume, a result
from another searcher) is added as a finished trial so the model still learns from it.

Resume: the trials live in the database; :meth:`OptunaSearcher.state_dict` holds the sampler
(with its random state, so a resumed search proposes what the uninterrupted one would have)
and the trials asked but not yet told, as trial numbers. Loading a state re-attaches both, and
adopts trials that are RUNNING in the database but were asked after the state was saved (the
runner runs those again under the same trial id and tells them). Without a run directory the
state carries the whole in-memory study instead.
"""

from __future__ import annotations

import copy
import math
import threading
import warnings
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError
from autodlgym.optuna_utils import live_trial, open_study
from autodlgym.searchers.base import Searcher, register_searcher
from autodlgym.searchspace.space import OPTUNA_ENCODINGS, SearchSpace
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.trial import OK, PRUNED, TrialResult
from autodlgym.utils import as_bool, as_int

if TYPE_CHECKING:  # pragma: no cover
    import optuna

STUDY_NAME = "autodlgym"
STUDY_FILE = "optuna.db"

#: study user attribute recording how the space's decisions reach Optuna
ENCODING_ATTR = "autodlgym_encoding"

#: each sampler's encoding of numeric decisions (``SearchSpace.suggest``): samplers that model
#: options one by one take them as categories; GP and CMA-ES, which only work on numbers, get
#: option indices, so they can use the order (QMC too: its Sobol points fill the index range)
DEFAULT_ENCODING = {
    "tpe": "categorical",
    "cmaes": "index",
    "gp": "index",
    "qmc": "index",
    "nsga2": "categorical",
}

#: secondary objectives (minimised) a multi-objective study can use: TrialResult fields
COSTS = (
    "params", "trainable_params", "flops", "train_seconds", "peak_rss_mb", "peak_gpu_mb", "latency",
)  # fmt: skip


@register_searcher("tpe")
class OptunaSearcher(Searcher):
    """A searcher driving an Optuna sampler through ask/tell (see the module docstring).

    Registered as ``tpe``; subclasses name another sampler in ``sampler_name``: ``cmaes``,
    ``gp``, ``qmc`` or ``nsga2``.

    Args:
        space: the search space.
        seed: seeds the sampler.
        run_dir: where ``optuna.db`` lives; None keeps the study in memory.
        objectives: comma-separated objectives; the first must be ``val_score`` (maximised),
            the others are minimised costs from :data:`COSTS`. Default ``val_score``
            (``val_score,params`` for nsga2).
        n_startup_trials: random trials before the model is used (tpe, gp, cmaes; default
            10 for tpe and gp, 1 for cmaes).
        group: tpe only: group-decomposed multivariate TPE (default False, see above).
        population_size: nsga2 only: individuals per generation (default 20).
        encoding: how decisions reach Optuna, see :meth:`SearchSpace.suggest`
            (``categorical``, ``index`` or the legacy ``snap``); default per sampler from
            :data:`DEFAULT_ENCODING`. A study keeps the encoding it was made with.
    """

    description = "Optuna multivariate TPE (study in RUN_DIR/optuna.db)"
    sampler_name = "tpe"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        run_dir: str | Path | None = None,
        *,
        objectives: str | list[str] | None = None,
        n_startup_trials: int | str | None = None,
        group: bool | str = False,
        population_size: int | str = 20,
        encoding: str | None = None,
    ) -> None:
        super().__init__(space, seed=seed, run_dir=run_dir)
        requested = encoding
        if encoding is None:
            encoding = DEFAULT_ENCODING[self.sampler_name]
        if encoding not in OPTUNA_ENCODINGS:
            raise AutoDLError(
                f"encoding={encoding!r} is unknown; choose one of {', '.join(OPTUNA_ENCODINGS)}"
            )
        if objectives is None:
            objectives = "val_score,params" if self.sampler_name == "nsga2" else "val_score"
        self.objectives = _parse_objectives(objectives)
        if self.sampler_name == "nsga2" and len(self.objectives) < 2:
            raise AutoDLError(
                "nsga2 needs at least two objectives, e.g. objectives=val_score,params"
            )
        if self.sampler_name == "cmaes" and len(self.objectives) > 1:
            raise AutoDLError("cmaes optimises one objective; use objectives=val_score")
        n_startup = (
            None if n_startup_trials is None else as_int("n_startup_trials", n_startup_trials)
        )
        sampler_obj = _make_sampler(
            self.sampler_name,
            self.seed,
            n_startup,
            as_bool("group", group),
            as_int("population_size", population_size, minimum=2),
        )
        directions = ["maximize"] + ["minimize"] * (len(self.objectives) - 1)
        self.study = open_study(self.run_dir, STUDY_FILE, STUDY_NAME, directions, sampler_obj)
        self.encoding = _study_encoding(self.study, encoding)
        if requested is not None and requested != self.encoding:
            raise AutoDLError(
                f"the study in {self.run_dir} suggests with encoding={self.encoding}, not "
                f"{requested}; resume without the encoding option or start a new run"
            )
        # arch_id -> numbers of the trials asked for that spec and not yet told, oldest first
        self._pending: dict[str, deque[int]] = {}
        self._live: dict[int, optuna.Trial] = {}

    # ask/tell -----------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[ArchSpec]:
        """``n`` suggestions inside the space's budget: an over-budget suggestion is told
        FAIL (user attribute ``over_budget``: why) and the study asked again; after
        ``MUTATE_TRIES`` in a row a sample of the space is enqueued (see
        :mod:`autodlgym.searchspace.constraints`)."""
        from optuna.trial import TrialState

        from autodlgym.searchspace.constraints import MUTATE_TRIES

        specs = []
        for _ in range(n):
            misses = 0
            while True:
                trial = self.study.ask()
                spec = self.space.suggest(trial, self.encoding)
                reason = self.space.over_budget(spec)
                if reason is None:
                    break
                self.space.rejected += 1
                trial.set_user_attr("over_budget", reason)
                self.study.tell(trial.number, state=TrialState.FAIL)
                misses += 1
                if misses >= MUTATE_TRIES:
                    self._enqueue(self.space.sample(self.rng))
            self._pending.setdefault(spec.arch_id, deque()).append(trial.number)
            self._live[trial.number] = trial
            specs.append(spec)
        return specs

    def tell(self, spec: ArchSpec, result: TrialResult) -> None:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        values = self._values(result)
        queue = self._pending.get(spec.arch_id)
        if not queue:
            self._add_finished(spec, result, values)
            return
        number = queue.popleft()
        if not queue:
            del self._pending[spec.arch_id]
        trial = self._live.pop(number, None)
        if values is not None:
            self.study.tell(number, values, skip_if_finished=True)
        elif result.status == PRUNED:
            steps = _intermediate_values(result) if len(self.objectives) == 1 else {}
            if steps and trial is None:  # asked before a resume
                trial = live_trial(self.study, number)
            try:
                for step, value in steps.items():
                    trial.report(value, step)
            except UpdateFinishedTrialError:  # told before a crash, told again on resume
                return
            self.study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)

    def _enqueue(self, spec: ArchSpec) -> None:
        """Make ``spec`` the study's next trial."""
        params, _ = self.space.optuna_params(spec, self.encoding)
        self.study.enqueue_trial(params, skip_if_exists=False)

    def discard(self, spec: ArchSpec) -> None:
        """Close the trial of a proposed spec that will not be evaluated as FAIL (Optuna's
        samplers ignore failed trials), with the user attribute ``discarded``."""
        from optuna.trial import TrialState

        queue = self._pending.get(spec.arch_id)
        if not queue:
            return
        number = queue.pop()  # the latest ask of this spec
        if not queue:
            del self._pending[spec.arch_id]
        trial = self._live.pop(number, None)
        if trial is not None:
            trial.set_user_attr("discarded", True)
        self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)

    def _values(self, result: TrialResult) -> list[float] | None:
        """The objective values of an ``ok`` result; None when any is missing or not finite."""
        if result.status != OK:
            return None
        values = []
        for name in self.objectives:
            v = getattr(result, name)
            if v is None or not math.isfinite(float(v)):
                return None
            values.append(float(v))
        return values

    def _add_finished(
        self, spec: ArchSpec, result: TrialResult, values: list[float] | None
    ) -> None:
        import optuna
        from optuna.trial import TrialState

        try:
            params, distributions = self.space.optuna_params(spec, self.encoding)
        except ValueError:  # a spec outside this space teaches the model nothing
            return
        if values is not None:
            state, inter = TrialState.COMPLETE, {}
        elif result.status == PRUNED:
            state = TrialState.PRUNED
            inter = _intermediate_values(result) if len(self.objectives) == 1 else {}
        else:
            state, inter = TrialState.FAIL, {}
        self.study.add_trial(
            optuna.trial.create_trial(
                state=state,
                values=values,
                params=params,
                distributions=distributions,
                intermediate_values=inter,
            )
        )

    # state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "sampler_name": self.sampler_name,
            "objectives": list(self.objectives),
            "encoding": self.encoding,
            "pending": {k: list(v) for k, v in self._pending.items()},
        }
        if self.run_dir is None:  # nothing else remembers the trials: keep the whole study
            import optuna

            study = copy.copy(self.study)  # its sampler is saved on its own (it holds a lock)
            study.sampler = optuna.samplers.RandomSampler()
            state["study"] = study
        state["sampler"] = _sampler_state(self.study.sampler)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the search saved in ``state`` (see the module docstring).

        Raises:
            AutoDLError: the state comes from another sampler or other objectives.
        """
        import optuna
        from optuna.trial import TrialState

        if state["sampler_name"] != self.sampler_name or list(state["objectives"]) != list(
            self.objectives
        ):
            raise AutoDLError(
                f"saved searcher state is for sampler {state['sampler_name']} with objectives "
                f"{state['objectives']}; this searcher uses {self.sampler_name} with {self.objectives}"
            )
        # states saved before encodings existed come from studies suggested by snapping
        self.encoding = state.get("encoding", "snap")
        if "study" in state:
            self.study = state["study"]
        self.study.sampler = _restore_sampler(state["sampler"])
        self._pending = {k: deque(v) for k, v in state["pending"].items()}
        self._live = {}
        known = {n for q in self._pending.values() for n in q}
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.number in known:
                continue
            try:
                spec = self.space.suggest(optuna.trial.FixedTrial(frozen.params), self.encoding)
            except ValueError:  # opened by another space: it will never be told
                self.study.tell(frozen.number, state=TrialState.FAIL)
                continue
            self._pending.setdefault(spec.arch_id, deque()).append(frozen.number)

    def close(self) -> None:
        self._live.clear()


def _study_encoding(study: optuna.Study, wanted: str) -> str:
    """The encoding a study's trials use: the one recorded in the study (set here on a new
    study), ``"snap"`` for a study with trials from before encodings were recorded (so an old
    run resumes with the distributions it has), else ``wanted``."""
    recorded = study.user_attrs.get(ENCODING_ATTR)
    if recorded is not None:
        return str(recorded)
    if study.get_trials(deepcopy=False):
        return "snap"
    study.set_user_attr(ENCODING_ATTR, wanted)
    return wanted


def _intermediate_values(result: TrialResult) -> dict[int, float]:
    """Check number (1-based; the epoch when a trial checks once per epoch) -> validation
    score from a result's curve (finite scores only); falls back to the final score at
    ``epochs_run``. Checks, not epochs, because a curve may hold several checks per epoch."""
    out: dict[int, float] = {}
    for i, point in enumerate(result.curve):
        v = point.get("val_score")
        if v is not None and math.isfinite(v):
            out[i + 1] = float(v)
    if not out and result.val_score is not None and math.isfinite(result.val_score):
        out[max(result.epochs_run, 1)] = float(result.val_score)
    return out


def _parse_objectives(objectives: str | list[str]) -> tuple[str, ...]:
    names = objectives.split(",") if isinstance(objectives, str) else list(objectives)
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names or names[0] != "val_score":
        raise AutoDLError(
            f"objectives={objectives!r}: the first objective must be val_score, e.g. val_score,params"
        )
    for n in names[1:]:
        if n not in COSTS:
            raise AutoDLError(
                f"objective {n!r} is unknown; secondary objectives: {', '.join(COSTS)}"
            )
    if len(set(names)) != len(names):
        raise AutoDLError(f"objectives={objectives!r} names one objective twice")
    return tuple(names)


_LOCKS = {"lock": threading.Lock, "rlock": threading.RLock}
_LOCK_KINDS = {type(threading.Lock()): "lock", type(threading.RLock()): "rlock"}


def _sampler_state(sampler: Any) -> dict[str, Any]:
    """A sampler as picklable data: its attributes, less the thread locks some samplers hold
    (Optuna 5's NSGA-II), which are made anew on restore."""
    attrs, locks = {}, {}
    for key, value in vars(sampler).items():
        if type(value) in _LOCK_KINDS:
            locks[key] = _LOCK_KINDS[type(value)]
        else:
            attrs[key] = value
    return {"class": type(sampler), "attrs": attrs, "locks": locks}


def _restore_sampler(saved: Any) -> Any:
    """The sampler :func:`_sampler_state` saved (a state saved whole, before 0.2, as it is)."""
    if not (isinstance(saved, dict) and "class" in saved):
        return saved
    sampler = saved["class"].__new__(saved["class"])
    sampler.__dict__.update(saved["attrs"])
    for key, kind in saved["locks"].items():
        setattr(sampler, key, _LOCKS[kind]())
    return sampler


def _make_sampler(
    name: str, seed: int, n_startup: int | None, group: bool, population_size: int
) -> optuna.samplers.BaseSampler:
    import optuna
    from optuna.exceptions import ExperimentalWarning

    s = optuna.samplers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        if name == "tpe":
            return s.TPESampler(
                seed=seed,
                n_startup_trials=10 if n_startup is None else n_startup,
                multivariate=True,
                group=group,
                constant_liar=True,
            )
        if name == "cmaes":
            try:
                import cmaes  # noqa: F401 - optional dependency of CmaEsSampler
            except ImportError:
                raise AutoDLError(
                    "searcher cmaes needs the cmaes package: pip install cmaes"
                ) from None
            return s.CmaEsSampler(
                seed=seed,
                n_startup_trials=1 if n_startup is None else n_startup,
                warn_independent_sampling=False,
                with_margin=False,
            )
        if name == "gp":
            return s.GPSampler(
                seed=seed,
                n_startup_trials=10 if n_startup is None else n_startup,
                warn_independent_sampling=False,
            )
        if name == "qmc":
            return s.QMCSampler(
                seed=seed,
                scramble=True,
                warn_independent_sampling=False,
                warn_asynchronous_seeding=False,
            )
        return s.NSGAIISampler(seed=seed, population_size=population_size)


@register_searcher("cmaes", requires=("cmaes",))
class CmaEsSearcher(OptunaSearcher):
    """CMA-ES on the shared numeric decisions (Optuna CmaEsSampler; needs ``cmaes``)."""

    description = "Optuna CMA-ES on shared numeric decisions, the rest random (needs cmaes)"
    sampler_name = "cmaes"


@register_searcher("gp")
class GPSearcher(OptunaSearcher):
    """Gaussian-process Bayesian optimisation (Optuna GPSampler)."""

    description = "Optuna Gaussian-process Bayesian optimisation"
    sampler_name = "gp"


@register_searcher("qmc")
class QMCSearcher(OptunaSearcher):
    """Scrambled Sobol sequence (Optuna QMCSampler)."""

    description = "Optuna quasi-Monte Carlo (scrambled Sobol) sampling"
    sampler_name = "qmc"


@register_searcher("nsga2")
class NSGA2Searcher(OptunaSearcher):
    """NSGA-II: maximise val_score, minimise params (Optuna NSGAIISampler)."""

    description = "Optuna NSGA-II: maximise val_score, minimise params"
    sampler_name = "nsga2"
