"""Alert channels, one file each. Importing the package registers every channel module in it (see
base.register_channel), and the union of their `[[alerts.channels]]` tables is built from that."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field

from gateway.channels.base import (
    CHANNELS,
    Channel,
    ChannelContext,
    ChannelError,
    ChannelOptions,
    Notification,
    open_channel,
)

NOT_CHANNELS = frozenset({"base", "dispatcher"})

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in NOT_CHANNELS and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

if TYPE_CHECKING:
    ChannelConfig = ChannelOptions
else:
    ChannelConfig = Annotated[
        Union[tuple(options for options, _ in CHANNELS.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]
CHANNEL_TYPES: tuple[str, ...] = tuple(CHANNELS)

__all__ = [
    "CHANNELS",
    "CHANNEL_TYPES",
    "Channel",
    "ChannelConfig",
    "ChannelContext",
    "ChannelError",
    "ChannelOptions",
    "Notification",
    "open_channel",
]
