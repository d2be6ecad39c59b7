"""The MQTT connection of the regional link, on either side: a site's forwarder to the hub's
broker, and the hub to its own broker. A persistent session (the broker keeps what we have not
acknowledged), as the gateway's own connection is."""

from __future__ import annotations

from gateway.config import MqttConfig
from gateway.subscriber import Subscriber


def link_for(m: MqttConfig) -> Subscriber:
    return Subscriber(
        m.host, m.port, m.client_id, username=m.username, password=m.password(), tls=m.tls,
        ca_file=str(m.ca_file) if m.ca_file else None, keepalive_s=m.keepalive_s,
        session_expiry_s=m.session_expiry_s,
    )  # fmt: skip
