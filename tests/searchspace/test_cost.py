"""The cost model against the models the builder makes: exact parameter counts, FLOPs as
torch's FlopCounterMode counts a meta-device forward (where recurrent cells and attention run
unfused), trainable counts as configure_trainable leaves them, activations within bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from autodlgym.errors import SpecError
from autodlgym.nn.blocks import BlockContext, register_block
from autodlgym.nn.build import build_model, configure_trainable
from autodlgym.searchspace.cost import Cost, estimate_cost
from autodlgym.searchspace.io import IOSpec
from autodlgym.searchspace.registry import BLOCKS
from autodlgym.searchspace.spec import ArchSpec
from autodlgym.training.trainer import _trainable_count

IOS = {  # the sizes of conftest.IOS
    "vector": IOSpec("vector", (40,), 10),
    "sequence": IOSpec("sequence", (1, 40), 10),
    "image": IOSpec("image", (1, 8, 8), 10),
}

FLOP_TOLERANCE = 0.05  # the bound; the formulas are exact on every case here


def measured(spec: ArchSpec, io: IOSpec) -> tuple[int, int]:
    """(params, FLOPs) of the built model: torch's own counter over a meta-device forward
    (on the CPU for graph blocks: PyG's self-loop handling needs real indices)."""
    graph = any(
        BLOCKS.meta(v).get("reads") == "graph" for k, v in spec.items() if k.endswith(".block")
    )
    device = "cpu" if graph else "meta"
    with torch.device(device):
        model = build_model(spec, io)
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, *io.shape, device=device))
    return sum(p.numel() for p in model.parameters()), int(counter.get_total_flops())


def stage_spec(block: str, **over) -> ArchSpec:
    """Two stages of ``block`` (depth 3, width 12) with a strided downsample, dense
    connections, batch norm and every block option set."""
    values = {"n_stages": 2, "norm": "batch", "connections": "dense", "head_pool": "flatten"}
    for i in (1, 2):
        values.update(
            {
                f"stage{i}.block": block,
                f"stage{i}.depth": 3,
                f"stage{i}.width": 12 + 2 * i,
                f"stage{i}.kernel": 5,
                f"stage{i}.dilation": 2,
                f"stage{i}.growth": 8,
                f"stage{i}.heads": 4,
                f"stage{i}.cell": "gru",
            }
        )
    values["stage2.downsample"] = "strided"
    values.update(over)
    return ArchSpec(values)


def check(spec: ArchSpec, io: IOSpec) -> Cost:
    cost = estimate_cost(spec, io)
    params, flops = measured(spec, io)
    assert cost.params == params
    assert flops > 0
    assert abs(cost.flops - flops) <= FLOP_TOLERANCE * flops, (cost.flops, flops)
    return cost


@pytest.mark.parametrize("modality", list(IOS))
@pytest.mark.parametrize("block", BLOCKS.names())
def test_every_registered_block_costs_what_its_built_model_counts(block, modality):
    check(stage_spec(block), IOS[modality])


@pytest.mark.parametrize(
    "first, connections", [("mlp", "skip2"), ("conv", "skip3"), ("recurrent", "chain")]
)
@pytest.mark.parametrize("block", BLOCKS.names())
def test_blocks_after_every_state_kind_and_connection(block, first, connections):
    spec = stage_spec(block, **{"stage1.block": first, "connections": connections})
    check(spec, IOS["image" if first == "conv" else "sequence"])


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "minimal"])
def test_recurrent_cells_count_their_recurrence(cell, bidirectional):
    spec = stage_spec("recurrent", **{"stage1.cell": cell, "stage1.bidirectional": bidirectional})
    check(spec, IOS["sequence"])


def test_an_lstm_costs_four_thirds_of_the_same_gru():
    io = IOS["sequence"]
    one = {"n_stages": 1, "stage1.block": "recurrent", "stage1.width": 32, "head_pool": "last"}
    lstm = estimate_cost(ArchSpec({**one, "stage1.cell": "lstm"}), io).flops
    gru = estimate_cost(ArchSpec({**one, "stage1.cell": "gru"}), io).flops
    head = 2 * 32 * io.n_outputs
    # by hand: 2 FLOPs x 40 steps x gates x 32 units x (1 input + 32 recurrent)
    assert lstm - head == 2 * 40 * 4 * 32 * 33
    assert (lstm - head) / (gru - head) == pytest.approx(4 / 3)


@pytest.mark.parametrize("modality", list(IOS))
def test_random_specs_of_the_default_space(space, modality):
    rng = np.random.default_rng(len(modality))
    for _ in range(8):
        check(space.sample(rng), IOS[modality])


