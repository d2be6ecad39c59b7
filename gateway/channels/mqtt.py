"""The alert topic `<prefix>/v1/<site>/<node>/alert` (docs/protocol.md), always on.

Publishes through the gateway's own MQTT connection (gateway/subscriber.py, the only paho import on
the gateway), at QoS 1 and **retained**: the broker keeps each node's latest alert event for a
subscriber that comes later (a monitor's phone that was off, a resident's app opened in the
morning), and the next event of that node (an acknowledgement, the all-clear) replaces it. Gets
every event, so its rate limit is off unless configured. It has no recipients: whoever may read the
topic reads the same message, so it carries no acknowledgement link, only the topic to ack on.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field

from gateway.channels.base import (
    ChannelContext,
    ChannelError,
    ChannelOptions,
    Notification,
    Publish,
    register_channel,
)


class MqttOptions(ChannelOptions):
    type: Literal["mqtt"]
    rate_limit: int = Field(default=0, ge=0, description="Off: the topic is the record of every event.")


def _build(opts: MqttOptions, ctx: ChannelContext) -> Mqtt:
    return Mqtt(opts, ctx.publish_retained or ctx.publish, ctx.prefix)


@register_channel(MqttOptions, _build)
class Mqtt:
    def __init__(self, opts: MqttOptions, publish: Publish, prefix: str) -> None:
        self._publish, self._prefix = publish, prefix

    def send(self, note: Notification) -> None:
        for event in note.events or [note.body]:
            topic = f"{self._prefix}/v1/{event['site']}/{event['node']}/alert"
            payload = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
            if not self._publish(topic, payload):
                raise ChannelError("the broker connection is down")

    def close(self) -> None:
        pass
