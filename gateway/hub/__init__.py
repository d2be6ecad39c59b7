"""The regional hub: minewatch in a hub role (docs/region.md). Site gateways forward what they
stored; the hub verifies it with keys the sites vouched for and stores it in PostgreSQL."""
