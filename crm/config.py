"""Job settings from a YAML file: the ``--config FILE`` option that every job command has.

The file holds fields of the job's configuration. A flag given on the command line wins over the
file; the file wins over a flag left at its default; a field neither sets keeps its default. Each
command's parameters carry the names of its configuration's fields (``--register`` is
``register_model``), which is how a flag and a key of the file are matched.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer

Config = TypeVar("Config")

# parameter sources that mean "given on this command line" (the rest are defaults)
GIVEN_SOURCES = ("COMMANDLINE", "ENVIRONMENT", "PROMPT")
META_KEY = "crm.config"  # where the file's path and values wait in the context
ALIASES_KEY = "crm.aliases"  # values given under an option's older spelling


def config_option() -> Any:
    """The ``--config FILE`` option (read before the other parameters, so that the file can
    supply options that are otherwise required)."""
    return typer.Option(
        None,
        "--config",
        exists=True,
        dir_okay=False,
        is_eager=True,
        callback=read_config,
        help="YAML file with the job's settings; flags given here override it.",
    )


def choices(name: str, words: tuple[str, ...]) -> type[StrEnum]:
    """A vocabulary as the choices of a repeatable option (typer takes a list of an enum, not of a
    ``Literal``); its members are the words themselves."""
    return StrEnum(name, {word: word for word in words})


def chosen(values: list[StrEnum]) -> list[str] | None:
    """The words picked from :func:`choices` (None when none was: the job's "every one")."""
    return [str(value) for value in values] or None


def alias_option(name: str, flag: str) -> Any:
    """A hidden older spelling ``flag`` of parameter ``name``'s option (``--min-prob`` for
    ``--min-probability``): still read, as if the option itself were given, but no longer shown."""

    def remember(ctx: typer.Context, value: Any) -> Any:
        if value is not None:
            ctx.meta.setdefault(ALIASES_KEY, {})[name] = value
        return value

    return typer.Option(None, flag, hidden=True, callback=remember)


def read_config(ctx: typer.Context, path: Path | None) -> Path | None:
    """Read the file into the context; a parameter the file sets is no longer required."""
    if path is None:
        return None
    values = read_yaml(path)
    ctx.meta[META_KEY] = (path, values)
    for param in ctx.command.params:
        if param.name in values:
            param.required = False
    return path


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YAML file, with dates left as written (each field parses its own)."""
    import yaml

    try:
        values = yaml.load(path.read_text(), Loader=_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise typer.BadParameter(f"{path} is not valid YAML: {problem}{where}.") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise typer.BadParameter(f"{path} must hold a mapping of setting: value.")
    return values


def _loader() -> type:
    """A safe YAML loader without the timestamp rule, so ``2025-06-01`` stays a string."""
    import yaml

    class DatesAsWritten(yaml.SafeLoader):
        pass

    DatesAsWritten.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return DatesAsWritten


def job_config(ctx: typer.Context, model: type[Config], **values: Any) -> Config:
    """The job's configuration from the command's parameters that name its fields, ``values``
    (converted flags and values from elsewhere, such as the store) and the ``--config`` file."""
    from pydantic import TypeAdapter, ValidationError

    from features.errors import UserError

    fields = field_names(model)
    path, from_file = ctx.meta.get(META_KEY, (None, {}))
    unknown = [key for key in from_file if key not in fields]
    if unknown:
        keys = ", ".join(repr(key) for key in unknown)
        raise UserError(f"{path}: unknown key {keys}; {model.__name__} has {', '.join(fields)}.")
    # an older spelling counts as given, unless the option itself was given too
    aliased = {k: v for k, v in ctx.meta.get(ALIASES_KEY, {}).items() if k in fields and not given(ctx, k)}
    flags = {name: value for name, value in ctx.params.items() if name in fields} | aliased | values
    used = {key: value for key, value in from_file.items() if not given(ctx, key) and key not in aliased}
    try:
        return TypeAdapter(model).validate_python(flags | used)
    except ValidationError as exc:
        problems = (_problem(err["loc"], err["msg"], path, used) for err in exc.errors(include_url=False))
        raise UserError("; ".join(problems)) from None


def field_names(model: type) -> list[str]:
    """The fields of a pydantic model or a dataclass."""
    if dataclasses.is_dataclass(model):
        return [f.name for f in dataclasses.fields(model)]
    return list(model.model_fields)


def given(ctx: typer.Context, name: str) -> bool:
    """Whether parameter ``name`` was given on this command line (not left at its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in GIVEN_SOURCES


def _problem(loc: tuple, message: str, path: Path | None, used: dict[str, Any]) -> str:
    """One validation problem, naming the file when the value came from it."""
    key = ".".join(str(part) for part in loc)
    origin = f"{path}: " if loc and loc[0] in used else ""
    return f"{origin}{key}: {message}" if key else f"{origin}{message}"
