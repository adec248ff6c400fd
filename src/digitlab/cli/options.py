"""Config flags generated from the Config model: one source for names, defaults, help, choices.

Every Config field becomes a flag `--field-name` (older names stay as aliases: `--lr`,
`--hidden`) with the field's description as help and its default shown. Flags default to None,
so only the flags given override a --config file. A registry-valued field takes any name, since
a --plugin may register more: the Config validates it, and help and shell completion list the
registry's names as they are at run time. A registry entry's keyword parameters come as
`--activation-param slope=0.1`. Flags that are not Config fields are declared by hand where
they are used.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin

import click
from click.shell_completion import CompletionItem
from pydantic.fields import FieldInfo

from digitlab.errors import ConfigError, DigitlabError
from digitlab.lab.config import (
    REGISTRIES,
    Config,
    Entry,
    aliases,
    canonical_keys,
    load_config,
    read_config_file,
)
from digitlab.lab.plugins import load_plugins

# Config fields without a generated flag: `plugins` is `--plugin FILE` (repeatable, declared by
# hand since plugins load before anything validates); `layers` is a list of tables, TOML only.
NOT_FLAGS = ("plugins", "layers")


class RegistryName(click.ParamType):
    """A name in a registry; checked by the Config (after plugins load), completed from it."""

    name = "name"

    def __init__(self, registry: dict[str, Any]) -> None:
        self.registry = registry

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(sorted(self.registry)) + "]"

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        try:  # installed plugins and a --plugin earlier on the line count
            load_plugins(ctx.params.get("plugin") or ())
        except DigitlabError:
            pass
        return [
            CompletionItem(name) for name in sorted(self.registry) if name.startswith(incomplete)
        ]


class Sizes(click.ParamType):
    """A comma list of positive sizes: 256,128."""

    name = "sizes"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        try:
            return [int(part) for part in str(value).split(",") if part.strip()]
        except ValueError:
            self.fail(f"expected a comma list of sizes like 256,128, got {value!r}", param, ctx)


class Switches(click.ParamType):
    """Epochs and activation names: 10:relu,20:tanh (the activation from epoch 11, 21 on)."""

    name = "switches"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        switches = []
        for part in str(value).split(","):
            epoch, sep, name = part.strip().partition(":")
            if not sep or not epoch.strip().isdigit() or not name.strip():
                message = f"expected EPOCH:NAME,... like 10:relu,20:tanh, got {value!r}"
                self.fail(message, param, ctx)
            switches.append([int(epoch), name.strip()])
        return switches


def parse_pairs(pairs: tuple[str, ...], flag: str) -> dict[str, Any]:
    """KEY=VALUE pairs -> dict, values read as numbers where they are numbers."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=flag)
        try:
            out[key.strip()] = float(raw) if any(c in raw for c in ".eE") else int(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


def _pairs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    return parse_pairs(value, param.opts[0]) or None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(annotation: Any) -> Any:
    """`int | None` -> int."""
    if get_origin(annotation) in (Union, types.UnionType):
        (inner,) = [a for a in get_args(annotation) if a is not type(None)]
        return inner
    return annotation


def _default_text(field: FieldInfo) -> str | None:
    default = field.get_default(call_default_factory=True)
    if default is None:
        return None
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, Entry):
        return default.name
    if isinstance(default, list):
        return ",".join(str(v) for v in default)
    return str(default)


