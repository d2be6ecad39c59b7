"""Node identities and signed readings (docs/trust.md): canonical encoding and Ed25519 signatures,
the gateway's key registry, and the Mosquitto configuration that keeps one node from speaking for
another."""
