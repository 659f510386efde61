"""Search-space config files: the default space as data, reading YAML / JSON files and dicts,
and writing a space back as a config.

A config is a mapping: ``max_stages``, ``globals`` (decision -> settings) and ``stage`` (a
template of per-stage decisions, expanded to ``stage1.*``, ``stage2.*``...), or ``base:
default`` with overrides and ``remove`` (see :meth:`SearchSpace.from_config
<autodlgym.searchspace.space.SearchSpace.from_config>`), or an explicit ``choices`` list (what
:func:`to_config` writes for a space made from :class:`~autodlgym.searchspace.choice.Choice`
objects). A decision's settings are ``options``, ``kind``, ``log``, ``when``, ``doc`` and
``from_stage``. The :class:`~autodlgym.searchspace.space.SearchSpace` methods ``default``,
``from_config``, ``from_file`` and ``to_config`` call the functions here.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodlgym.errors import AutoDLError
from autodlgym.searchspace import builtins
from autodlgym.searchspace import constraints as _budget
from autodlgym.searchspace.choice import Choice, same_type
from autodlgym.searchspace.registry import (
    BLOCKS,
    INIT_LAWS,
    block_modalities,
    blocks_using,
    loaded_blocks,
)
from autodlgym.utils import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from autodlgym.searchspace.space import SearchSpace

# The default space, in the same format a user's YAML/JSON space file uses. The block options
# and the conditions of the decisions blocks use (kernel, dilation, growth, heads, cell,
# bidirectional) are filled in from the block registry by default_config().
_DEFAULT_TEMPLATE: dict[str, Any] = {
    "max_stages": 4,
    "globals": {
        "n_stages": {"options": [1, 2, 3, 4], "doc": "number of stages"},
        "connections": {
            "options": ["chain", "skip2", "skip3", "dense"],
            "doc": "links between blocks inside a stage: plain chain, a skip every k blocks, or "
            "every block fed the sum of all earlier outputs of its stage",
        },
        "activation": {"options": ["relu", "gelu", "silu", "tanh", "leaky_relu", "elu"]},
        "norm": {"options": ["none", "batch", "layer", "instance"]},
        "dropout": {"options": [0.0, 0.1, 0.25, 0.5]},
        "init": {
            "options": [
                "glorot_uniform",
                "glorot_normal",
                "he_uniform",
                "he_normal",
                "lecun_normal",
                "orthogonal",
                "torch_default",
            ],
            "doc": "weight-init law; gains corrected for the activation, biases zero",
        },
        "zero_init_residual": {
            "options": [False, True],
            "doc": "zero the last layer of every residual branch so each block starts as identity",
        },
        "trainable": {
            "options": ["all", "fraction_0.1", "head"],
            "doc": "which weights train: all; 10 % of the units of each layer (the rest keep their "
            "random init); or the head only (random features, trained linear readout)",
        },
        "head_pool": {"options": ["avg", "max", "flatten", "last"]},
        "optimizer": {"options": ["adam", "adamw", "sgd", "rmsprop"]},
        "momentum": {"options": [0.0, 0.9, 0.99], "when": {"optimizer": ["sgd", "rmsprop"]}},
        "lr": {
            "kind": "float",
            "log": True,
            "options": [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1],
        },
        "weight_decay": {"options": [0.0, 1e-5, 1e-4, 1e-3, 1e-2], "kind": "float"},
        "batch_size": {"options": [32, 64, 128, 256], "kind": "int", "log": True},
        "grad_clip": {
            "options": [0.0, 0.5, 1.0, 5.0],
            "kind": "float",
            "doc": "0 means no clipping",
        },
    },
    "stage": {
        "downsample": {
            "options": ["none", "max", "avg", "lp", "lse", "strided"],
            "doc": "pooling (or a strided conv) before this stage; stage 1 has none",
            "from_stage": 2,
        },
        "lp_p": {
            "options": [1.0, 2.0, 3.0, 4.0],
            "kind": "float",
            "when": {"downsample": ["lp"]},
            "from_stage": 2,
            "doc": "the power p of Lp pooling, (sum |x|^p)^(1/p) over each window",
        },
        "lse_r": {
            "options": [0.5, 1.0, 2.0, 5.0],
            "kind": "float",
            "log": True,
            "when": {"downsample": ["lse"]},
            "from_stage": 2,
            "doc": "sharpness r of log-sum-exp pooling, log(mean exp(r x)) / r: mean as r -> 0, "
            "max as r -> inf",
        },
        "block": {},
        "depth": {"options": [1, 2, 3, 4], "kind": "int", "doc": "blocks in this stage"},
        "width": {"options": [8, 16, 32, 64, 128, 256, 512], "kind": "int", "log": True},
        "kernel": {"options": [3, 5, 7, 9], "kind": "int"},
        "dilation": {"options": [1, 2, 4], "kind": "int"},
        "growth": {"options": [8, 16, 32], "kind": "int"},
        "heads": {"options": [1, 2, 4], "kind": "int"},
        "cell": {"options": ["rnn", "gru", "lstm", "minimal"]},
        "bidirectional": {"options": [False, True]},
        "chrono_init": {
            "options": [False, True],
            "when": {"cell": ["gru", "lstm", "minimal"]},
            "doc": "chrono init of gate biases: log U[1, T_max - 1]",
        },
    },
}


def default_config(modality: str | None = None) -> dict[str, Any]:
    """The default space as a config: every built-in block that reads no graph, each stage decision a block
    uses (``register_block(..., uses=...)``) active exactly for the blocks that use it.

    Args:
        modality: ``vector``, ``sequence`` or ``image``: only the built-in blocks whose
            registration lists it (:func:`modality_blocks`), the options it narrows
            (:data:`~autodlgym.searchspace.builtins.MODALITY_OPTIONS`: kernel 1, AdamW /
            Adam, learning rates and weight decays of tabular MLPs on vectors) and the
            decisions it leaves out (:data:`~autodlgym.searchspace.builtins.MODALITY_DROPPED`:
            pooling and ``trainable`` on vectors). None: every block for every modality.
    """
    config = copy.deepcopy(_DEFAULT_TEMPLATE)
    # graph blocks need a graph task: they have a default space of their own (graph_config)
    blocks = [b for b in BLOCKS.builtins() if b not in builtins.GRAPH_BLOCKS]
    if modality is not None:
        blocks = modality_blocks(modality, blocks)
        for name, options in builtins.MODALITY_OPTIONS.get(modality, {}).items():
            part = config["stage"] if name in config["stage"] else config["globals"]
            part[name] = {**part[name], "options": list(options)}
        for name in builtins.MODALITY_DROPPED.get(modality, ()):
            config["stage"].pop(name, None)
            config["globals"].pop(name, None)
    config["stage"]["block"]["options"] = blocks
    condition_on_blocks(config["stage"], set(config["stage"]))
    return config


# The default space of graph tasks: message-passing blocks mixed with per-node MLPs, sized
# for a CPU (a candidate trains in about a second on a graph of a few thousand nodes).
_GRAPH_TEMPLATE: dict[str, Any] = {
    "max_stages": 3,
    "globals": {
        "n_stages": {"options": [1, 2, 3], "doc": "number of stages"},
        "connections": {"options": ["chain", "skip2", "dense"]},
        "activation": {"options": ["relu", "elu", "gelu", "tanh"]},
        "norm": {"options": ["none", "batch", "layer"]},
        "dropout": {"options": [0.0, 0.25, 0.5]},
        "init": {"options": ["glorot_uniform", "he_uniform", "torch_default"]},
        "readout": {
            "options": ["mean", "max", "sum", "attention"],
            "doc": "how a graph-level head reads each graph's nodes",
        },
        "optimizer": {"options": ["adam", "adamw"]},
        "lr": {"kind": "float", "log": True, "options": [1e-3, 2e-3, 5e-3, 1e-2, 2e-2]},
        "weight_decay": {"options": [0.0, 5e-4, 5e-3], "kind": "float"},
        "batch_size": {"options": [32, 64, 128], "kind": "int", "log": True},
    },
    "stage": {
        "downsample": {
            "options": ["none", "topk"],
            "doc": "top-k pooling of each graph's nodes before this stage (graph level)",
            "from_stage": 2,
        },
        "block": {},
        "depth": {"options": [1, 2], "kind": "int", "doc": "blocks in this stage"},
        "width": {"options": [16, 32, 64, 128], "kind": "int", "log": True},
        "heads": {"options": [1, 2, 4], "kind": "int"},
        "cheb_k": {"options": [1, 2, 3], "kind": "int", "doc": "Chebyshev terms (K)"},
    },
}


def graph_config(level: str = "node") -> dict[str, Any]:
    """The default space of a graph task as a config: the built-in graph blocks (but
    NAS-Bench-Graph's ``skip``) and ``mlp``, ``heads`` for ``gat`` and ``cheb_k`` for
    ``cheb``. A node-level task (``level="node"``) trains on the whole graph at once, so it
    has no ``batch_size``, ``readout`` or ``topk`` pooling."""
    config = copy.deepcopy(_GRAPH_TEMPLATE)
    config["stage"]["block"]["options"] = [
        *(b for b in builtins.GRAPH_BLOCKS if b != "skip"),
        "mlp",
    ]
    if level == "node":
        for name in ("readout", "batch_size"):
            del config["globals"][name]
        del config["stage"]["downsample"]
    condition_on_blocks(config["stage"], set(config["stage"]))
    return config


def modality_blocks(modality: str, blocks: Iterable[str]) -> list[str]:
    """Those of ``blocks`` whose registration fits ``modality`` (see
    :func:`~autodlgym.searchspace.registry.register_block`)."""
    if modality not in builtins.ALL:
        raise AutoDLError(f"modality {modality!r} is unknown; use {', '.join(builtins.ALL)}")
    return [b for b in blocks if modality in block_modalities(b)]


def modality_priors(modality: str) -> list[tuple[str, bool, str]]:
    """Why each registered block is or is not in ``modality``'s default space: ``(block,
    offered, reason)``, for ``autodlgym space show --task``."""
    out = []
    for b in loaded_blocks():
        fits = block_modalities(b)
        offered = modality in fits
        reason = (
            f"registered for {', '.join(fits)}"
            if offered
            else f"registered for {', '.join(fits)} only (its prior does not fit {modality} "
            "inputs); name it in a space file to search it"
        )
        out.append((b, offered, reason))
    return out


def modality_decisions(modality: str) -> list[str]:
    """What ``modality``'s default space changes in the decisions of the general default
    (:data:`~autodlgym.searchspace.builtins.MODALITY_OPTIONS` and ``MODALITY_DROPPED``), as
    lines for ``autodlgym space show --task``; none when it changes nothing."""
    narrowed = builtins.MODALITY_OPTIONS.get(modality, {})
    dropped = builtins.MODALITY_DROPPED.get(modality, ())
    if not narrowed and not dropped:
        return []
    lines = [f"decisions for {modality} inputs (see autodlgym.searchspace.builtins):"]
    for name, options in narrowed.items():
        lines.append(f"  ~ {name:<14} narrowed to {', '.join(str(o) for o in options)}")
    if dropped:
        lines.append(f"  - left out: {', '.join(dropped)}")
    return lines


def condition_on_blocks(stage: dict[str, Any], free: set[str]) -> None:
    """Condition the stage decisions in ``free`` on the blocks that use them.

    A decision that some offered block (``stage["block"]["options"]``) lists in its
    registered ``uses`` is made active exactly for those blocks. One that only blocks not
    offered use keeps them as its condition, so the space drops it (and its children) as
    never active. Unknown blocks are errors.
    """
    blocks = list((stage.get("block") or {}).get("options") or [])
    check_names(BLOCKS, blocks, "autodlgym.register_block")
    registered = loaded_blocks()
    for name in list(stage):
        if name == "block" or name not in free:
            continue
        users = blocks_using(name, blocks) or blocks_using(name, registered)
        if users:
            stage[name] = {**stage[name], "when": {"block": users}}


def check_names(registry: Any, names: Iterable[Any], how: str) -> None:
    """Every option of a ``block`` / ``init`` decision must be registered (built in, from
    Python or a plugin)."""
    for n in names:
        if n not in registry:
            raise registry.unknown(n, hint=f"; register your own with {how} (and --import it)")


def from_config(cls: type[SearchSpace], config: Mapping[str, Any]) -> SearchSpace:
    """A space of class ``cls`` from a config (see :meth:`SearchSpace.from_config
    <autodlgym.searchspace.space.SearchSpace.from_config>`)."""
    if not isinstance(config, Mapping):
        raise AutoDLError(f"a space config must be a mapping, got {type(config).__name__}")
    config = dict(config)
    limits = _budget.constraints_from_config(config.pop("constraints", None))
    base = config.pop("base", None)
    if base not in (None, "default", "none"):
        raise AutoDLError(f"space base {base!r} is unknown; use 'default' or leave it out")
    if base == "default":
        merged = default_config()
        unknown = set(config) - {"max_stages", "globals", "stage", "remove"}
        if unknown:
            raise AutoDLError(
                f"space file has unknown section(s) {sorted(unknown)}; use max_stages, globals, stage, remove"
            )
        for section in ("globals", "stage"):
            over = config.get(section) or {}
            if not isinstance(over, Mapping):
                raise AutoDLError(
                    f"space section {section!r} must be a mapping of decision -> settings"
                )
            for name, settings in over.items():
                if not isinstance(settings, Mapping):
                    raise AutoDLError(
                        f"space decision {section}.{name} must be a mapping such as {{options: [...]}}, got {settings!r}"
                    )
                if name in merged[section]:
                    merged[section][name] = {**merged[section][name], **settings}
                elif "options" in settings:
                    merged[section][name] = dict(settings)
                else:
                    raise AutoDLError(
                        f"space decision {section}.{name} is new and needs 'options'"
                        f"{did_you_mean(name, merged[section])}; "
                        f"known: {', '.join(sorted(merged[section]))}"
                    )
        for name in config.get("remove") or []:
            if name in merged["globals"]:
                del merged["globals"][name]
            elif name in merged["stage"]:
                del merged["stage"][name]
            else:
                known = [*merged["globals"], *merged["stage"]]
                raise AutoDLError(
                    f"cannot remove unknown decision {name!r}{did_you_mean(name, known)}"
                )
        if "max_stages" in config:
            merged["max_stages"] = config["max_stages"]
        given = config.get("stage") or {}
        free = {n for n in merged["stage"] if "when" not in (given.get(n) or {})}
        condition_on_blocks(merged["stage"], free)
        config = merged
    space = cls(_expand(config), config)
    return space.with_constraints(**limits) if limits else space


#: spaces shipped with autodlgym, by name: ``--space nasbench-graph``
SHIPPED_SPACES = Path(__file__).parents[1] / "data"


def shipped_spaces() -> list[str]:
    """The names of the space files shipped with autodlgym."""
    return sorted(p.stem for p in SHIPPED_SPACES.glob("*.yaml"))


def read_file(path: str | Path) -> Any:
    """The config a YAML or JSON space file holds (``.json`` is JSON, anything else YAML),
    or a shipped space's, by name (:func:`shipped_spaces`) where no such file exists."""
    p = Path(path)
    if not p.is_file() and str(path) in shipped_spaces():
        p = SHIPPED_SPACES / f"{path}.yaml"
    if not p.is_file():
        raise AutoDLError(
            f"space file {str(p)!r} does not exist; give the path of a YAML or JSON file "
            f"or a shipped space ({', '.join(shipped_spaces())})"
        )
    text = p.read_text()
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parser error is a user error here
        raise AutoDLError(f"space file {str(p)!r} cannot be parsed: {parse_error(exc)}") from None
    if data is None:
        raise AutoDLError(f"space file {str(p)!r} is empty; write e.g. 'base: default'")
    return data


