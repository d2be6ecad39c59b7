"""The alert topic `<prefix>/v1/<site>/<node>/alert` (docs/protocol.md), always on.

Publishes through the gateway's own MQTT connection (gateway/subscriber.py, the only paho import on
the gateway), at QoS 1 and **retained**: the broker keeps, for a subscriber that comes later (a
monitor's phone that was off, a resident's app opened in the morning), the node's latest event of
an alert still active there, and the node's last all-clear only once none is. So one rule's
all-clear never hides another rule's alert that is still raised: it goes out unretained while the
broker keeps the other's event, or, when the broker kept the alert that ended, the latest event of
a still-active one is published again, retained (a live subscriber sees that event twice: the same
payload, the same `id`, `state` and `ts`). Gets every event, so its rate limit is off unless
configured. It has no recipients: whoever may read the topic reads the same message, so it carries
no acknowledgement link, only the topic to ack on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

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
    if ctx.publish_retained is None:
        return Mqtt(opts, ctx.publish, ctx.prefix)
    return Mqtt(opts, ctx.publish_retained, ctx.prefix, live=ctx.publish, active=ctx.active(opts))


Node = tuple[str, str]


@register_channel(MqttOptions, _build)
class Mqtt:
    def __init__(
        self,
        opts: MqttOptions,
        publish: Publish,
        prefix: str,
        *,
        live: Publish | None = None,
        active: Iterable[dict[str, Any]] = (),
    ) -> None:
        """`publish` retains; `live` (when given) does not, and the broker's retained copy of each
        node is then kept on an active alert while there is one. `active`: the latest event of
        each alert active when the gateway started, as this channel words them."""
        self._publish, self._live, self._prefix = publish, live, prefix
        self._active: dict[Node, dict[str, dict[str, Any]]] = {}
        """Per node, the latest event of each active alert (by alert id), the newest last."""
        self._retained: dict[Node, str] = {}
        """Per node, the alert whose event the broker retains, as far as this run knows."""
        for event in active:
            self._remember(event)

    def _remember(self, event: dict[str, Any]) -> None:
        alerts = self._active.setdefault((str(event["site"]), str(event["node"])), {})
        alerts.pop(str(event.get("id")), None)
        alerts[str(event.get("id"))] = event

    def send(self, note: Notification) -> None:
        for event in note.events or [note.body]:
            if not self._send(event):
                raise ChannelError("the broker connection is down")

    def _send(self, event: dict[str, Any]) -> bool:
        node = (str(event["site"]), str(event["node"]))
        topic = f"{self._prefix}/v1/{node[0]}/{node[1]}/alert"
        if self._live is None or not event.get("id"):
            return self._publish(topic, _payload(event))
        alerts = self._active.setdefault(node, {})
        if event.get("state") != "cleared":
            self._remember(event)
            return self._retain(node, topic, event)
        alerts.pop(str(event["id"]), None)
        if not alerts:  # nothing left active at the node: its all-clear is what a newcomer reads
            return self._retain(node, topic, event)
        if not self._live(topic, _payload(event)):
            return False
        if self._retained.get(node) in alerts:
            return True  # the broker keeps another alert's event, still active
        return self._retain(node, topic, next(reversed(alerts.values())))

    def _retain(self, node: Node, topic: str, event: dict[str, Any]) -> bool:
        """Publish `event` retained; what the broker keeps for `node` is then that alert's."""
        if not self._publish(topic, _payload(event)):
            self._retained.pop(node, None)  # unknown now: the next all-clear publishes again
            return False
        self._retained[node] = str(event.get("id"))
        return True

    def close(self) -> None:
        pass


def _payload(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
