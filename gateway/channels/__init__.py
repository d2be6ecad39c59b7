"""Alert channels, one file each, and the union of their `[[alerts.channels]]` tables."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from gateway.channels.apprise_channel import AppriseOptions
from gateway.channels.base import Channel, ChannelError, ChannelOptions, Notification
from gateway.channels.email import EmailOptions
from gateway.channels.mqtt import MqttOptions
from gateway.channels.webhook import WebhookOptions

ChannelConfig = Annotated[
    MqttOptions | WebhookOptions | EmailOptions | AppriseOptions, Field(discriminator="type")
]
AnyChannelOptions = MqttOptions | WebhookOptions | EmailOptions | AppriseOptions
CHANNEL_TYPES = ("mqtt", "webhook", "email", "apprise")

__all__ = [
    "CHANNEL_TYPES",
    "AnyChannelOptions",
    "Channel",
    "ChannelConfig",
    "ChannelError",
    "ChannelOptions",
    "Notification",
]