def to_config(
    config: Mapping[str, Any] | None, choices: Iterable[Choice], given: Mapping[str, Any]
) -> dict[str, Any]:
    """The config of a space: the one it was made from (``config``), or else its ``choices``
    as an explicit list; with the limits the space sets (``given``) as ``constraints``."""
    out = (
        copy.deepcopy(dict(config))
        if config is not None
        else {"choices": [choice_to_dict(c) for c in choices]}
    )
    if given:
        out["constraints"] = dict(given)
    return out


def parse_error(exc: Exception) -> str:
    """One line for a YAML or JSON parse error that keeps where it happened."""
    mark = getattr(exc, "problem_mark", None)  # PyYAML's MarkedYAMLError
    if mark is not None:
        what = getattr(exc, "problem", None) or type(exc).__name__
        context = getattr(exc, "context", None)
        return f"line {mark.line + 1}, column {mark.column + 1}: {what}" + (
            f" ({context})" if context else ""
        )
    text = str(exc).strip()  # json: "Expecting ',' delimiter: line 3 column 5 (char 20)"
    return text.splitlines()[0] if text else type(exc).__name__


def choice_to_dict(c: Choice) -> dict[str, Any]:
    d: dict[str, Any] = {"name": c.name, "options": list(c.options), "kind": c.kind}
    if c.log:
        d["log"] = True
    if c.parent:
        d["when"] = {c.parent: list(c.parent_values)}
    if c.doc:
        d["doc"] = c.doc
    return d


