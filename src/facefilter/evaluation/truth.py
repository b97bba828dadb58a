"""What to score a filter against: its inputs, their true outputs, real target faces.

A run's config.json records the data it trained on. From that and the direction asked
for, `plan` picks
- the inputs: the source domain's own data (its held-out split), unless `--data` names
  others;
- the truth, paired face by face, where the renderer can draw it: the very same
  synthetic faces in the target style (`synth:photo` -> `synth:anime`), or with the
  target's attributes forced (`--set` twins): an edit `+Smiling` scores faces without a
  smile against themselves smiling, and a makeover towards `where=-Male` scores men
  against themselves as women (every term of the target's filter is forced);
- the reference for FID and KID: real faces of the target domain (its held-out split),
  or for an edit the faces that have the edited state;
- the attributes the filter should change (an edit's, or those in which the two domains'
  filters differ) and the style its outputs should have.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from facefilter.attributes import parse_where
from facefilter.data.spec import SourceSpec, parse_spec
from facefilter.errors import UserError
from facefilter.models import family_class
from facefilter.models.targets import Direction
from facefilter.runs.config import RunConfig
from facefilter.synth.edits import parse_set_option


@dataclass(frozen=True)
class TrainedOn:
    """The data a run trained on, as its config.json (or a TrainConfig) records it."""

    kind: str  # the family's data kind
    domains: tuple[str, ...]
    data: str | None = None
    data_a: str | None = None
    data_b: str | None = None

    @classmethod
    def of_run(cls, config: RunConfig) -> TrainedOn:
        return cls(family_class(config.family).data_kind, tuple(config.domains),
                   config.data_spec(), config.data_spec("data_a"),
                   config.data_spec("data_b"))  # fmt: skip

    def spec_of(self, domain: str) -> str | None:
        """The spec that gave `domain`'s faces (None when no spec gave it alone)."""
        if self.kind == "unpaired" and self.data_a and self.data_b:
            return self.data_a if domain == self.domains[0] else self.data_b
        if self.data and self.data.startswith("synth:"):
            parsed = parse_spec(self.data)
            if domain in parsed.path.split(","):  # one style of a several-style set
                return str(replace(parsed, path=domain, options=_unnamed(parsed.options)))
        return self.data if self.kind == "attributes" else None


@dataclass
class Plan:
    """The data specs of one evaluation and what the filter should change."""

    inputs: str
    truth: str | None  # paired with `inputs` item by item
    reference: str | None  # real faces of the target, for FID / KID
    edited: dict[str, bool] = field(default_factory=dict)  # attribute -> its value after
    style: str | None = None  # the style the outputs should have (synthetic data)
    notes: list[str] = field(default_factory=list)
    reference_given: bool = False  # by the user (FID on too few faces is then an error)
    own_data: bool = True  # the inputs are the run's own training data (else none trained on)


def plan(
    trained: TrainedOn, direction: Direction, data: str | None = None, truth: str | None = None,
    reference: str | None = None,
) -> Plan:  # fmt: skip
    """Inputs, truth and reference for `direction` (see the module docstring)."""
    source_spec = trained.spec_of(direction.source) if direction.source else trained.data
    inputs = data or source_spec
    if inputs is None:
        raise UserError(f"no data spec of the run gives the faces of {direction.source!r} alone "
                        "(the classes of a classes: folder have none); name them with --data "
                        "SPEC")  # fmt: skip
    if all(target.is_edit for target in direction.targets):
        return _edit_plan(direction, inputs, truth, reference)
    target_spec = trained.spec_of(direction.target.name)
    edited = _filter_change(source_spec, target_spec)
    result = Plan(inputs, truth, reference or target_spec, edited,
                  reference_given=reference is not None,
                  own_data=data is None or data == source_spec)  # fmt: skip
    parsed = parse_spec(inputs)
    if parsed.kind == "synth" and "," in parsed.path:
        raise UserError(f"--data {inputs} holds several styles; give the source's faces alone, "
                        f"e.g. synth:{parsed.path.split(',')[0]}")  # fmt: skip
    if parsed.kind == "synth" and target_spec and parse_spec(target_spec).kind == "synth":
        twin = _twin(parsed, parse_spec(target_spec))
        result.style = twin.path
        result.truth = truth or str(twin)
    elif truth is None:
        result.notes.append(f"no paired truth: {inputs} is not synthetic or the target's "
                            "data is not; paired metrics need --truth SPEC")  # fmt: skip
    if result.reference is None:
        result.notes.append(f"no reference faces of {direction.target}: FID and KID need "
                            "--reference SPEC")  # fmt: skip
    return result


def _edit_plan(direction: Direction, inputs: str, truth: str | None, reference: str | None):
    """Edits: faces without the edited state, against themselves with it forced."""
    edited = {target.name: target.sign > 0 for target in direction.targets}
    lacking = ",".join(("-" if value else "") + name for name, value in edited.items())
    having = ",".join(("" if value else "-") + name for name, value in edited.items())
    parsed = parse_spec(inputs)
    for spec in (parsed, *([parse_spec(truth)] if truth else [])):
        if spec.kind not in ("synth", "celeba"):
            raise UserError(f"an edit is scored on the faces that lack it, picked by their "
                            f"attribute table, and {spec} has none: give synth: or celeba: "
                            "data")  # fmt: skip
    base = _where(parsed, lacking)
    paired = str(_where(parse_spec(truth), lacking)) if truth else None  # the same faces
    result = Plan(str(base), paired, reference or str(_where(parsed, having)), edited,
                  reference_given=reference is not None)  # fmt: skip
    if parsed.kind == "synth":
        result.style = None if "," in parsed.path else parsed.path
        result.truth = paired or str(_forced(base, edited))
    result.notes.append(f"inputs: the faces of {inputs} with where={lacking} (those the edit "
                        "changes)")  # fmt: skip
    return result


def _twin(inputs: SourceSpec, target: SourceSpec) -> SourceSpec:
    """The inputs drawn as the target's data: its style, its filter's attributes forced."""
    styles = target.path.split(",")
    style = styles[0] if len(styles) == 1 else inputs.path
    forced = _where_terms(target) | _set_terms(target.options.get("set"))
    return _forced(replace(inputs, path=style), forced)


def _forced(spec: SourceSpec, forced: dict[str, bool]) -> SourceSpec:
    """`spec` with `set=` terms added (a term already set is overridden)."""
    if not forced:
        return spec
    terms = _set_terms(spec.options.get("set")) | forced
    text = ",".join(f"{name}:{1 if value else -1}" for name, value in terms.items())
    return replace(spec, options={**spec.options, "set": text})


def _where(spec: SourceSpec, terms: str) -> SourceSpec:
    where = ",".join(filter(None, (spec.options.get("where"), terms)))
    return replace(spec, options={**spec.options, "where": where})


def _set_terms(text: str | None) -> dict[str, bool]:
    return parse_set_option(text, f"set={text}") if text else {}


def _filter_change(source: str | None, target: str | None) -> dict[str, bool]:
    """The attributes in which the target's `where=` asks for other values than the
    source's: what the filter should change (men -> women: Male -> False)."""
    if not source or not target:
        return {}
    having = _where_terms(parse_spec(source))
    return {name: value for name, value in _where_terms(parse_spec(target)).items()
            if having.get(name) != value}  # fmt: skip


def _where_terms(spec: SourceSpec) -> dict[str, bool]:
    text = spec.options.get("where")
    return dict(parse_where(text)) if text else {}


def _unnamed(options: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in options.items() if key != "name"}
