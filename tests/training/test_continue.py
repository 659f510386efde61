"""A trial that continues from a saved training state equals one trained from scratch, and
ASHA promotions continue from the lower rung's state (saved in the run, deleted when due)."""

from __future__ import annotations

import pytest
import torch

from autodlgym import load_results
from autodlgym.execution.local import LocalExecutor
from autodlgym.results.store import ResultStore
from autodlgym.runner import CHECKPOINTS, RunConfig, run_search
from autodlgym.searchspace.space import SearchSpace
from autodlgym.tasks import get_task
from autodlgym.training.trainer import load_state, train_and_score, train_model
from autodlgym.trial import OK, Fidelity, can_continue

SPEC = {
    "n_stages": 1,
    "stage1.block": "conv",
    "stage1.depth": 1,
    "stage1.width": 8,
    "stage1.kernel": 3,
    "stage1.dilation": 1,
    "norm": "batch",
    "dropout": 0.25,  # dropout draws from the global random stream: it must carry over
    "optimizer": "adam",
    "lr": 0.01,
    "batch_size": 64,
    "trainable": "all",
    "activation": "relu",
    "init": "he_normal",
    "weight_decay": 0.0,
    "grad_clip": 0.0,
    "zero_init_residual": False,
    "connections": "chain",
    "head_pool": "avg",
}


def _spec():
    return SearchSpace.default().validate(SPEC)


