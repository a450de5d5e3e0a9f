"""Per-part search: which prunable groups each named part of the model owns, and the recipe that prunes a
candidate with one channel step per part (docs/parts.md).

A group belongs to the part that produces it (every producing layer inside the part's patterns). Groups
outside every part — or straddling a part's edge — keep the trial's default criterion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from wearprune.errors import ConfigError


@dataclass(frozen=True)
class PartPlan:
    where: dict[str, list[str]]  # part name -> module-name patterns ("auto" resolved to module names)
    groups: dict[str, list[str]]  # part name -> the groups it owns (searched with the part's criterion)
    rest: list[str]  # groups outside every part: the trial's default criterion
    notes: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def plan_parts(parts: dict[str, list[str]] | str, model, example) -> PartPlan:
    """Resolve ``FitSpec.parts`` on ``model``: a bad pattern, a part owning no group, or a group claimed by two
    parts is a ConfigError. With ``"auto"``, a part without groups (the protected classifier) is only noted."""
    from wearprune.prune import auto_parts, check_where, group_producers, part_modules, split_by_part

    auto = parts == "auto"
    wanted = auto_parts(model) if auto else {k: list(check_where(v)) for k, v in parts.items()}
    producers = group_producers(model, example)
    where, groups, owner, notes = {}, {}, {}, []
    for name, patterns in wanted.items():
        inside, straddling = split_by_part(producers, part_modules(model, patterns))
        shown = ", ".join(patterns)
        for g in inside:
            if g in owner:
                raise ConfigError(f"group {g!r} lies in part {owner[g]!r} and in part {name!r}; make their patterns "
                                  "disjoint")
            owner[g] = name
        if straddling:
            notes.append(f"part {name!r}: group(s) {', '.join(straddling)} straddle its edge and keep the default "
                         "criterion")
        if not inside:
            if auto:
                notes.append(f"part {name!r} ({shown}) owns no prunable channel group (protected): not searched")
                continue
            raise ConfigError(f"part {name!r} ({shown}) owns no prunable channel group (its layers are protected, "
                              f"frozen, or share channels with layers outside it); groups: {', '.join(producers)}")
        where[name], groups[name] = list(patterns), inside
    if not groups:
        raise ConfigError("automatic parts found no prunable group; give the parts by module-name patterns")
    return PartPlan(where=where, groups=groups, rest=[g for g in producers if g not in owner], notes=notes)


def part_recipe(plan: PartPlan, ratios: dict[str, float], importance: str, criteria: dict[str, str]) -> dict:
    """One channel step per part (its own criterion, ``where`` and ratios), after one for the groups outside
    every part (the default criterion). Ratios are shares of each group's own width, so the shapes do not
    depend on the order of the steps."""
    steps = []
    rest = {g: ratios[g] for g in plan.rest if g in ratios}
    if rest:
        steps.append({"method": "channel", "ratio": 0.0, "importance": importance, "ratios": rest})
    for name, owned in plan.groups.items():
        steps.append({"method": "channel", "ratio": 0.0, "importance": criteria[name], "where": plan.where[name],
                      "ratios": {g: ratios[g] for g in owned if g in ratios}})
    return {"steps": steps}