def config_flag(name: str, *, default_text: str | None = None) -> list[click.Option]:
    """The option(s) of Config field `name`: one flag, plus `--NAME-param` for an entry."""
    field = Config.model_fields[name]
    names = aliases(field, name)
    decls = [name, *(_flag(n) for n in names)]
    shown = default_text or _default_text(field)
    help_text = (field.description or "") + (f" [default: {shown}]" if shown else "")
    kind = _base_type(field.annotation)
    options: list[click.Option] = []
    if name in REGISTRIES:
        what, registry = REGISTRIES[name]
        options.append(click.Option(decls, type=RegistryName(registry), help=help_text))
        if kind is Entry:
            options.append(
                click.Option(
                    [f"{name}_param", *(f"{_flag(n)}-param" for n in names)],
                    multiple=True,
                    callback=_pairs,
                    metavar="KEY=VALUE",
                    help=f"A keyword parameter of the {what} (repeatable), e.g. "
                    f"{_EXAMPLES.get(name, 'key=1')}; see `digitlab list`.",
                )
            )
    elif kind is bool:
        decls = [name, *(f"{_flag(n)}/--no-{_flag(n)[2:]}" for n in names)]
        options.append(click.Option(decls, default=None, help=help_text))
    elif get_origin(kind) is Literal:
        options.append(click.Option(decls, type=click.Choice(get_args(kind)), help=help_text))
    elif kind in (int, float, str):
        options.append(click.Option(decls, type=kind, help=help_text))
    elif kind == list[int]:
        options.append(click.Option(decls, type=Sizes(), help=help_text))
    elif kind == list[tuple[int, Entry]]:
        options.append(click.Option(decls, type=Switches(), help=help_text))
    elif kind in (dict[str, float], dict[str, float | str]):
        options.append(
            click.Option(decls, multiple=True, callback=_pairs, metavar="KEY=VALUE", help=help_text)
        )
    else:
        raise TypeError(f"Config.{name}: no flag for {kind}; add a case here or to NOT_FLAGS")
    return options


_EXAMPLES = {
    "activation": "slope=0.1",
    "init": "std=0.1",
    "optimizer": "momentum=0.9",
    "learning_rate_schedule": "decay=0.9",
}

CONFIG_FIELDS = [name for name in Config.model_fields if name not in NOT_FLAGS]
ENTRY_FIELDS = [
    name for name in CONFIG_FIELDS if _base_type(Config.model_fields[name].annotation) is Entry
]


def with_options(options: list[click.Option]) -> Callable[[Any], Any]:
    """A decorator adding `options` (in this order) to a command's function, like click.option."""

    def decorate(function: Any) -> Any:
        # click builds a command's parameters from __click_params__ in reverse order
        function.__click_params__ = [*getattr(function, "__click_params__", []), *options[::-1]]
        return function

    return decorate


def config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command with --config, --plugin and one flag per Config field."""
    generated = [option for name in CONFIG_FIELDS for option in config_flag(name)]
    by_hand = [
        click.Option(
            ["config_file", "--config"], type=click.Path(dir_okay=False), help="TOML config file."
        ),
        click.Option(
            ["plugin", "--plugin"],
            multiple=True,
            type=click.Path(dir_okay=False),
            help=f"{Config.model_fields['plugins'].description} (repeatable)",
        ),
    ]
    return with_options(by_hand + generated)(command)


def config_from_flags(
    config_file: str | None, plugin: tuple[str, ...], flags: dict[str, Any]
) -> Config:
    """File values, with the flags that were given on top, validated into a Config."""
    file_values = canonical_keys(read_config_file(config_file)) if config_file else {}
    if plugin:
        flags["plugins"] = [*file_values.get("plugins", []), *plugin]
    params = {key: flags.pop(f"{key}_param") for key in ENTRY_FIELDS}
    values = {**file_values, **{k: v for k, v in flags.items() if v is not None}}
    for key, extra in params.items():
        if extra:
            values[key] = _with_params(key, values.get(key), extra)
    return load_config(None, values)


def _with_params(key: str, base: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Attach KEY=VALUE params to an entry whose name comes from the flag or the file."""
    if base is None:
        raise ConfigError(f"{_flag(key)}-param given without {_flag(key)}")
    if isinstance(base, dict):
        return {**base, **params}
    return {"name": base, **params}


def given_flags(flags: dict[str, Any]) -> list[str]:
    """The config flags that were given on the command line, as flags."""
    return [_flag(k) for k, v in flags.items() if v not in (None, ())]