def _make_choice(
    name: str, settings: Mapping[str, Any], parent: str | None, parent_values: Iterable[Any]
) -> Choice:
    allowed = {"options", "kind", "log", "when", "doc", "from_stage", "name"}
    unknown = set(settings) - allowed
    if unknown:
        raise AutoDLError(
            f"decision {name!r} has unknown setting(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    options = settings.get("options")
    if not isinstance(options, list | tuple) or not options:
        raise AutoDLError(f"decision {name!r} needs a non-empty list 'options', got {options!r}")
    for o in options:
        if not isinstance(o, bool | int | float | str):
            raise AutoDLError(
                f"decision {name!r} has option {o!r}; options must be numbers, strings or booleans"
            )
    kind = settings.get("kind")
    if kind is None:
        kind = "categorical"
    return Choice(
        name=name,
        options=tuple(options),
        kind=str(kind),
        log=bool(settings.get("log", False)),
        parent=parent,
        parent_values=tuple(parent_values),
        doc=str(settings.get("doc", "")),
    )


def _when(name: str, settings: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
    when = settings.get("when")
    if when is None:
        return None
    if not isinstance(when, Mapping) or len(when) != 1:
        raise AutoDLError(
            f"decision {name!r}: 'when' must name exactly one parent, e.g. {{block: [conv]}}"
        )
    ((parent, values),) = when.items()
    if not isinstance(values, list | tuple) or not values:
        raise AutoDLError(
            f"decision {name!r}: 'when: {{{parent}: ...}}' needs a non-empty list of values"
        )
    return str(parent), list(values)


def _expand(config: Mapping[str, Any]) -> list[Choice]:
    """Turn a config into the ordered choice list, expanding the per-stage template.

    A condition on parent values that a narrowed space no longer offers keeps only the values
    still offered; a decision none of whose parent values remain is never active and is dropped
    (with its own children).
    """
    kept: dict[str, Choice] = {}
    for c in _expand_all(config):
        if c.parent is not None:
            parent = kept.get(c.parent)
            if parent is None:
                continue
            values = tuple(
                v
                for v in c.parent_values
                if any(v == o and same_type(v, o) for o in parent.options)
            )
            if not values:
                continue
            c = dataclasses.replace(c, parent_values=values)
        kept[c.name] = c
    return list(kept.values())


def _expand_all(config: Mapping[str, Any]) -> list[Choice]:
    if "choices" in config:  # an explicit list (what to_config writes for hand-made spaces)
        out = []
        for d in config["choices"]:
            w = _when(d.get("name", "?"), d)
            out.append(_make_choice(d["name"], d, w[0] if w else None, w[1] if w else ()))
        return out
    unknown = set(config) - {"max_stages", "globals", "stage"}
    if unknown:
        raise AutoDLError(
            f"space config has unknown section(s) {sorted(unknown)}; use max_stages, globals, stage"
        )
    max_stages = config.get("max_stages", 1)
    if not isinstance(max_stages, int) or isinstance(max_stages, bool) or not 1 <= max_stages <= 8:
        raise AutoDLError(f"max_stages must be an integer from 1 to 8, got {max_stages!r}")
    glob = dict(config.get("globals") or {})
    stage = dict(config.get("stage") or {})
    if "n_stages" in glob:
        ns = glob["n_stages"]
        opts = [o for o in ns.get("options", []) if isinstance(o, int) and 1 <= o <= max_stages]
        if not opts:
            raise AutoDLError(f"n_stages needs options between 1 and max_stages={max_stages}")
        glob["n_stages"] = {**ns, "options": opts, "kind": "int"}
    else:
        glob = {"n_stages": {"options": [max_stages], "kind": "int"}, **glob}
    n_stage_opts = glob["n_stages"]["options"]

    out: list[Choice] = []
    names: set[str] = set()
    # n_stages first, then the stages (which depend on it), then the other globals
    out.append(_make_choice("n_stages", glob.pop("n_stages"), None, ()))
    names.add("n_stages")
    if "block" in stage:
        check_names(BLOCKS, stage["block"].get("options") or [], "autodlgym.register_block")
    if "init" in glob:
        check_names(INIT_LAWS, glob["init"].get("options") or [], "autodlgym.register_init")
    for i in range(1, max_stages + 1):
        stage_values = [n for n in n_stage_opts if n >= i]
        if not stage_values:
            break
        for key, settings in stage.items():
            if not isinstance(settings, Mapping):
                raise AutoDLError(
                    f"stage decision {key!r} must be a mapping such as {{options: [...]}}"
                )
            if i < int(settings.get("from_stage", 1)):
                continue
            name = f"stage{i}.{key}"
            w = _when(name, settings)
            if w is None:
                parent, pvals = "n_stages", stage_values
            else:
                parent, pvals = f"stage{i}.{w[0]}", w[1]
                if parent not in names:
                    raise AutoDLError(
                        f"stage decision {key!r} depends on {w[0]!r}, which must be defined before it"
                    )
            out.append(_make_choice(name, settings, parent, pvals))
            names.add(name)
    for key, settings in glob.items():
        if not isinstance(settings, Mapping):
            raise AutoDLError(f"decision {key!r} must be a mapping such as {{options: [...]}}")
        w = _when(key, settings)
        if w is not None and w[0] not in names:
            raise AutoDLError(
                f"decision {key!r} depends on {w[0]!r}, which must be defined before it"
            )
        out.append(_make_choice(key, settings, w[0] if w else None, w[1] if w else ()))
        names.add(key)
    return out