@pytest.mark.parametrize("trainable", ["all", "head", "fraction_0.1", "fraction_0.37"])
def test_trainable_params_match_configure_trainable(space, trainable):
    rng = np.random.default_rng(4)
    for _ in range(4):
        spec = space.sample(rng).replace(trainable=trainable)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(spec, IOS["sequence"])
            configure_trainable(model, trainable, seed=0)
        cost = estimate_cost(spec, IOS["sequence"])
        assert cost.trainable_params == sum(_trainable_count(p) for p in model.parameters())


class _Outputs(TorchDispatchMode):
    """Bytes of the floating-point outputs of every op that is neither a view nor in-place."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        schema = func._schema
        if not schema.is_mutable and not any(r.alias_info for r in schema.returns):
            for t in out if isinstance(out, tuple | list) else [out]:
                if isinstance(t, torch.Tensor) and t.dtype.is_floating_point:
                    self.bytes += t.numel() * t.element_size()
        return out


@pytest.mark.parametrize("modality", list(IOS))
def test_activation_memory_is_close_to_what_a_forward_writes(space, modality):
    io = IOS[modality]
    rng = np.random.default_rng(5)
    for _ in range(6):
        spec = space.sample(rng)
        with torch.device("meta"):
            model = build_model(spec, io)
        model.eval()
        outputs = _Outputs()
        with torch.no_grad(), outputs:
            model(torch.zeros(1, *io.shape, device="meta"))
        ratio = estimate_cost(spec, io).activation_bytes / outputs.bytes
        assert 0.5 <= ratio <= 1.2, (spec.summary(), ratio)


@pytest.fixture
def unknown_block():
    """A user block with no cost formula (measured on the meta device), removed afterwards."""

    @register_block("gated_pair", reads="vector")
    def gated_pair(in_shape, ctx: BlockContext) -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Linear(in_shape[0], 2 * ctx.width), torch.nn.GLU(), torch.nn.Tanh()
        )

    yield "gated_pair"
    BLOCKS.remove("gated_pair")


def test_a_block_without_a_formula_is_measured(unknown_block):
    spec = stage_spec(unknown_block, **{"stage1.block": "conv"})
    check(spec, IOS["sequence"])
    check(stage_spec(unknown_block), IOS["image"])


def test_costs_are_cached_and_bad_specs_raise_one_line(ios):
    spec = stage_spec("conv")
    assert estimate_cost(spec, ios["image"]) is estimate_cost(dict(spec), ios["image"])
    for bad in ({"stage1.block": "nope"}, {"stage1.cell": "lstm2", "stage1.block": "recurrent"}):
        with pytest.raises(SpecError) as err:
            estimate_cost(stage_spec("conv", **bad), ios["sequence"])
        assert "\n" not in str(err.value)


def test_estimate_cost_does_not_import_torch(space):
    """Specs of the default space (every block, dense connections included) cost the same in a
    fresh process that never imports torch. The specs are sampled here: the default space
    reads the block registry, whose built-ins live in torch modules."""
    import json
    import subprocess
    import sys

    rng = np.random.default_rng(7)
    specs = [space.sample(rng) for _ in range(20)]
    specs += [stage_spec(block) for block in space["stage1.block"].options]
    io = IOS["sequence"]
    code = (
        "import json, sys\n"
        "from autodlgym.searchspace.cost import estimate_cost\n"
        "from autodlgym.searchspace.io import IOSpec\n"
        "from autodlgym.searchspace.spec import ArchSpec\n"
        "io = IOSpec('sequence', (1, 40), 10)\n"
        "costs = [estimate_cost(ArchSpec.from_json(t), io).to_dict() "
        "for t in json.loads(sys.stdin.read())]\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'costs': costs}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([s.to_json() for s in specs]),
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout)
    assert got["torch"] is False
    assert got["costs"] == [estimate_cost(s, io).to_dict() for s in specs]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_trainer_records_the_cost_models_counts(cell):
    from autodlgym.tasks import get_task
    from autodlgym.training.trainer import train_and_score
    from autodlgym.trial import Fidelity

    task = get_task("mnist1d")
    spec = ArchSpec(
        {"n_stages": 1, "stage1.block": "recurrent", "stage1.width": 16, "stage1.cell": cell}
    )
    result = train_and_score(spec, task, Fidelity(1, max_train_samples=32), diagnostics=False)
    cost = estimate_cost(spec, task.io)
    assert result.ok and result.flops == cost.flops and result.params == cost.params
    assert result.trainable_params == cost.trainable_params
    assert result.flops > 2 * 40 * 3 * 16 * 17  # the recurrence, not only the head