def test_a_continued_trial_equals_one_trained_from_scratch(tmp_path):
    task = get_task("mnist1d")
    path = str(tmp_path / "s.pt")
    short, _ = train_model(_spec(), task, Fidelity(1, 300), seed=3, checkpoint=path)
    assert short.status == OK
    cont, m_cont = train_model(_spec(), task, Fidelity(3, 300), seed=3, resume_from=path)
    scratch, m_scratch = train_model(_spec(), task, Fidelity(3, 300), seed=3)
    assert cont.continued_epochs == 1 and scratch.continued_epochs is None
    for a, b in zip(m_cont.state_dict().values(), m_scratch.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert (cont.val_score, cont.test_score) == (scratch.val_score, scratch.test_score)
    assert [p["val_score"] for p in cont.curve] == [p["val_score"] for p in scratch.curve]
    assert cont.curve[0]["val_score"] == short.val_score
    assert (cont.steps_run, cont.epochs_run) == (scratch.steps_run, scratch.epochs_run)
    assert cont.diagnostics == scratch.diagnostics
    # it trained two epochs of its own: 10 steps, against 15 from scratch
    assert cont.steps_run - short.steps_run == 10


def test_a_state_is_used_only_where_continuing_is_exact(tmp_path):
    task = get_task("mnist1d")
    path = str(tmp_path / "s.pt")
    train_and_score(_spec(), task, Fidelity(1, 300), seed=3, checkpoint=path)
    assert load_state(path, _spec(), task, Fidelity(3, 300), 3, False) is not None
    assert load_state(path, _spec(), task, Fidelity(3, 300), 4, False) is None  # seed
    assert load_state(path, _spec(), task, Fidelity(3), 3, False) is None  # another set
    assert load_state(path, _spec(), task, Fidelity(1, 300), 3, False) is None  # no more epochs
    other = SearchSpace.default().validate({**SPEC, "lr": 0.001})
    assert load_state(path, other, task, Fidelity(3, 300), 3, False) is None
    assert load_state(str(tmp_path / "none.pt"), _spec(), task, Fidelity(3, 300), 3, False) is None
    # an unsuitable state trains from scratch
    r = train_and_score(_spec(), task, Fidelity(3, 300), seed=4, resume_from=path)
    assert r.status == OK and r.continued_epochs is None
    # one epoch on a subset trains on other data: promotions from it are trained from scratch
    assert not can_continue(Fidelity(1, 100), Fidelity(1, 300))
    assert can_continue(Fidelity(1, 300, 5.0), Fidelity(3, 300, 60.0))
    # the first batches of an epoch (the first ASHA rung), or its first steps: a prefix
    assert can_continue(Fidelity(1, 300, max_examples=100), Fidelity(1, 300))
    assert can_continue(Fidelity(1, 300, max_steps=3), Fidelity(3, 300))
    assert not can_continue(Fidelity(1, 300, max_examples=100), Fidelity(1))  # another set
    assert not can_continue(Fidelity(2, 300, max_examples=100), Fidelity(1, 300))
    # a trial that stops inside an epoch itself is not continued into
    assert not can_continue(Fidelity(1, 300), Fidelity(3, 300, max_steps=20))
    assert not can_continue(Fidelity(1, 300), Fidelity(3, 300, max_examples=200))


@pytest.mark.parametrize(
    ("short", "checks"),
    [
        (Fidelity(1, 300, max_examples=100), 1),  # the first rung: 1 of 5 batches of 64
        (Fidelity(1, 300, max_examples=130), 3),  # 2 batches: the first check of 3 is after 2
        (Fidelity(1, 300, max_examples=250), 2),  # 3 batches, one after the first check
        (Fidelity(2, 300, max_steps=8), 2),  # inside the second epoch, after its first check
    ],
)
def test_a_trial_continued_from_inside_an_epoch_equals_one_trained_from_scratch(
    tmp_path, short, checks
):
    task = get_task("mnist1d")
    path = str(tmp_path / "s.pt")
    first, _ = train_model(
        _spec(), task, short, seed=3, checkpoint=path, checks_per_epoch=checks
    )  # fmt: skip
    assert first.status == OK and first.steps_run == (short.max_steps or short.max_examples // 64)
    cont, m_cont = train_model(
        _spec(), task, Fidelity(3, 300), seed=3, resume_from=path, checks_per_epoch=checks
    )  # fmt: skip
    scratch, m_scratch = train_model(
        _spec(), task, Fidelity(3, 300), seed=3, checks_per_epoch=checks
    )  # fmt: skip
    # 300 examples in batches of 64: 5 steps an epoch
    assert cont.continued_epochs == pytest.approx(first.steps_run / 5)
    for a, b in zip(m_cont.state_dict().values(), m_scratch.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert (cont.val_score, cont.test_score, cont.train_loss) == (
        scratch.val_score, scratch.test_score, scratch.train_loss,
    )  # fmt: skip
    # the same checks with the same scores and losses (the first trial's own last check,
    # where it stopped inside an epoch, is not one of a trial trained from scratch)
    points = [(p["epoch"], p["train_loss"], p["val_score"]) for p in cont.curve]
    assert points == [(p["epoch"], p["train_loss"], p["val_score"]) for p in scratch.curve]
    assert (cont.steps_run, cont.epochs_run) == (scratch.steps_run, 3)
    assert cont.diagnostics == scratch.diagnostics
    # the state holds where it stopped: a promotion from it trains only the rest
    assert load_state(path, _spec(), task, Fidelity(3, 300), 3, False)["steps"] == first.steps_run
    # checked at other points than the trial it continues: trained from scratch
    other, _ = train_model(
        _spec(), task, Fidelity(3, 300), seed=3, resume_from=path, checks_per_epoch=checks + 1
    )  # fmt: skip
    assert other.continued_epochs is None and other.steps_run == 15


def test_a_graph_trial_continued_from_the_first_rung_equals_one_trained_from_scratch(tmp_path):
    # graph-level batches come from PyG's DataLoader, and scoring draws its seed from the
    # global random stream, which dropout shares: the first rung's own last check (not one of
    # a trial from scratch) must not shift the stream the promotion continues with
    task = get_task("motifs")
    spec = task.default_space().validate(
        {"n_stages": 1, "stage1.block": "gcn", "stage1.depth": 1, "stage1.width": 16,
         "dropout": 0.5, "norm": "none", "readout": "mean", "batch_size": 64, "lr": 0.01,
         "optimizer": "adam", "activation": "relu", "init": "he_uniform", "weight_decay": 0.0,
         "connections": "chain"}
    )  # fmt: skip
    first = task.default_fidelities(Fidelity(3))[0]
    assert first.max_examples == 120  # a third of the 360 training graphs: 1 batch of 64
    path = str(tmp_path / "s.pt")
    short, _ = train_model(spec, task, first, seed=2, checkpoint=path)
    cont, m_cont = train_model(spec, task, Fidelity(3), seed=2, resume_from=path)
    scratch, m_scratch = train_model(spec, task, Fidelity(3), seed=2)
    assert short.steps_run == 1 and cont.continued_epochs == pytest.approx(1 / 6, abs=1e-6)
    for a, b in zip(m_cont.state_dict().values(), m_scratch.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    points = [(p["epoch"], p["train_loss"], p["val_score"]) for p in cont.curve]
    assert points == [(p["epoch"], p["train_loss"], p["val_score"]) for p in scratch.curve]
    assert (cont.test_score, cont.steps_run) == (scratch.test_score, scratch.steps_run)


def test_a_trial_that_did_not_train_all_its_epochs_saves_no_state(tmp_path):
    path = tmp_path / "s.pt"
    r = train_and_score(
        _spec(), "mnist1d", Fidelity(2, 300), seed=3, checkpoint=str(path),
        callback=lambda check, score: False,  # pruned after its first epoch
    )  # fmt: skip
    assert r.status == "pruned" and not path.exists()


def _config(tmp_path, space, **kw) -> RunConfig:
    # rungs: 1/3 epoch (100 examples), 1, 3 and 9 epochs; 13 trials reach the 3-epoch rung
    base = dict(
        out=str(tmp_path / "run"), space=space, trials=13, epochs=9, max_train_samples=300,
        pruner="asha", searcher="random", seed=1,
    )  # fmt: skip
    base.update(kw)
    return RunConfig(**base)


class _StopAfter(LocalExecutor):
    """Ctrl-C once ``n`` trials finished (an interrupted session)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def wait(self, timeout=None):
        if self.n == 0:
            raise KeyboardInterrupt
        self.n -= 1
        return super().wait(timeout)


def test_promotions_continue_with_the_same_scores_as_retraining(tmp_path, tiny_space_config):
    cont = run_search(_config(tmp_path / "c", tiny_space_config), progress=False)
    again = run_search(
        _config(tmp_path / "r", tiny_space_config, promotions="retrain"), progress=False
    )
    a = load_results(cont.run_dir).sort_values("trial_id").reset_index(drop=True)
    b = load_results(again.run_dir).sort_values("trial_id").reset_index(drop=True)
    assert list(a.arch_id) == list(b.arch_id)
    assert list(a.val_score) == list(b.val_score) and list(a.test_score) == list(b.test_score)
    # rungs: the first batches of an epoch (at most 100 of the 300 examples), 1, 3, 9 epochs;
    # the 3-epoch trial continued from the 1-epoch trial of its spec, and each 1-epoch trial
    # from the first-rung trial of its spec (one batch of 64 of the 5 in an epoch)
    first = a[a.max_examples == 100]
    epoch = a[(a.epochs == 1) & a.max_examples.isna()]
    assert first.continued_from.isna().all() and len(epoch) == 3
    for row in epoch.itertuples():
        source = first[first.arch_id == row.arch_id]
        assert int(row.continued_from) == int(source.trial_id.iloc[0])
        assert row.continued_epochs == pytest.approx(0.2) and int(source.steps_run.iloc[0]) == 1
        assert row.steps_run == 5 and row.epochs_run == 1
    top = a[a.epochs == 3]
    assert len(top) == 1
    source = epoch[epoch.arch_id == top.arch_id.iloc[0]]
    assert int(top.continued_from.iloc[0]) == int(source.trial_id.iloc[0])
    assert top.continued_epochs.iloc[0] == 1
    assert "continued_from" not in b or b.continued_from.isna().all()
    assert int(top.steps_run.iloc[0]) == 3 * int(source.steps_run.iloc[0])
    # the search ended: no state is kept
    assert not (cont.run_dir / CHECKPOINTS).exists()


def test_an_interrupted_run_keeps_its_states_and_resume_continues_from_them(
    tmp_path, tiny_space_config
):
    cfg = _config(tmp_path, tiny_space_config, trials=20)  # no state is hopeless yet
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, progress=False, executor=_StopAfter(12))
    df = load_results(cfg.out)
    first_rung = df[df.max_examples == 100]
    epoch_rung = df[(df.epochs == 1) & df.max_examples.isna()]
    assert len(df) == 12 and len(epoch_rung) == 3
    saved = {int(p.stem) for p in (tmp_path / "run" / CHECKPOINTS).glob("*.pt")}
    # the trials of the one-epoch rung keep theirs; of the first rung's, those not promoted yet
    # (the states of promoted ones and of ones the budget leaves no chance are deleted)
    promoted = {int(t) for t in epoch_rung.continued_from}
    assert set(epoch_rung.trial_id) <= saved <= set(epoch_rung.trial_id) | set(first_rung.trial_id)
    assert not promoted & saved and saved - set(epoch_rung.trial_id)
    run_search(RunConfig(out=cfg.out, trials=13), resume=True, progress=False)
    df = load_results(cfg.out)
    top = df[df.epochs == 3]
    assert len(top) == 1 and int(top.continued_from.iloc[0]) in saved
    # its scores are those of the spec trained from scratch for 3 epochs
    with ResultStore(cfg.out, create=False) as store:
        spec, result = {t: (sp, r) for t, sp, r in store.results()}[int(top.trial_id.iloc[0])]
        fid = store.fidelities()[int(top.trial_id.iloc[0])]
    scratch = train_and_score(spec, "mnist1d", fid, seed=1)
    assert (result.val_score, result.test_score) == (scratch.val_score, scratch.test_score)
    assert not (tmp_path / "run" / CHECKPOINTS).exists()
